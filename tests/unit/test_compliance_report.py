"""Issue 12 section 2: `rentaliq compliance ENV`. The report's table names constructs, cdk-nag rules and verify checks;
these tests hold each name to the code, and each claim to the stack's acknowledgments, so the report cannot rot."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
from pathlib import Path

import pytest

from rentaliq.environments import load_spec, load_specs
from rentaliq.infra.compliance import acknowledged_ids, nag_rules
from rentaliq.ops.compliance import CONTROLS, GAPS, compliance_report, verify_check_name
from tests.cli_runs import ok, one_line_error, rentaliq

ENVS = ("lab", "qa", "prod")
ACK = "aws:cdk:acknowledged-rules"


@pytest.fixture(scope="module")
def stacks():
    """The three stacks' construct trees (no synth, no nag run: the tree is all these tests read)."""
    from rentaliq.infra.app import build_app

    app = build_app(load_specs(), nag=False)
    return {spec.name.value: app.node.find_child(spec.stack_name) for spec in load_specs()}


def _acknowledged(stack) -> set[tuple[str, str]]:
    """(rule id without its [finding] suffix, construct path inside the stack) for every acknowledgment of ours."""
    found = set()
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACK:
                for rule in entry.data:
                    if rule.startswith("Annotation::"):
                        found.add((rule.removeprefix("Annotation::").split("[", 1)[0], construct.node.path.split("/", 1)[1]))
    return found


def _related(a: str, b: str) -> bool:
    """An acknowledgment on a construct covers its children; a construct path covers its CloudFormation child."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@functools.cache
def _verify_names() -> dict[str, list[re.Pattern[str]]]:
    """Per verify module, the check names it can record: its string literals, f-string holes as wildcards."""
    import rentaliq.ops.verify as verify

    found: dict[str, list[re.Pattern[str]]] = {}
    for path in Path(verify.__file__).parent.glob("*.py"):
        patterns = found.setdefault(path.stem, [])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                parts = [re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values]
                if any(isinstance(v, ast.Constant) and len(v.value.strip()) >= 3 for v in node.values):
                    patterns.append(re.compile("".join(parts)))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                patterns.append(re.compile(re.escape(node.value)))
    return found


VERIFY_MODULES = {
    "RDS": "rds",
    "S3": "s3",
    "Secrets": "secrets",
    "IAM": "iam",
    "EC2": "ec2",
    "Alerts": "alerts",
    "CloudWatch": "cloudwatch",
    "KMS": "keys",
    "Audit": "audit",
}


@pytest.mark.parametrize("env", ENVS)
def test_every_construct_it_names_exists_in_the_stack(stacks, env):
    report = compliance_report(load_spec(env))
    for framework in report.frameworks:
        for control in framework.in_place:
            for path in control.constructs:
                assert stacks[env].node.try_find_child(path.split("/")[0]) is not None, path
                node = stacks[env]
                for part in path.split("/"):
                    node = node.node.try_find_child(part)
                    assert node is not None, f"{control.key}: no construct {env}/{path}"


def test_every_nag_rule_it_names_is_a_cdk_nag_rule():
    named = {rule for c in CONTROLS for rule in c.nag_rules} | {rule.split("[", 1)[0] for g in GAPS for rule in g.acknowledged}
    assert named - nag_rules() == set()


@pytest.mark.parametrize("env", ENVS)
def test_every_acknowledgment_in_the_stacks_names_a_cdk_nag_rule(stacks, env):
    """An acknowledgment of a rule that does not exist hides nothing and says something false (this found two)."""
    assert {rule for rule, _ in _acknowledged(stacks[env])} - nag_rules() == set()


def test_every_verify_check_it_names_is_one_verify_records():
    names = _verify_names()
    for control in CONTROLS:
        for check in control.verify:
            module = VERIFY_MODULES[check.area]
            for env in ENVS:
                name = verify_check_name(check, env)
                assert any(p.fullmatch(name) for p in names[module]), f"{control.key}: rentaliq.ops.verify.{module} records no check {name!r}"


@pytest.mark.parametrize("env", ENVS)
def test_a_control_in_place_has_none_of_its_rules_acknowledged(stacks, env):
    """A control the report calls in place is one its nag rules pass on: no acknowledgment of them on its constructs."""
    acknowledged = _acknowledged(stacks[env])
    for framework in compliance_report(load_spec(env)).frameworks:
        for control in framework.in_place:
            hidden = {(rule, path) for rule, path in acknowledged for mine in control.constructs if rule in control.nag_rules and _related(path, mine)}
            assert hidden == set(), control.key


@pytest.mark.parametrize("env", ENVS)
def test_every_gap_and_every_control_off_is_what_the_stack_acknowledges(stacks, env):
    """The gaps are the stack's acknowledged findings: when a gap closes (a customer-managed key arrives), this fails
    until the report says so."""
    acknowledged = {rule for rule, _ in _acknowledged(stacks[env])}
    for gap in (g for g in GAPS if g.open(load_spec(env))):
        for rule in gap.acknowledged:
            assert set(acknowledged_ids(rule)) <= acknowledged, f"{gap.key}: {rule} is not acknowledged in {env}: is the gap closed?"
    report = compliance_report(load_spec(env))
    for control in {c for f in report.frameworks for c in f.off_by_spec}:
        assert acknowledged & set(control.nag_rules), f"{control.key} is off in {env} but none of its nag rules is acknowledged"


def test_the_report_reads_the_spec_access_logs_and_versioning_on_in_prod_off_in_lab():
    def keys(env: str, part: str) -> set[str]:
        report = compliance_report(load_spec(env)).to_dict()
        hipaa = next(f for f in report["frameworks"] if f["name"] == "HIPAA")
        return {item["key"] for item in hipaa[part]}

    for key in ("s3-access-logs", "versioning", "multi-az", "deletion-protection", "enhanced-monitoring", "database-logs"):
        assert key in keys("prod", "controls") and key not in keys("prod", "gaps")
        assert key in keys("lab", "gaps") and key not in keys("lab", "controls")
    assert "versioning" in keys("qa", "controls") and "s3-access-logs" in keys("qa", "gaps")
    for env in ENVS:  # open exactly where the spec keeps AWS-managed keys (issue 12 section 4 adds the switch)
        cmk = bool(getattr(getattr(load_spec(env), "encryption", None), "customer_managed_key", False))
        assert ("customer-managed-keys" in keys(env, "gaps")) is not cmk


def test_the_cli_prints_every_framework_and_its_gaps_with_the_configuration_that_closes_them(tmp_path):
    env = {**os.environ, "COLUMNS": "240", "RENTALIQ_CONFIG_DIR": str(tmp_path)}
    report = json.loads(ok(rentaliq(env, "compliance", "lab", "--json", cwd=tmp_path)).stdout)
    assert [f["name"] for f in report["frameworks"]] == ["SOC 2", "HIPAA", "PCI DSS", "GDPR"]
    hipaa = next(f for f in report["frameworks"] if f["name"] == "HIPAA")
    access_logs = next(g for g in hipaa["gaps"] if g["key"] == "s3-access-logs")
    assert access_logs["configuration"] == "storage.access_logs = true"
    assert "off in LAB" in access_logs["missing"]
    assert all(g["missing"] and g["configuration"] for f in report["frameworks"] for g in f["gaps"])
    text = ok(rentaliq(env, "compliance", "prod", cwd=tmp_path)).stdout
    for words in ("SOC 2", "PCI DSS", "GDPR", "rentaliq-prod-files access logging target", "needs:", "Business Associate Addendum"):
        assert words in text
    assert one_line_error(rentaliq(env, "compliance", "staging", cwd=tmp_path), alone=True) == "error: unknown environment 'staging'; allowed: lab, qa, prod"


def test_prod_lists_its_key_trail_and_rotation_as_controls_and_lab_as_gaps_once():
    def keys(env: str, part: str) -> list[str]:
        hipaa = next(f for f in compliance_report(load_spec(env)).to_dict()["frameworks"] if f["name"] == "HIPAA")
        return [item["key"] for item in hipaa[part]]

    for key, gap in (("customer-managed-key", "customer-managed-keys"), ("audit-trail", "audit-trail"), ("secret-rotation", "secret-rotation")):
        assert key in keys("prod", "controls") and gap not in keys("prod", "gaps")
        assert key not in keys("lab", "controls") and keys("lab", "gaps").count(gap) == 1  # the gap once, not also as "off"
