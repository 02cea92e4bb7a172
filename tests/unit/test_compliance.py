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
