"""cfn-lint finds no errors; the nag packs run on every synth and block unacknowledged findings."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import Stack
from aws_cdk import aws_s3 as s3

from rentaliq.environments import load_spec
from rentaliq.infra.app import FEATURE_FLAGS, build_app


@pytest.mark.parametrize("env", ["lab", "qa", "prod"])
def test_cfn_lint_reports_no_errors(synthesized, env, tmp_path):
    from cfnlint.api import lint_all

    path = tmp_path / f"{env}.json"
    path.write_text(json.dumps(synthesized[env]))
    errors = [m for m in lint_all(path.read_text()) if m.rule.id.startswith("E") and not _budget_refused_by_the_spec(m)]
    assert errors == []


def _budget_refused_by_the_spec(match) -> bool:
    """CloudFormation has no AWS::Budgets::Budget in some regions; the spec refuses cost.budget there
    (tests/unit/test_budget_template.py), so those regions' E3006 for the budget cannot happen."""
    from rentaliq.spec.aws import budget_region_problem

    region = re.search(r"does not exist in '([a-z0-9-]+)'", match.message)
    return match.rule.id == "E3006" and "AWS::Budgets::Budget" in match.message and region is not None and budget_region_problem(region[1]) is not None


def test_an_unacknowledged_finding_fails_the_synth(tmp_path):
    """The packs are live: a bucket with no logging, TLS policy or versioning must stop the synth."""
    app = build_app([load_spec("lab")], tmp_path)
    s3.Bucket(Stack(app, "Probe"), "Naked")
    with pytest.raises(RuntimeError) as info:
        app.synth()
    assert "Probe/Naked/Resource" in str(info.value)
    assert "AwsSolutions-S1" in str(info.value) and "HIPAA.Security-S3BucketSSLRequestsOnly" in str(info.value)


def test_cdk_json_uses_the_same_feature_flags_as_the_python_app():
    cdk_json = json.loads(open("cdk.json").read())
    assert cdk_json["context"] == FEATURE_FLAGS
    assert cdk_json["app"] == "python -m rentaliq.infra.app"


# Issue 12 section 2: PCI DSS 3.2.1 and NIST 800-53 r5 beside AwsSolutions and HIPAA; warnings block like errors.


def _probe_findings(tmp_path, build) -> dict[tuple[str, str], str]:
    """Synthesize a small app with the four packs on; its unacknowledged findings as (rule, construct path) -> severity."""
    from aws_cdk import App

    from rentaliq.infra.compliance import add_compliance_packs

    app = App(outdir=str(tmp_path))
    build(Stack(app, "Probe"))
    add_compliance_packs(app)
    try:
        app.synth()
    except RuntimeError:
        pass
    report = json.loads((tmp_path / "validation-report.json").read_text())
    return {
        (v["ruleName"], c["constructPath"]): v["severity"] for plugin in report["pluginReports"] for v in plugin["violations"] for c in v["violatingConstructs"]
    }


def _vpc_without_flow_logs(stack, *acknowledged: str):
    from aws_cdk import aws_ec2 as ec2

    from rentaliq.infra.compliance import acknowledge

    vpc = ec2.CfnVPC(stack, "Vpc", cidr_block="10.9.0.0/16")
    for rule in acknowledged:
        acknowledge(vpc, id=rule, reason="probe")


def test_all_four_packs_run_on_every_synth(tmp_path):
    """A bucket with nothing on it is a finding in each pack, under each pack's own prefix."""
    findings = _probe_findings(tmp_path, lambda stack: s3.Bucket(stack, "Naked"))
    rules = {rule for rule, path in findings if path == "Probe/Naked/Resource"}
    for rule in ("AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled", "PCI.DSS.321-S3BucketLoggingEnabled", "NIST.800.53.R5-S3BucketLoggingEnabled"):
        assert rule in rules


def test_an_unacknowledged_warning_fails_the_synth_in_every_pack(tmp_path):
    """With the flow-log errors acknowledged, only the default-security-group warnings remain: the synth still fails on them."""
    from aws_cdk import App
    from aws_cdk import aws_ec2 as ec2

    from rentaliq.infra.compliance import acknowledge, add_compliance_packs

    app = App(outdir=str(tmp_path))
    vpc = ec2.CfnVPC(Stack(app, "Probe"), "Vpc", cidr_block="10.9.0.0/16")
    for rule in ("AwsSolutions-VPC7", "HIPAA.Security-VPCFlowLogsEnabled"):
        acknowledge(vpc, id=rule, reason="probe")
    add_compliance_packs(app)
    with pytest.raises(RuntimeError):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = {v["ruleName"]: v["severity"] for plugin in report["pluginReports"] for v in plugin["violations"]}
    assert findings == {
        "HIPAA.Security-VPCDefaultSecurityGroupClosed": "warning",
        "PCI.DSS.321-VPCDefaultSecurityGroupClosed": "warning",
        "NIST.800.53.R5-VPCDefaultSecurityGroupClosed": "warning",
    }


def test_a_hipaa_acknowledgment_covers_its_pci_and_nist_twins_and_nothing_else(tmp_path):
    from rentaliq.infra.compliance import acknowledged_ids

    findings = _probe_findings(tmp_path, lambda stack: _vpc_without_flow_logs(stack, "AwsSolutions-VPC7", "HIPAA.Security-VPCFlowLogsEnabled"))
    assert set(findings) == {(f"{pack}-VPCDefaultSecurityGroupClosed", "Probe/Vpc") for pack in ("HIPAA.Security", "PCI.DSS.321", "NIST.800.53.R5")}
    assert acknowledged_ids("AwsSolutions-S1") == ["AwsSolutions-S1"]
    assert acknowledged_ids("PCI.DSS.321-S3BucketReplicationEnabled") == ["PCI.DSS.321-S3BucketReplicationEnabled"]


def test_prod_acknowledgments_name_a_pack_and_carry_a_reason():
    """Every acknowledgment in PROD's construct tree names one of the four packs' rules and says why (no typo hides a finding)."""
    from rentaliq.infra.compliance import PACKS

    app = build_app([load_spec("prod")], nag=False)
    acknowledged = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                for rule, reason in entry.data.items():
                    if rule.startswith("Annotation::"):  # ours; CDK acknowledges some of its own (CloudFormation-Validate::...)
                        acknowledged[(rule.removeprefix("Annotation::"), construct.node.path)] = reason
    assert len(acknowledged) > 20
    for (rule, path), reason in acknowledged.items():
        assert rule.split("-", 1)[0] in PACKS, (rule, path)
        assert len(reason.strip()) > 20, (rule, path)


def test_an_acknowledgment_writes_the_checkov_twin_skip_once_with_its_reason_on_the_cloudformation_resource():
    from aws_cdk import App

    from rentaliq.infra.checkov_skips import METADATA_KEY
    from rentaliq.infra.compliance import acknowledge

    stack = Stack(App(), "Probe")
    bucket = s3.Bucket(stack, "Files")
    acknowledge(bucket, id="HIPAA.Security-S3BucketVersioningEnabled", reason="Spec: versioning is off in LAB (cost savings).")
    acknowledge(bucket, id="HIPAA.Security-S3BucketVersioningEnabled", reason="said twice")
    acknowledge(bucket, id="AwsSolutions-S1", reason="no Checkov twin of its own: HIPAA's S3BucketLoggingEnabled carries CKV_AWS_18")
    skips = bucket.node.default_child.get_metadata(METADATA_KEY)["skip"]
    assert skips == [{"id": "CKV_AWS_21", "comment": "Spec: versioning is off in LAB (cost savings)."}]
    with pytest.raises(ValueError, match=r"no CloudFormation resource to carry its Checkov skip \(CKV_AWS_21\)"):
        acknowledge(Stack(App(), "Empty"), id="HIPAA.Security-S3BucketVersioningEnabled", reason="a stack is not a resource")
