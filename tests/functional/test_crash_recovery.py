"""kill -9 of the local cloud in the middle of a create, an update and a delete: after a restart every stack is
where AWS would leave it, nothing is orphaned, and the next deploy works with no manual step.

The kill is aimed by watching the stack's events (the Nth resource event, or the database's create in flight).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from rentaliq.deploy import destroy as destroy_mod
from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import deploy
from rentaliq.deploy.lifecycle import up
from rentaliq.deploy.target import Target
from rentaliq.environments import load_spec
from rentaliq.infra.cache import templates
from rentaliq.ops.verify import FAIL, verify
from tests.clouds import own_cloud
from tests.functional.test_local_cloud import _wait_dead

pytestmark = pytest.mark.slow

LAB = "rentaliq-lab"
INTERRUPTED = "interrupted: the local cloud stopped during this operation"


crash_cloud = own_cloud("crash", "The cloud these tests kill -9 and restart.")


@pytest.fixture(scope="module")
def target(crash_cloud) -> Target:
    return Target.local(crash_cloud.endpoint_url)


@pytest.fixture(scope="module")
def outdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


def _impatient(cloud) -> Target:
    """A target that gives up at once when the server is gone (the doomed deploy's thread must end quickly)."""
    target = Target.local(cloud.endpoint_url)
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    for service in ("cloudformation", "s3", "rds", "secretsmanager", "iam", "ec2"):
        target._clients[service] = session.client(
            service, endpoint_url=cloud.endpoint_url, config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30)
        )
    return target


def _kill_when(cloud, stack_name: str, run: Callable[[Target], object], ready: Callable[[list[dict]], bool], *, clean_stop: bool = False) -> None:
    """Run an operation in a thread; kill -9 the server (or stop it) when the stack's events satisfy ``ready``; restart it."""
    doomed = _impatient(cloud)
    thread = threading.Thread(target=lambda: _swallow(run, doomed), daemon=True)
    thread.start()
    watcher = _impatient(cloud).client("cloudformation")
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the kill point never came"
        try:
            events = watcher.describe_stack_events(StackName=stack_name)["StackEvents"]
        except Exception:  # noqa: BLE001 - the stack may not exist yet
            events = []
        if ready(events):
            break
        time.sleep(0.05)
    if clean_stop:
        cloud.stop()
    else:
        pid = cloud.status().pid
        os.kill(pid, signal.SIGKILL)
        _wait_dead(pid)
    thread.join(60)
    assert not thread.is_alive()
    cloud.start(timeout=90)


def _swallow(run, target) -> None:
    try:
        run(target)
    except Exception:  # noqa: BLE001 - the server died under it, as intended
        pass


def _count(status: str, n: int) -> Callable[[list[dict]], bool]:
    return lambda events: sum(e["ResourceStatus"] == status and e["ResourceType"] != "AWS::CloudFormation::Stack" for e in events) >= n


def _database_in_flight(events: list[dict]) -> bool:
    return any(e["ResourceType"] == "AWS::RDS::DBInstance" and e["ResourceStatus"] == "CREATE_IN_PROGRESS" for e in events)


def _stack_events(target, stack_name):
    return target.client("cloudformation").describe_stack_events(StackName=stack_name)["StackEvents"]


def _orphans(target, cloud, env: str = "lab", *, retained_log_groups: bool = False) -> dict[str, list]:
    """Everything of the environment still in the cloud; empty lists when nothing is left behind."""
    s3, sm, iam, ec2, rds = (target.client(s) for s in ("s3", "secretsmanager", "iam", "ec2", "rds"))
    prefix = f"rentaliq-{env}"
    found = {
        "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(prefix)],
        "secrets": [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"] if s["Name"].startswith(f"rentaliq/{env}/")],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)],
        "policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"].startswith(prefix)],
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")],
        "addresses": [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]],
        "db_instances": [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"].startswith(prefix)],
        "parameter_groups": [
            g["DBParameterGroupName"] for g in rds.describe_db_parameter_groups()["DBParameterGroups"] if g["DBParameterGroupName"].startswith(prefix)
        ],
        "postgres_dirs": sorted(p.name for p in (cloud.state_dir / "postgres").glob(f"{prefix}*")) if (cloud.state_dir / "postgres").exists() else [],
    }
    if not retained_log_groups:
        found["log_groups"] = [g["logGroupName"] for g in target.client("logs").describe_log_groups()["logGroups"] if g["logGroupName"].startswith(prefix)]
    return {k: v for k, v in found.items() if v}


def _assert_interrupted(target, stack_name: str, status: str) -> None:
    stack = stacks.describe(target, stack_name)
    assert stack is not None and stack["StackStatus"] == status
    reasons = [e.get("ResourceStatusReason") or "" for e in _stack_events(target, stack_name) if e["ResourceType"] == "AWS::CloudFormation::Stack"]
    assert any(INTERRUPTED in r for r in reasons), reasons


@pytest.mark.parametrize("kill_point", ["database-in-flight", "late", "stopped-while-database-in-flight"])
def test_kill_during_create_rolls_back_and_the_next_up_succeeds(crash_cloud, target, outdir, kill_point):
    lab = load_spec("lab")
    templates([lab], outdir)  # synth first (cached), before the kill window
    ready = _count("CREATE_COMPLETE", 35) if kill_point == "late" else _database_in_flight
    _kill_when(crash_cloud, LAB, lambda t: up(t, [lab], outdir), ready, clean_stop=kill_point.startswith("stopped"))

    _assert_interrupted(target, LAB, "ROLLBACK_COMPLETE")
    assert not target.client("cloudformation").describe_stack_resources(StackName=LAB)["StackResources"]
    assert _orphans(target, crash_cloud) == {}

    [result] = up(target, [lab], outdir)  # no manual step
    assert result.deploy.status == "CREATE_COMPLETE" and result.database
    assert not [c for c in verify(target, lab) if c.status == FAIL]  # and the environment conforms to its spec
    _destroy(target, lab)
    assert _orphans(target, crash_cloud, retained_log_groups=True) == {}


def _destroy(target, spec) -> str:
    plan = destroy_mod.plan(target, spec)
    destroy_mod.check(target, spec, plan, confirm_prod=False, empty_buckets=True)
    return destroy_mod.destroy(target, spec, plan)


def test_kill_during_update_rolls_back_to_the_last_good_template(crash_cloud, target, outdir, tmp_path):
    lab = load_spec("lab")
    [first] = up(target, [lab], outdir)
    original = json.loads((outdir / f"{LAB}.template.json").read_text())
    changed = json.loads(json.dumps(original))
    for resource in changed["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            resource["Properties"]["Threshold"] = 42
    for i in range(20):
        changed["Resources"][f"Extra{i}"] = {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": f"rentaliq/lab/extra/{i}", "SecretString": "x"}}
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    cloudwatch = target.client("cloudwatch")
    thresholds = {a["AlarmName"]: a["Threshold"] for a in cloudwatch.describe_alarms(AlarmNamePrefix="rentaliq-lab")["MetricAlarms"]}

    def halfway(events: list[dict]) -> bool:
        return sum(e["ResourceStatus"] == "CREATE_COMPLETE" and e["LogicalResourceId"].startswith("Extra") for e in events) >= 8

    _kill_when(crash_cloud, LAB, lambda t: deploy(t, lab, path), halfway)

    _assert_interrupted(target, LAB, "UPDATE_ROLLBACK_COMPLETE")
    secrets = [s["Name"] for s in target.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    assert not [s for s in secrets if s.startswith("rentaliq/lab/extra/")]  # the update's additions are gone
    assert {a["AlarmName"]: a["Threshold"] for a in cloudwatch.describe_alarms(AlarmNamePrefix="rentaliq-lab")["MetricAlarms"]} == thresholds
    template = target.client("cloudformation").get_template(StackName=LAB)["TemplateBody"]
    assert "Extra0" not in (template if isinstance(template, dict) else json.loads(template))["Resources"]
    assert stacks.outputs(stacks.describe(target, LAB)) == first.deploy.outputs

    [again] = up(target, [lab], outdir)
    assert again.deploy.status in ("UPDATE_ROLLBACK_COMPLETE", "UPDATE_COMPLETE") and again.database
    # Everything conforms. (verify still counts UPDATE_ROLLBACK_COMPLETE, a settled state on AWS, as a failed status.)
    assert not [c for c in verify(target, lab) if c.status == FAIL and (c.area, c.name) != ("Stack", "status")]


def test_kill_during_delete_ends_delete_failed_and_a_second_destroy_finishes(crash_cloud, target, outdir):
    lab = load_spec("lab")
    if stacks.describe(target, LAB) is None:
        up(target, [lab], outdir)
    target.client("s3").put_object(Bucket="rentaliq-lab-files", Key="doomed.txt", Body=b"x")
    _kill_when(crash_cloud, LAB, lambda t: _destroy(t, lab), _count("DELETE_COMPLETE", 12))

    _assert_interrupted(target, LAB, "DELETE_FAILED")
    assert _destroy(target, lab) == "DELETE_COMPLETE"
    assert _orphans(target, crash_cloud, retained_log_groups=True) == {}
    [result] = up(target, [lab], outdir)
    assert result.deploy.status == "CREATE_COMPLETE"


def test_a_stack_left_in_review_by_a_crash_is_removed(crash_cloud, target):
    cfn = target.client("cloudformation")
    body = json.dumps({"Resources": {"S": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "rentaliq/review/s", "SecretString": "x"}}}})
    cfn.create_change_set(StackName="rentaliq-review", ChangeSetName="never-executed", ChangeSetType="CREATE", TemplateBody=body)
    assert stacks.describe(target, "rentaliq-review")["StackStatus"] == "REVIEW_IN_PROGRESS"
    pid = crash_cloud.status().pid
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)
    crash_cloud.start(timeout=90)
    assert stacks.describe(target, "rentaliq-review") is None
    assert not _has_stack(cfn, "rentaliq-review")
    cfn.create_change_set(StackName="rentaliq-review", ChangeSetName="again", ChangeSetType="CREATE", TemplateBody=body)
    cfn.create_change_set(StackName="rentaliq-review", ChangeSetName="third", ChangeSetType="CREATE", TemplateBody=body)
    # one stack of that name, as on AWS (moto made one per CREATE change set)
    assert [s["StackStatus"] for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == "rentaliq-review"] == ["REVIEW_IN_PROGRESS"]


def _has_stack(cfn, name) -> bool:
    return any(s["StackName"] == name for s in cfn.describe_stacks()["Stacks"])
