"""Issue 11 section 2 on the synthesized templates: each ``network.nat`` choice builds what it promises, and a
switch between choices never replaces a subnet (nor, through its subnet group, the database).

The built-in specs cover ``none`` (LAB) and ``instance`` (QA one, PROD two) through the session's synthesis;
``gateway`` and the Secrets Manager endpoint get one more synthesis of their own (both nag packs on).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rentaliq.environments import build_spec
from tests.unit.templates import of_type, one, ref, tags

ENDPOINT = {"network": {"nat": "none", "secrets_manager_endpoint": True}}


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, dict]:
    """LAB with managed NAT gateways (two), QA isolated with the Secrets Manager endpoint; nag must pass on both."""
    from rentaliq.infra.app import synthesize

    specs = [build_spec("lab", {"network": {"nat": "gateway", "nat_count": 2}}), build_spec("qa", ENDPOINT)]
    outdir = tmp_path_factory.mktemp("cdk.out")
    return {r.spec.name.value: json.loads(Path(r.template_path).read_text()) for r in synthesize(specs, outdir)}


def _default_routes(template: dict) -> dict[str, dict]:
    return {lid: r["Properties"] for lid, r in of_type(template, "AWS::EC2::Route").items() if "appSubnet" in lid}


def test_none_isolates_the_app_subnets_and_keeps_only_the_s3_endpoint(synthesized):
    lab = synthesized["lab"]
    assert not _default_routes(lab)  # no route out of the app subnets at all
    for kind in ("AWS::EC2::NatGateway", "AWS::EC2::Instance", "AWS::EC2::EIP", "AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment"):
        assert not of_type(lab, kind), kind
    _, s3 = one(lab, "AWS::EC2::VPCEndpoint")
    assert s3["Properties"]["VpcEndpointType"] == "Gateway"
    assert not [g for g in of_type(lab, "AWS::EC2::SecurityGroup").values() if g["Properties"].get("GroupName") == "rentaliq-lab-nat-sg"]


@pytest.mark.parametrize(("env", "count"), [("qa", 1), ("prod", 2)])
def test_instance_builds_hardened_nat_instances_and_routes_the_app_subnets_to_them(synthesized, env, count):
    template = synthesized[env]
    instances = of_type(template, "AWS::EC2::Instance")
    assert len(instances) == count
    sg_lid, sg = one(template, "AWS::EC2::SecurityGroup", GroupName=f"rentaliq-{env}-nat-sg")
    cidr = {"qa": "10.20.0.0/16", "prod": "10.30.0.0/16"}[env]
    assert sg["Properties"]["SecurityGroupIngress"] == [{"CidrIp": cidr, "Description": "All traffic from the VPC, to be forwarded", "IpProtocol": "-1"}]
    assert [r["IpProtocol"] for r in sg["Properties"]["SecurityGroupEgress"]] == ["-1"]
    assert tags(sg)["Name"] == f"rentaliq-{env}-nat-sg"
    public_subnets = {lid for lid in of_type(template, "AWS::EC2::Subnet") if "publicSubnet" in lid}
    names = []
    for instance in instances.values():
        p = instance["Properties"]
        assert p["InstanceType"] == "t4g.nano" and p["SourceDestCheck"] is False
        assert p["SecurityGroupIds"] == [{"Fn::GetAtt": [sg_lid, "GroupId"]}]
        assert p["SubnetId"]["Ref"] in public_subnets
        assert p["MetadataOptions"]["HttpTokens"] == "required"
        assert p["BlockDeviceMappings"] == [
            {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 8, "VolumeType": "gp3"}}
        ]
        assert "KeyName" not in p  # no SSH key: nothing to log in with
        image = template["Parameters"][p["ImageId"]["Ref"]]
        assert image["Default"] == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"  # t4g is Graviton
        names.append(tags(instance)["Name"])
    assert sorted(names) == [f"rentaliq-{env}-nat-{n}" for n in range(1, count + 1)]
    # Every app subnet's default route goes to a NAT instance; one per zone when there are two.
    targets = [r["InstanceId"] for r in _default_routes(template).values()]
    assert len(targets) == 2 and all(t in [ref(lid) for lid in instances] for t in targets)
    assert len({json.dumps(t) for t in targets}) == count


@pytest.mark.parametrize(("env", "count"), [("qa", 1), ("prod", 2)])
def test_each_nat_instance_has_a_health_alarm_on_the_alerts_topic(synthesized, env, count):
    template = synthesized[env]
    topic, _ = one(template, "AWS::SNS::Topic", TopicName=f"rentaliq-{env}-alerts")
    instances = of_type(template, "AWS::EC2::Instance")
    by_name = {tags(r)["Name"]: lid for lid, r in instances.items()}
    for n in range(1, count + 1):
        _, alarm = one(template, "AWS::CloudWatch::Alarm", AlarmName=f"rentaliq-{env}-nat-{n}-health")
        p = alarm["Properties"]
        assert (p["Namespace"], p["MetricName"], p["Statistic"], p["Period"]) == ("AWS/EC2", "StatusCheckFailed", "Maximum", 60)
        assert (p["ComparisonOperator"], p["Threshold"], p["EvaluationPeriods"], p["DatapointsToAlarm"]) == ("GreaterThanOrEqualToThreshold", 1, 2, 2)
        assert p["TreatMissingData"] == "breaching"  # a stopped instance publishes nothing: that is down
        assert p["Dimensions"] == [{"Name": "InstanceId", "Value": ref(by_name[f"rentaliq-{env}-nat-{n}"])}]
        assert p["AlarmActions"] == p["OKActions"] == [ref(topic)]


def test_gateway_builds_one_nat_gateway_per_nat(variants):
    lab = variants["lab"]
    assert len(of_type(lab, "AWS::EC2::NatGateway")) == 2 and len(of_type(lab, "AWS::EC2::EIP")) == 2
    assert not of_type(lab, "AWS::EC2::Instance")
    gateways = [ref(lid) for lid in of_type(lab, "AWS::EC2::NatGateway")]
    assert sorted(json.dumps(r["NatGatewayId"]) for r in _default_routes(lab).values()) == sorted(json.dumps(g) for g in gateways)


def test_secrets_manager_endpoint_private_dns_in_app_subnets_https_from_the_app_sg_only(variants):
    qa = variants["qa"]
    _, endpoint = one(qa, "AWS::EC2::VPCEndpoint", VpcEndpointType="Interface")
    p = endpoint["Properties"]
    assert p["ServiceName"] == "com.amazonaws.us-east-1.secretsmanager" and p["PrivateDnsEnabled"] is True
    app_subnets = sorted(lid for lid in of_type(qa, "AWS::EC2::Subnet") if "appSubnet" in lid)
    assert sorted(s["Ref"] for s in p["SubnetIds"]) == app_subnets
    sg_lid, sg = one(qa, "AWS::EC2::SecurityGroup", GroupName="rentaliq-qa-endpoints-sg")
    assert p["SecurityGroupIds"] == [{"Fn::GetAtt": [sg_lid, "GroupId"]}]
    assert "SecurityGroupIngress" not in sg["Properties"]  # no CIDR may reach it
    app_lid, _ = one(qa, "AWS::EC2::SecurityGroup", GroupName="rentaliq-qa-app-sg")
    ingress = [
        r["Properties"] for r in of_type(qa, "AWS::EC2::SecurityGroupIngress").values() if r["Properties"]["GroupId"] == {"Fn::GetAtt": [sg_lid, "GroupId"]}
    ]
    assert ingress == [
        {
            "Description": "HTTPS from the app SG",
            "FromPort": 443,
            "GroupId": {"Fn::GetAtt": [sg_lid, "GroupId"]},
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {"Fn::GetAtt": [app_lid, "GroupId"]},
            "ToPort": 443,
        }
    ]


def test_a_switch_between_choices_keeps_every_subnet_and_the_database(synthesized, variants):
    """The public subnets' ranges stay reserved under ``none``: same logical ids, same CIDRs, so an update never
    replaces an app or DB subnet, the DB subnet group, or the database."""
    for none, other in ((synthesized["lab"], variants["lab"]), (variants["qa"], synthesized["qa"])):
        kept = {lid: r["Properties"]["CidrBlock"] for lid, r in of_type(none, "AWS::EC2::Subnet").items()}
        assert kept and all(of_type(other, "AWS::EC2::Subnet")[lid]["Properties"]["CidrBlock"] == cidr for lid, cidr in kept.items())
        for kind in ("AWS::RDS::DBInstance", "AWS::RDS::DBSubnetGroup"):
            assert of_type(none, kind) == of_type(other, kind), kind
