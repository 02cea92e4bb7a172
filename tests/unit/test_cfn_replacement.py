"""The replacement table the local CloudFormation reads from AWS's resource schemas, and its change analysis."""

from __future__ import annotations

import pytest

from rentaliq.local.cfn import engine, schemas
from rentaliq.local.cfn.replacement import analyse


@pytest.mark.parametrize(("type_name", "prop", "expected"), [
    ("AWS::RDS::DBInstance", "DBName", "Always"),
    ("AWS::RDS::DBInstance", "DBInstanceIdentifier", "Always"),
    ("AWS::RDS::DBInstance", "StorageEncrypted", "Always"),
    ("AWS::RDS::DBInstance", "DBInstanceClass", "Never"),
    ("AWS::RDS::DBInstance", "AllocatedStorage", "Never"),
    ("AWS::RDS::DBInstance", "Engine", "Conditionally"),
    ("AWS::RDS::DBInstance", "MultiAZ", "Conditionally"),
    ("AWS::S3::Bucket", "BucketName", "Always"),
    ("AWS::S3::Bucket", "VersioningConfiguration", "Never"),
    ("AWS::SecretsManager::Secret", "Name", "Always"),
    ("AWS::SecretsManager::Secret", "Description", "Never"),
    ("AWS::EC2::VPC", "CidrBlock", "Always"),
    ("AWS::EC2::VPC", "InstanceTenancy", "Conditionally"),
    ("AWS::EC2::VPCEndpoint", "DnsOptions", "Conditionally"),
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName", "Always"),
    ("AWS::IAM::ManagedPolicy", "PolicyDocument", "Never"),
])
def test_requires_recreation(type_name: str, prop: str, expected: str) -> None:
    assert schemas.requires_recreation(type_name, prop) == expected


def test_every_local_type_has_a_schema_and_providers_read_it() -> None:
    for type_name, provider in engine.REGISTRY.items():
        assert schemas.rules(type_name).type_name == type_name
        assert provider.replace_on_change == schemas.create_only(type_name)


@pytest.mark.parametrize(("type_name", "old", "new", "causes"), [
    ("AWS::RDS::DBInstance", {"DBName": "a", "DBInstanceClass": "db.t3.micro"}, {"DBName": "b", "DBInstanceClass": "db.t3.micro"}, ["DBName"]),
    ("AWS::RDS::DBInstance", {"DBInstanceClass": "db.t3.micro"}, {"DBInstanceClass": "db.t3.small"}, []),
    ("AWS::RDS::DBInstance", {"MultiAZ": False}, {"MultiAZ": True}, []),
    ("AWS::RDS::DBInstance", {"Engine": "postgres"}, {"Engine": "mysql"}, ["Engine"]),
    ("AWS::EC2::VPC", {"InstanceTenancy": "dedicated"}, {"InstanceTenancy": "default"}, []),
    ("AWS::EC2::VPC", {"InstanceTenancy": "default"}, {"InstanceTenancy": "dedicated"}, ["InstanceTenancy"]),
    ("AWS::EC2::VPCEndpoint", {"DnsOptions": {"DnsRecordIpType": "ipv4"}}, {"DnsOptions": {"DnsRecordIpType": "dualstack"}}, []),
    ("AWS::EC2::VPCEndpoint", {"DnsOptions": {}}, {"DnsOptions": {"PrivateDnsPreference": "ALL_DOMAINS"}}, ["DnsOptions/PrivateDnsPreference"]),
])
def test_must_replace(type_name: str, old: dict, new: dict, causes: list[str]) -> None:
    assert schemas.must_replace(type_name, old, new) == causes


def test_analysis_follows_references_to_a_replaced_resource() -> None:
    old = {"Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "a"}},
        "Policy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": {"x": {"Fn::GetAtt": ["Bucket", "Arn"]}}}},
        "Other": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Description": "d"}},
    }}
    new = {"Resources": {**old["Resources"], "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b"}}}}
    changes = analyse(old, {}, new, {})
    assert list(changes) == ["Bucket", "Policy"]
    assert changes["Bucket"].replacement == "True"
    policy = changes["Policy"]
    assert policy.replacement == "True" and policy.scope == ["Properties"]
    assert {(d.target["Name"], d.target["RequiresRecreation"], d.change_source, d.causing_entity, d.evaluation) for d in policy.details} == {
        ("Bucket", "Always", "ResourceReference", "Bucket", "Static"),
        ("PolicyDocument", "Never", "ResourceAttribute", "Bucket.Arn", "Dynamic"),
    }


def test_analysis_of_a_parameter_change_and_a_conditional_one() -> None:
    template = {"Parameters": {"Multi": {"Type": "String", "Default": "false"}}, "Resources": {
        "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"MultiAZ": {"Ref": "Multi"}, "DBInstanceClass": "db.t3.micro"}},
    }}
    unchanged = analyse(template, {}, template, {"Multi": "false"})
    assert unchanged == {}
    changed = analyse(template, {}, template, {"Multi": "true"})["Db"]
    assert changed.replacement == "Conditional"
    assert [(d.change_source, d.causing_entity, d.target["RequiresRecreation"]) for d in changed.details] == [("ParameterReference", "Multi", "Conditionally")]
