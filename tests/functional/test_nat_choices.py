"""Issue 11 section 2 on the local cloud: every ``network.nat`` choice deploys and passes ``verify``, an existing LAB
switches from one to another by ``up`` (an update), and a stopped NAT instance takes its health alarm to ALARM,
which reaches the alerts topic's subscriber.

One private cloud for the module (its LAB is redeployed five times, which the session's shared environments must
not see). The tests run in order, each starting from the state the previous one left. The health alarm's period
is 10 s here instead of 60 (``contract.NAT_HEALTH``, read by the stack and by ``verify`` alike), as the monitoring
tests shorten the RDS alarms' periods: the chain is the same, the wait six times shorter.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rentaliq import contract
from rentaliq.deploy.lifecycle import up
from rentaliq.deploy.target import Target
from rentaliq.environments import EnvironmentSpec, build_spec
from rentaliq.infra.cache import templates
from rentaliq.local.cloud import LocalCloud
from rentaliq.ops.verify import summary, verify
from tests.clouds import private_cloud
from tests.functional.sns_subscriber import Subscriber, subscriber
from tests.functional.test_crash_recovery import _kill_when

pytestmark = pytest.mark.slow

HEALTH = "rentaliq-lab-nat-1-health"
OTHER = "rentaliq-lab-nat-2-health"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Subscriber]:
    with subscriber() as sub:
        yield sub


@pytest.fixture(scope="module")
def nat_cloud() -> Iterator[LocalCloud]:
    os.environ.setdefault("RENTALIQ_LOCAL_METRICS_SECONDS", "1")
    os.environ.setdefault("RENTALIQ_LOCAL_ALARM_SECONDS", "1")
    with private_cloud("nat") as cloud:
        yield cloud


@pytest.fixture(scope="module")
def lab(nat_cloud: LocalCloud, tmp_path_factory) -> Iterator[tuple[Target, Path]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(contract, "NAT_HEALTH", dataclasses.replace(contract.NAT_HEALTH, period_s=10))
        yield Target.local(nat_cloud.endpoint_url, state_dir=nat_cloud.state_dir), tmp_path_factory.mktemp("cdk.out")


def spec(endpoint: Subscriber, **network: object) -> EnvironmentSpec:
    return build_spec("lab", {"network": network, "alerts": {"https_endpoints": [endpoint.url]}})


def deploy_and_verify(lab: tuple[Target, Path], wanted: EnvironmentSpec) -> list:
    target, outdir = lab
    up(target, [wanted], outdir)
    checks = verify(target, wanted)
    assert summary(checks)["failed"] == 0, [c for c in checks if c.status == "fail"]
    assert summary(checks)["not_checkable"] == 0
    return checks


def check(checks: list, name: str) -> object:
    (found,) = [c for c in checks if c.name == name]
    return found.actual


def instances(target: Target) -> dict[str, dict]:
    """The stack's NAT instances by Name tag, whatever their state (terminated ones included)."""
    reservations = target.client("ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": ["rentaliq-lab-nat-*"]}])["Reservations"]
    found: dict[str, dict] = {}
    for instance in (i for r in reservations for i in r["Instances"]):
        name = {t["Key"]: t["Value"] for t in instance["Tags"]}["Name"]
        if instance["State"]["Name"] != "terminated" or name not in found:
            found[name] = instance
    return found


def app_default_routes(target: Target) -> list[dict]:
    ec2 = target.client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:aws-cdk:subnet-name", "Values": ["app"]}, {"Name": "tag:Name", "Values": ["rentaliq-lab/*"]}])[
        "Subnets"
    ]
    ids = [s["SubnetId"] for s in subnets]
    assert len(ids) == 2
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": ids}])["RouteTables"]
    return [r for t in tables for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]


def alarm_state(target: Target, name: str) -> str:
    return str(target.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def wait_state(target: Target, name: str, state: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while (now := alarm_state(target, name)) != state:
        assert time.monotonic() < deadline, f"{name} is {now}, not {state}, after {timeout:g} s"
        time.sleep(0.5)


def test_instance_two_nat_instances_deploy_and_pass_verify(lab, endpoint):
    target, _ = lab
    checks = deploy_and_verify(lab, spec(endpoint, nat="instance", nat_count=2))
    assert check(checks, "rentaliq-lab-vpc NAT instances running") == 2
    found = instances(target)
    assert sorted(found) == ["rentaliq-lab-nat-1", "rentaliq-lab-nat-2"]
    assert {i["State"]["Name"] for i in found.values()} == {"running"}
    assert {i["SourceDestCheck"] for i in found.values()} == {False}
    assert {i["Placement"]["AvailabilityZone"] for i in found.values()} == {"us-east-1a", "us-east-1b"}  # one per zone
    # The root volumes as the stack asked for them: 8 GB gp3, encrypted.
    volumes = target.client("ec2").describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [i["InstanceId"] for i in found.values()]}])[
        "Volumes"
    ]
    assert sorted((v["Size"], v["VolumeType"], v["Encrypted"]) for v in volumes) == [(8, "gp3", True)] * 2
    # Each app subnet's default route goes to the NAT instance of its zone.
    assert sorted(r["InstanceId"] for r in app_default_routes(target)) == sorted(i["InstanceId"] for i in found.values())


def test_a_stopped_nat_instance_alarms_and_its_subscriber_hears_it(lab, endpoint):
    target, _ = lab
    wait_state(target, HEALTH, "OK")  # running: StatusCheckFailed = 0 every period
    nat_1 = instances(target)["rentaliq-lab-nat-1"]["InstanceId"]
    target.client("ec2").stop_instances(InstanceIds=[nat_1])
    wait_state(target, HEALTH, "ALARM")
    alarm = target.client("cloudwatch").describe_alarms(AlarmNames=[HEALTH])["MetricAlarms"][0]
    assert "treated as [Breaching]" in alarm["StateReason"]
    assert alarm_state(target, OTHER) == "OK"  # the other zone's NAT instance runs on

    def wanted(message: dict) -> bool:
        body = json.loads(message["Message"])
        return body.get("AlarmName") == HEALTH and (body["OldStateValue"], body["NewStateValue"]) == ("OK", "ALARM")

    body = json.loads(endpoint.wait_for(wanted)["Message"])
    assert body["Trigger"]["MetricName"] == "StatusCheckFailed" and body["Trigger"]["Dimensions"] == [{"name": "InstanceId", "value": nat_1}]
    target.client("ec2").start_instances(InstanceIds=[nat_1])
    wait_state(target, HEALTH, "OK")


def test_a_new_instance_type_is_applied_to_the_same_instances(lab, endpoint):
    """As AWS updates an EBS-backed instance's type: stopped, modified, started; never replaced."""
    target, _ = lab
    before = {name: i["InstanceId"] for name, i in instances(target).items()}
    deploy_and_verify(lab, spec(endpoint, nat="instance", nat_count=2, nat_instance_type="t4g.micro"))
    after = instances(target)
    assert {name: i["InstanceId"] for name, i in after.items()} == before
    assert {(i["InstanceType"], i["State"]["Name"], i["SourceDestCheck"]) for i in after.values()} == {("t4g.micro", "running", False)}


def test_switch_to_gateway_replaces_the_instances_by_nat_gateways(lab, endpoint):
    target, _ = lab
    checks = deploy_and_verify(lab, spec(endpoint, nat="gateway", nat_count=1))
    assert check(checks, "rentaliq-lab-vpc NAT gateways") == 1
    assert {i["State"]["Name"] for i in instances(target).values()} == {"terminated"}
    groups = target.client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": ["rentaliq-lab-nat-sg"]}])["SecurityGroups"]
    assert groups == []
    assert target.client("cloudwatch").describe_alarms(AlarmNamePrefix="rentaliq-lab-nat-")["MetricAlarms"] == []
    routes = app_default_routes(target)
    assert len(routes) == 2 and len({r["NatGatewayId"] for r in routes}) == 1


def test_switch_to_none_with_the_secrets_manager_endpoint(lab, endpoint):
    target, _ = lab
    checks = deploy_and_verify(lab, spec(endpoint, nat="none", secrets_manager_endpoint=True))
    assert check(checks, "rentaliq-lab-vpc Secrets Manager endpoint private DNS") is True
    assert app_default_routes(target) == []  # isolated: no route out
    ec2 = target.client("ec2")
    assert [g["State"] for g in ec2.describe_nat_gateways()["NatGateways"] if g["State"] not in ("deleted", "deleting")] == []
    assert ec2.describe_internet_gateways(Filters=[{"Name": "tag:aws:cloudformation:stack-name", "Values": ["rentaliq-lab"]}])["InternetGateways"] == []
    (endpoint_sg,) = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["rentaliq-lab-endpoints-sg"]}])["SecurityGroups"]
    (app_sg,) = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["rentaliq-lab-app-sg"]}])["SecurityGroups"]
    assert [(p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"]) for p in endpoint_sg["IpPermissions"]] == [
        (443, [app_sg["GroupId"]], [])
    ]


def test_switch_to_none_without_the_endpoint_then_back_to_an_instance(lab, endpoint):
    """Dropping a resource and adding it again later (the NAT instance, its SG, its alarm) creates it anew."""
    target, _ = lab
    checks = deploy_and_verify(lab, spec(endpoint, nat="none"))
    assert check(checks, "rentaliq-lab-vpc Secrets Manager endpoint absent") is None
    endpoints = target.client("ec2").describe_vpc_endpoints()["VpcEndpoints"]
    assert [e["ServiceName"] for e in endpoints if e["State"].lower() not in ("deleted", "deleting")] == ["com.amazonaws.us-east-1.s3"]
    before = {i["InstanceId"] for i in instances(target).values()}
    checks = deploy_and_verify(lab, spec(endpoint, nat="instance"))
    (nat_1,) = [i for i in instances(target).values() if i["State"]["Name"] == "running"]
    assert nat_1["InstanceId"] not in before
    assert check(checks, "rentaliq-lab-nat-1-health dimensions") == {"InstanceId": nat_1["InstanceId"]}


def test_kill_9_while_a_nat_instance_is_created_rolls_back_and_leaves_no_orphan(lab, nat_cloud, endpoint):
    """LAB runs one NAT instance; an update to two is killed (kill -9 of the local cloud) when the second one's
    create is under way. After the restart the update is rolled back: the first instance runs on, the second and
    its instance profile and role are gone (found by their CloudFormation tags and names), and the next up works."""
    target, outdir = lab
    first = {name: i["InstanceId"] for name, i in instances(target).items() if i["State"]["Name"] == "running"}
    assert list(first) == ["rentaliq-lab-nat-1"]
    two = spec(endpoint, nat="instance", nat_count=2)
    templates([two], outdir)  # synthesized before the kill window

    cfn = target.client("cloudformation")
    earlier: set[str] = set()

    def second_in_flight(events: list[dict]) -> bool:
        return any(
            e["ResourceType"] == "AWS::EC2::Instance"
            and "publicSubnet2" in e["LogicalResourceId"]
            and e["ResourceStatus"] == "CREATE_IN_PROGRESS"
            and e["EventId"] not in earlier
            for e in events
        )

    for _attempt in range(3):  # the kill races the update: on a fast machine the update may finish first; then again
        earlier = {e["EventId"] for e in cfn.describe_stack_events(StackName="rentaliq-lab")["StackEvents"]}
        _kill_when(nat_cloud, "rentaliq-lab", lambda doomed: up(doomed, [two], outdir), second_in_flight)
        status = cfn.describe_stacks(StackName="rentaliq-lab")["Stacks"][0]["StackStatus"]
        if status != "UPDATE_COMPLETE":
            break
        deploy_and_verify(lab, spec(endpoint, nat="instance"))  # back to one NAT instance, and kill the next try
        first = {name: i["InstanceId"] for name, i in instances(target).items() if i["State"]["Name"] == "running"}
    assert status == "UPDATE_ROLLBACK_COMPLETE"
    live = {name: i["InstanceId"] for name, i in instances(target).items() if i["State"]["Name"] != "terminated"}
    assert live == first
    iam = target.client("iam")
    assert not [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"] if "publicSubnet2" in p["InstanceProfileName"]]
    assert not [r["RoleName"] for r in iam.list_roles()["Roles"] if "publicSubnet2" in r["RoleName"]]
    deploy_and_verify(lab, two)
    assert sorted(name for name, i in instances(target).items() if i["State"]["Name"] == "running") == ["rentaliq-lab-nat-1", "rentaliq-lab-nat-2"]
