"""The replacement table the local CloudFormation reads from AWS's resource schemas, and its change analysis."""

from __future__ import annotations

import pytest

from rentaliq.local.cfn import engine, schemas
from rentaliq.local.cfn.replacement import analyse


@pytest.mark.parametrize(
    ("type_name", "prop", "expected"),
    [
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
    ],
)
def test_requires_recreation(type_name: str, prop: str, expected: str) -> None:
    assert schemas.requires_recreation(type_name, prop) == expected


def test_every_local_type_has_a_schema_and_providers_read_it() -> None:
    for type_name, provider in engine.REGISTRY.items():
        assert schemas.rules(type_name).type_name == type_name
        assert provider.replace_on_change == schemas.create_only(type_name)


@pytest.mark.parametrize(
    ("type_name", "old", "new", "causes"),
    [
        ("AWS::RDS::DBInstance", {"DBName": "a", "DBInstanceClass": "db.t3.micro"}, {"DBName": "b", "DBInstanceClass": "db.t3.micro"}, ["DBName"]),
        ("AWS::RDS::DBInstance", {"DBInstanceClass": "db.t3.micro"}, {"DBInstanceClass": "db.t3.small"}, []),
        ("AWS::RDS::DBInstance", {"MultiAZ": False}, {"MultiAZ": True}, []),
        ("AWS::RDS::DBInstance", {"Engine": "postgres"}, {"Engine": "mysql"}, ["Engine"]),
        ("AWS::EC2::VPC", {"InstanceTenancy": "dedicated"}, {"InstanceTenancy": "default"}, []),
        ("AWS::EC2::VPC", {"InstanceTenancy": "default"}, {"InstanceTenancy": "dedicated"}, ["InstanceTenancy"]),
        ("AWS::EC2::VPCEndpoint", {"DnsOptions": {"DnsRecordIpType": "ipv4"}}, {"DnsOptions": {"DnsRecordIpType": "dualstack"}}, []),
        ("AWS::EC2::VPCEndpoint", {"DnsOptions": {}}, {"DnsOptions": {"PrivateDnsPreference": "ALL_DOMAINS"}}, ["DnsOptions/PrivateDnsPreference"]),
    ],
)
def test_must_replace(type_name: str, old: dict, new: dict, causes: list[str]) -> None:
    assert schemas.must_replace(type_name, old, new) == causes


def test_analysis_follows_references_to_a_replaced_resource() -> None:
    old = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "a"}},
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": {"x": {"Fn::GetAtt": ["Bucket", "Arn"]}}},
            },
            "Other": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Description": "d"}},
        }
    }
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
    template = {
        "Parameters": {"Multi": {"Type": "String", "Default": "false"}},
        "Resources": {
            "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"MultiAZ": {"Ref": "Multi"}, "DBInstanceClass": "db.t3.micro"}},
        },
    }
    unchanged = analyse(template, {}, template, {"Multi": "false"})
    assert unchanged == {}
    # MultiAZ is conditional only for Aurora: for this standalone instance the update is in place, and is reported so.
    changed = analyse(template, {}, template, {"Multi": "true"})["Db"]
    assert changed.replacement == "False"
    assert [(d.change_source, d.causing_entity, d.target["RequiresRecreation"]) for d in changed.details] == [("ParameterReference", "Multi", "Never")]
    # A conditional property without a known rule (Engine) stays Conditional, as AWS reports it.
    engine_template = {
        "Parameters": {"Engine": {"Type": "String", "Default": "postgres"}},
        "Resources": {
            "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"Engine": {"Ref": "Engine"}}},
        },
    }
    engine_change = analyse(engine_template, {}, engine_template, {"Engine": "mysql"})["Db"]
    assert (engine_change.replacement, engine_change.details[0].target["RequiresRecreation"]) == ("Conditional", "Conditionally")


@pytest.mark.parametrize(
    ("type_name", "prop", "old", "new", "replacement", "recreation"),
    [
        ("AWS::RDS::DBInstance", "BackupRetentionPeriod", "7", "14", "False", "Never"),
        ("AWS::RDS::DBInstance", "MultiAZ", False, True, "False", "Never"),
        ("AWS::RDS::DBInstance", "PreferredMaintenanceWindow", "sun:03:00-sun:04:00", "mon:03:00-mon:04:00", "False", "Never"),
        ("AWS::RDS::DBInstance", "DBName", "a", "b", "True", "Always"),
        ("AWS::EC2::VPC", "InstanceTenancy", "dedicated", "default", "False", "Never"),
        ("AWS::EC2::VPC", "InstanceTenancy", "default", "dedicated", "True", "Always"),
    ],
)
def test_report_uses_the_executed_rule(type_name, prop, old, new, replacement, recreation) -> None:
    """The change set's Replacement is what the update executes (``schemas.must_replace``), for known values."""
    before = {"Resources": {"R": {"Type": type_name, "Properties": {prop: old}}}}
    after = {"Resources": {"R": {"Type": type_name, "Properties": {prop: new}}}}
    change = analyse(before, {}, after, {})["R"]
    assert (change.replacement, change.details[0].target["RequiresRecreation"]) == (replacement, recreation)
    assert bool(schemas.must_replace(type_name, {prop: old}, {prop: new})) == (replacement == "True")


# -- templates: YAML short forms, Fn::Cidr --------------------------------------------------------------------------


def test_yaml_short_forms_become_long_forms_as_plain_values() -> None:
    import pickle

    from rentaliq.local.cfn.templates import parse

    document = parse(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Conditions:\n  P: !Equals [!Ref Env, prod]\n  Q: !Not [!Condition P]\n"
        "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
        "      BucketName: !Sub '${AWS::StackName}-b'\n      X: !GetAtt B.Arn\n      Y: !GetAtt [B, Arn]\n"
        "      Z: !Select [0, !Split [',', !ImportValue shared]]\n      N: 3\n      F: true\n"
    )
    assert document["AWSTemplateFormatVersion"] == "2010-09-09"
    assert document["Conditions"] == {"P": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}, "Q": {"Fn::Not": [{"Condition": "P"}]}}
    props = document["Resources"]["B"]["Properties"]
    assert props == {
        "BucketName": {"Fn::Sub": "${AWS::StackName}-b"},
        "X": {"Fn::GetAtt": ["B", "Arn"]},
        "Y": {"Fn::GetAtt": ["B", "Arn"]},
        "Z": {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::ImportValue": "shared"}]}]},
        "N": 3,
        "F": True,
    }
    assert type(props["BucketName"]["Fn::Sub"]) is str
    assert pickle.loads(pickle.dumps(document)) == document  # the local cloud's state is pickled


@pytest.mark.parametrize("body", ["Resources:\n  A: [unclosed\n", "- just\n- a list\n"])
def test_bad_template_is_one_line_format_error(body: str) -> None:
    from moto.cloudformation.exceptions import ValidationError

    from rentaliq.local.cfn.templates import parse

    with pytest.raises(ValidationError, match="Template format error"):
        parse(body)


def test_fn_cidr() -> None:
    from rentaliq.local.cfn.templates import cidr

    assert cidr("10.0.0.0/16", 3, 8) == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
    assert cidr("192.168.0.0/24", 2, 6) == ["192.168.0.0/26", "192.168.0.64/26"]


# -- generated names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logical_id", "max_length", "lower", "suffix", "expected"),
    [
        # Names real CloudFormation generated for a stack called ChineseboostAnalyticsStack.
        ("RainlyticsLogsBucket8DF4", 63, True, "hdst4ohfvdif", "chineseboostanalyticsstac-rainlyticslogsbucket8df4-hdst4ohfvdif"),
        ("RainlyticsSummariesJobFunction", 64, False, "UjecjFhpdr1d", "ChineseboostAnalyticsStac-RainlyticsSummariesJobFun-UjecjFhpdr1d"),
        ("RainlyticsSummariesJobLogs1C6CB09C", 512, False, "UJ5n2NwuSPZB", "ChineseboostAnalyticsStack-RainlyticsSummariesJobLogs1C6CB09C-UJ5n2NwuSPZB"),
    ],
)
def test_generated_names_match_cloudformation(logical_id, max_length, lower, suffix, expected) -> None:
    from rentaliq.local.cfn.naming import physical_name

    assert physical_name("ChineseboostAnalyticsStack", logical_id, max_length, lower=lower, suffix=suffix) == expected


def test_a_long_stack_name_never_drops_the_logical_id() -> None:
    from rentaliq.local.cfn.base import Context

    stack = "rentaliq-" + "x" * 120
    for max_length in (63, 64, 255):
        name = Context("1", "us-east-1", stack, "FilesBucket").generated_name(max_length)
        assert len(name) <= max_length
        head, logical, suffix = name.rsplit("-", 2)
        assert "FilesBucket".startswith(logical) and len(logical) >= min(len("FilesBucket"), (max_length - 14) // 2)
        assert len(suffix) == 12 and suffix.isalnum()
    # A short part leaves its share to the other one.
    assert Context("1", "r", "lab", "L" * 100).generated_name(64).startswith("lab-" + "L" * 47 + "-")
    assert Context("1", "r", "S" * 100, "Db").generated_name(64).startswith("S" * 48 + "-Db-")
    names = {Context("1", "r", stack, "FilesBucket").generated_name(63, lower=True) for _ in range(20)}
    assert len(names) == 20 and all(n == n.lower() for n in names)


# -- the moto internals these features patch (fails loudly when an upgrade moves them) ---------------------------


@pytest.mark.parametrize(
    ("module", "attribute"),
    [
        ("moto.cloudformation.models", "ChangeSet.diff"),
        ("moto.cloudformation.models", "ChangeSet._parse_template"),
        ("moto.cloudformation.models", "Stack.parse_template"),
        ("moto.cloudformation.models", "Stack.parameter_list"),
        ("moto.cloudformation.models", "Stack.update"),
        ("moto.cloudformation.models", "Stack._create_resource_map"),
        ("moto.cloudformation.models", "generate_changeset_id"),
        ("moto.cloudformation.parsing", "ResourceMap.build_resource_diff"),
        ("moto.cloudformation.parsing", "clean_json"),
        ("moto.cloudformation.responses", "CloudFormationResponse.create_change_set"),
        ("moto.cloudformation.responses", "CloudFormationResponse.describe_change_set"),
        ("moto.cloudformation.utils", "generate_stack_id"),
    ],
)
def test_patched_moto_internals_exist(module: str, attribute: str) -> None:
    import importlib

    target = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
