"""The alerts topic, the alarms' actions and thresholds, and the dashboard, asserted on the synthesized templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rentaliq.contract import RDS_METRICS
from rentaliq.infra.app import synthesize
from rentaliq.spec.loader import build_spec
from tests.unit.templates import of_type, one, ref

ENVS = ("lab", "qa", "prod")
GIB = 1024**3


def _resolved_body(body: object) -> dict:
    """A DashboardBody ``Fn::Join`` with each ``Fn::GetAtt [Alarm, Arn]`` written as ``arn:<logical id>`` and each
    ``Ref`` (the region) as the name it refers to."""
    if isinstance(body, str):
        return json.loads(body)

    def text(part: object) -> str:
        if isinstance(part, str):
            return part
        assert isinstance(part, dict)
        return f"arn:{part['Fn::GetAtt'][0]}" if "Fn::GetAtt" in part else str(part["Ref"])

    return json.loads("".join(text(p) for p in body["Fn::Join"][1]))  # type: ignore[index]


def _metrics(body: dict) -> set[tuple[str, ...]]:
    return {tuple(str(x) for x in m if not isinstance(x, dict)) for w in body["widgets"] for m in w.get("properties", {}).get("metrics", [])}


@pytest.mark.parametrize("env", ENVS)
def test_the_alerts_topic_is_encrypted_with_a_rotating_key_and_refuses_plain_http(synthesized, env):
    template = synthesized[env]
    topic_id, topic = one(template, "AWS::SNS::Topic", TopicName=f"rentaliq-{env}-alerts")
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]  # the alerts key, or PROD's environment key
    key = of_type(template, "AWS::KMS::Key")[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch_grant = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    # Decrypt and GenerateDataKey (SNS asks for a data key per message); the alerts key grants GenerateDataKey*.
    assert [sorted(s["Action"])[0] for s in cloudwatch_grant] == ["kms:Decrypt"]
    assert [sorted(s["Action"])[1] for s in cloudwatch_grant][0] in ("kms:GenerateDataKey", "kms:GenerateDataKey*")
    [policy] = of_type(template, "AWS::SNS::TopicPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    deny = statements["AllowPublishThroughSSLOnly"]
    assert (deny["Effect"], deny["Principal"], deny["Condition"]) == ("Deny", "*", {"Bool": {"aws:SecureTransport": "false"}})
    publish = statements["CloudWatchAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and publish["Resource"] == ref(topic_id)
    assert f":alarm:rentaliq-{env}-*" in json.dumps(publish["Condition"]["ArnLike"])
    assert not of_type(template, "AWS::SNS::Subscription")  # none by default


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok(synthesized, env):
    template = synthesized[env]
    topic_id, _ = one(template, "AWS::SNS::Topic", TopicName=f"rentaliq-{env}-alerts")
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    expected = {"high-cpu", "low-free-storage", "high-connections", "high-read-latency", "high-write-latency"}
    names = {a["Properties"]["AlarmName"] for a in alarms.values()}
    nat_health = {"lab": set(), "qa": {"rentaliq-qa-nat-1-health"}, "prod": {"rentaliq-prod-nat-1-health", "rentaliq-prod-nat-2-health"}}[env]
    assert names == {f"rentaliq-{env}-db-{what}" for what in expected} | ({"rentaliq-prod-files-5xx-errors"} if env == "prod" else set()) | nat_health
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == alarm["Properties"]["OKActions"] == [ref(topic_id)]


def test_thresholds_and_periods_come_from_the_spec(synthesized):
    prod = synthesized["prod"]
    cpu = one(prod, "AWS::CloudWatch::Alarm", AlarmName="rentaliq-prod-db-high-cpu")[1]["Properties"]
    assert (cpu["Threshold"], cpu["Period"], cpu["Statistic"], cpu["TreatMissingData"]) == (80, 300, "Average", "missing")  # the spec's alarm
    storage = one(prod, "AWS::CloudWatch::Alarm", AlarmName="rentaliq-prod-db-low-free-storage")[1]["Properties"]
    assert (storage["Threshold"], storage["ComparisonOperator"]) == (10 * GIB, "LessThanThreshold")
    read = one(prod, "AWS::CloudWatch::Alarm", AlarmName="rentaliq-prod-db-high-read-latency")[1]["Properties"]
    assert (read["MetricName"], read["Threshold"]) == ("ReadLatency", 0.02)  # 20 ms, in CloudWatch's seconds
    errors = one(prod, "AWS::CloudWatch::Alarm", AlarmName="rentaliq-prod-files-5xx-errors")[1]["Properties"]
    assert (errors["Namespace"], errors["Statistic"], errors["Threshold"], errors["TreatMissingData"]) == ("AWS/S3", "Sum", 5, "notBreaching")
    assert errors["Dimensions"] == [{"Name": "BucketName", "Value": ref("StorageFilesBucket28699C44")}, {"Name": "FilterId", "Value": "EntireBucket"}]
    bucket = prod["Resources"]["StorageFilesBucket28699C44"]["Properties"]
    assert bucket["MetricsConfigurations"] == [{"Id": "EntireBucket"}]
    assert "MetricsConfigurations" not in synthesized["lab"]["Resources"]["StorageFilesBucket28699C44"]["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_the_dashboard_graphs_every_spec_metric_and_shows_every_alarm(synthesized, env):
    template = synthesized[env]
    [dashboard] = of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"rentaliq-{env}"
    body = _resolved_body(dashboard["Properties"]["DashboardBody"])
    db, bucket = f"rentaliq-{env}-db", f"rentaliq-{env}-files"
    expected = {("AWS/RDS", m, "DBInstanceIdentifier", db) for m in RDS_METRICS}
    expected |= {("AWS/S3", "BucketSizeBytes", "BucketName", bucket, "StorageType", "StandardStorage")}
    expected |= {("AWS/S3", "NumberOfObjects", "BucketName", bucket, "StorageType", "AllStorageTypes")}
    if env == "prod":
        expected |= {("AWS/S3", m, "BucketName", bucket, "FilterId", "EntireBucket") for m in ("AllRequests", "4xxErrors", "5xxErrors")}
    assert _metrics(body) == expected
    assert {"CPUUtilization", "DatabaseConnections", "FreeStorageSpace", "ReadLatency", "WriteLatency", "ReadIOPS", "WriteIOPS"} <= set(RDS_METRICS)
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"arn:{lid}" for lid in of_type(template, "AWS::CloudWatch::Alarm"))


def test_subscriptions_follow_the_spec_and_keep_their_ids_when_one_is_removed(tmp_path: Path):
    alerts = {"emails": ["oncall@example.com"], "https_endpoints": ["https://hooks.example.com/a"], "chat_webhook_url": "https://chat.example.com/x"}
    [full] = synthesize([build_spec("lab", {"alerts": alerts})], tmp_path / "full", nag=False)
    [fewer] = synthesize([build_spec("lab", {"alerts": {**alerts, "https_endpoints": []}})], tmp_path / "fewer", nag=False)
    subs = of_type(json.loads(full.template_path.read_text()), "AWS::SNS::Subscription")
    assert sorted((s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subs.values()) == [
        ("email", "oncall@example.com"),
        ("https", "https://chat.example.com/x"),
        ("https", "https://hooks.example.com/a"),
    ]
    kept = of_type(json.loads(fewer.template_path.read_text()), "AWS::SNS::Subscription")
    assert set(kept) < set(subs) and len(kept) == 2  # the others are untouched, not replaced


def test_alarms_off_leaves_the_topic_and_an_alarm_free_dashboard(tmp_path: Path):
    [result] = synthesize([build_spec("lab", {"monitoring": {"alarms": False}})], tmp_path, nag=False)
    template = json.loads(result.template_path.read_text())
    assert not of_type(template, "AWS::CloudWatch::Alarm")
    [dashboard] = of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert not [w for w in _resolved_body(dashboard["Properties"]["DashboardBody"])["widgets"] if w["type"] == "alarm"]
