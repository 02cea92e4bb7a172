"""SNS delivery on the local cloud as AWS does it: a real HTTP subscriber on loopback gets the confirmation
handshake and signed notifications (verified against the certificate at SigningCertURL), failed POSTs are retried
by the delivery policy, and email deliveries are captured where `rentaliq alerts ENV` lists them."""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.clouds import private_cloud


class Subscriber:
    """A real HTTP endpoint: records every POST; answers 500 to the first ``fail`` notifications (or all: -1)."""

    def __init__(self, fail: int = 0) -> None:
        self.posts: list[tuple[dict[str, str], dict | str]] = []
        self.fail = fail
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                try:
                    body: dict | str = json.loads(raw)
                except ValueError:
                    body = raw
                owner.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failing = self.headers.get("x-amz-sns-message-type") == "Notification" and (
                    owner.fail < 0 or sum(1 for h, _ in owner.posts if h["x-amz-sns-message-type"] == "Notification") <= owner.fail
                )
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sns"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, kind: str) -> list[tuple[dict[str, str], dict]]:
        return [(h, b) for h, b in self.posts if h.get("x-amz-sns-message-type") == kind]

    def wait(self, kind: str, count: int = 1, timeout: float = 20.0) -> list[tuple[dict[str, str], dict]]:
        deadline = time.monotonic() + timeout
        while len(found := self.of_type(kind)) < count:
            assert time.monotonic() < deadline, f"{count} {kind} expected, got {len(found)}: {self.posts}"
            time.sleep(0.1)
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber()
    yield sub
    sub.close()


def _canonical(message: dict) -> bytes:
    """AWS's documented string to sign, written here independently of the implementation."""
    if message["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()


def _verify(message: dict) -> None:
    """Verify the signature as a subscriber does: fetch the certificate from SigningCertURL."""
    assert message["SignatureVersion"] == "1"
    with urllib.request.urlopen(message["SigningCertURL"], timeout=10) as answer:
        certificate = x509.load_pem_x509_certificate(answer.read())
    signature = base64.b64decode(message["Signature"])
    certificate.public_key().verify(signature, _canonical(message), padding.PKCS1v15(), hashes.SHA1())  # raises if forged
    forged = {**message, "Message": message["Message"] + " "}
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidSignature
        certificate.public_key().verify(signature, _canonical(forged), padding.PKCS1v15(), hashes.SHA1())


def _topic(sns, prefix: str = "alerts") -> str:
    return sns.create_topic(Name=f"{prefix}-{uuid.uuid4().hex[:8]}")["TopicArn"]


def _subscription(sns, topic: str, endpoint: str) -> dict:
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    [sub] = [s for s in subs if s["Endpoint"] == endpoint]
    return sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]


def _fire(cw, topic: str) -> str:
    """An alarm with ALARM and OK actions on ``topic``, driven to ALARM by a datapoint; its name."""
    name, metric = f"sns-{uuid.uuid4().hex[:8]}", f"m-{uuid.uuid4().hex[:8]}"
    cw.put_metric_alarm(
        AlarmName=name,
        AlarmDescription="connections above the test threshold",
        Namespace="RentalIQ/Test",
        MetricName=metric,
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "rentaliq-lab-db"}],
        Statistic="Maximum",
        Period=10,
        EvaluationPeriods=1,
        Threshold=60.0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[topic],
        OKActions=[topic],
    )
    at = datetime.fromtimestamp(math.floor(time.time() / 10) * 10 - 9, UTC)
    cw.put_metric_data(
        Namespace="RentalIQ/Test",
        MetricData=[{"MetricName": metric, "Value": 80.0, "Timestamp": at, "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "rentaliq-lab-db"}]}],
    )
    return name


def test_http_subscriber_confirms_and_receives_a_signed_alarm_notification(cloud, subscriber):
    sns, cw = cloud.client("sns"), cloud.client("cloudwatch")
    topic = _topic(sns)
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url)["SubscriptionArn"] == "pending confirmation"
    [listed] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (listed["SubscriptionArn"], listed["Endpoint"], listed["Protocol"]) == ("PendingConfirmation", subscriber.url, "http")
    arn = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url, ReturnSubscriptionArn=True)["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert (attributes["PendingConfirmation"], attributes["ConfirmationWasAuthenticated"]) == ("true", "false")
    subscriber.wait("SubscriptionConfirmation", 2)  # subscribing again while pending sends the confirmation again

    headers, confirmation = subscriber.of_type("SubscriptionConfirmation")[-1]
    assert headers["x-amz-sns-topic-arn"] == topic and headers["x-amz-sns-message-id"] == confirmation["MessageId"]
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert set(confirmation) == {
        "Type", "MessageId", "Token", "TopicArn", "Message", "SubscribeURL", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"
    }  # fmt: skip
    assert confirmation["SigningCertURL"].startswith(cloud.endpoint_url)
    _verify(confirmation)

    with urllib.request.urlopen(confirmation["SubscribeURL"], timeout=10) as answer:
        assert answer.status == 200 and b"<ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:" in answer.read()
    attributes = _subscription(sns, topic, subscriber.url)
    assert (attributes["PendingConfirmation"], attributes["ConfirmationWasAuthenticated"]) == ("false", "false")  # an unsigned GET
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "1"

    name = _fire(cw, topic)
    [(headers, notification)] = subscriber.wait("Notification")
    assert headers["x-amz-sns-subscription-arn"] == attributes["SubscriptionArn"]
    assert notification["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
    assert notification["UnsubscribeURL"].startswith(cloud.endpoint_url)
    _verify(notification)
    message = json.loads(notification["Message"])
    assert (message["AlarmName"], message["NewStateValue"], message["OldStateValue"]) == (name, "ALARM", "INSUFFICIENT_DATA")
    assert message["Region"] == "US East (N. Virginia)" and message["AlarmActions"] == [topic] and message["OKActions"] == [topic]
    assert message["NewStateReason"].startswith("Threshold Crossed: 1 datapoint [80.0 (")
    assert message["Trigger"] == {
        "MetricName": message["Trigger"]["MetricName"],
        "Namespace": "RentalIQ/Test",
        "StatisticType": "Statistic",
        "Statistic": "MAXIMUM",
        "Unit": None,
        "Dimensions": [{"value": "rentaliq-lab-db", "name": "DBInstanceIdentifier"}],
        "Period": 10,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 60.0,
        "TreatMissingData": "missing",
        "EvaluateLowSampleCountPercentile": "",
    }
    [action] = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
    assert action["HistorySummary"] == f"Successfully executed action {topic}"

    with urllib.request.urlopen(notification["UnsubscribeURL"], timeout=10) as answer:
        assert answer.status == 200
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    [(_, goodbye)] = subscriber.wait("UnsubscribeConfirmation")
    _verify(goodbye)
    with urllib.request.urlopen(goodbye["SubscribeURL"], timeout=10) as answer:  # "cancel this operation"
        assert answer.status == 200
    [restored] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert restored["SubscriptionArn"] == attributes["SubscriptionArn"]
    sns.publish(TopicArn=topic, Message="still here")
    assert subscriber.wait("Notification", 2)[-1][1]["Message"] == "still here"


def test_unconfirmed_subscriptions_get_nothing_and_api_confirmation_is_authenticated(cloud, subscriber):
    sns = cloud.client("sns")
    topic = _topic(sns)
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url)
    [(_, confirmation)] = subscriber.wait("SubscriptionConfirmation")
    sns.publish(TopicArn=topic, Message="before confirmation")
    time.sleep(1.0)
    assert subscriber.of_type("Notification") == []

    with pytest.raises(ClientError) as bad:
        sns.confirm_subscription(TopicArn=topic, Token="0" * 128)
    assert bad.value.response["Error"]["Code"] == "InvalidParameter"
    arn = sns.confirm_subscription(TopicArn=topic, Token=confirmation["Token"])["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert (attributes["PendingConfirmation"], attributes["ConfirmationWasAuthenticated"]) == ("false", "true")

    sns.publish(TopicArn=topic, Message="after confirmation", Subject="hello")
    [(_, note)] = subscriber.wait("Notification")
    assert (note["Message"], note["Subject"]) == ("after confirmation", "hello")
    _verify(note)


def test_failed_posts_are_retried_by_the_delivery_policy_and_then_given_up(cloud):
    sns = cloud.client("sns")
    flaky, dead = Subscriber(fail=2), Subscriber(fail=-1)
    try:
        topic = _topic(sns)
        for sub in (flaky, dead):
            sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=sub.url)
            [(_, confirmation)] = sub.wait("SubscriptionConfirmation")
            arn = sns.confirm_subscription(TopicArn=topic, Token=confirmation["Token"])["SubscriptionArn"]
            policy = {"healthyRetryPolicy": {"numRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 1, "numNoDelayRetries": 0}}
            sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(policy))
        sns.publish(TopicArn=topic, Message="retry me")
        attempts = flaky.wait("Notification", 3)
        assert {b["MessageId"] for _, b in attempts} == {attempts[0][1]["MessageId"]}  # the same message, retried
        dead.wait("Notification", 3)
        time.sleep(2.5)
        assert len(dead.of_type("Notification")) == 3  # 1 + numRetries attempts, then given up
        assert len(flaky.of_type("Notification")) == 3  # the third attempt succeeded: no more
    finally:
        flaky.close()
        dead.close()


def test_bad_subscription_endpoints_are_refused(cloud):
    sns = cloud.client("sns")
    topic = _topic(sns)
    for protocol, endpoint in (("email", "not-an-address"), ("https", "http://127.0.0.1:1/x")):
        with pytest.raises(ClientError) as bad:
            sns.subscribe(TopicArn=topic, Protocol=protocol, Endpoint=endpoint)
        assert bad.value.response["Error"]["Code"] == "InvalidParameter"
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


@pytest.mark.slow  # a private cloud, started twice
def test_email_deliveries_are_captured_and_listed_by_rentaliq_alerts():
    """On a private cloud (it owns rentaliq-lab-alerts): confirmation mail, confirmation through its link, the
    alarm's mail, `rentaliq alerts lab` newest first, and all of it still there after a restart."""
    from typer.testing import CliRunner

    from rentaliq.cli.main import app
    from rentaliq.local.sns_delivery import read_mailbox

    os.environ.setdefault("RENTALIQ_LOCAL_ALARM_SECONDS", "1")
    with private_cloud("alerts") as cloud:
        sns, cw = cloud.client("sns"), cloud.client("cloudwatch")
        topic = sns.create_topic(Name="rentaliq-lab-alerts")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
        sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint="robot@example.com")
        mails = read_mailbox(cloud.state_dir, topic_arn=topic)
        assert {(m["Endpoint"], m["Type"], m["Subject"]) for m in mails} == {
            ("oncall@example.com", "SubscriptionConfirmation", "AWS Notification - Subscription Confirmation"),
            ("robot@example.com", "SubscriptionConfirmation", "AWS Notification - Subscription Confirmation"),
        }
        for mail in mails:
            if mail["Protocol"] == "email-json":
                url = json.loads(mail["Body"])["SubscribeURL"]
            else:
                url = next(line for line in mail["Body"].splitlines() if "Action=ConfirmSubscription" in line)
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert answer.status == 200

        name = _fire(cw, topic)
        deadline = time.monotonic() + 20
        while len(notes := read_mailbox(cloud.state_dir, topic_arn=topic)) < 4:
            assert time.monotonic() < deadline, notes
            time.sleep(0.2)
        by_address = {m["Endpoint"]: m for m in notes if m["Type"] == "Notification"}
        text = by_address["oncall@example.com"]
        assert text["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
        assert text["Body"].startswith(
            f'You are receiving this email because your Amazon CloudWatch Alarm "{name}" in the US East (N. Virginia) region has entered the ALARM state'
        )
        assert "If you wish to stop receiving notifications from this topic" in text["Body"]
        signed = json.loads(by_address["robot@example.com"]["Body"])
        assert json.loads(signed["Message"])["AlarmName"] == name
        _verify(signed)

        def run(*args: str):
            env = {"RENTALIQ_HOME": str(cloud.state_dir), "RENTALIQ_LOCAL_PORT": str(cloud.port), "COLUMNS": "250"}
            return CliRunner().invoke(app, list(args), env=env)

        result = run("alerts", "lab", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["topic_arn"] == topic
        assert [d["type"] for d in report["deliveries"]][:2] == ["Notification", "Notification"]  # newest first
        assert [(a["name"], a["state"]) for a in report["alarms"]] == [(name, "ALARM")]
        human = run("alerts", "lab")
        assert human.exit_code == 0 and f'ALARM: "{name}" in US East (N. Virginia)' in human.output and "oncall@example.com" in human.output
        later = run("alerts", "lab", "--json", "--since", "2100-01-01T00:00:00Z")
        assert json.loads(later.output)["deliveries"] == []
        bad = run("alerts", "lab", "--since", "soon")
        assert bad.exit_code == 1 and "--since 'soon' is not a time" in bad.output and "Traceback" not in bad.output

        cloud.stop()
        cloud.start(timeout=60)
        again = json.loads(run("alerts", "lab", "--json").output)
        assert again["deliveries"] == report["deliveries"]
        oncall = _subscription(cloud.client("sns"), topic, "oncall@example.com")
        assert oncall["PendingConfirmation"] == "false"  # the confirmation survived the restart too


@pytest.mark.slow
def test_a_crash_between_an_alarm_change_and_its_actions_notifies_once_after_the_restart(monkeypatch):
    """kill -9 after the evaluator committed ALARM and before it published: the restart publishes it, once, and the
    history holds the change the mail tells of (before the outbox, the mail went first and a restart sent it again)."""
    from rentaliq.local.sns_delivery import read_mailbox
    from tests.functional.test_local_cloud import _wait_dead

    os.environ.setdefault("RENTALIQ_LOCAL_ALARM_SECONDS", "1")
    with private_cloud("outbox") as cloud:
        sns = cloud.client("sns")
        topic = sns.create_topic(Name="rentaliq-lab-alerts")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint="robot@example.com")
        [confirmation] = read_mailbox(cloud.state_dir, topic_arn=topic)
        with urllib.request.urlopen(json.loads(confirmation["Body"])["SubscribeURL"], timeout=10) as answer:
            assert answer.status == 200
        cloud.stop()
        monkeypatch.setenv("RENTALIQ_LOCAL_CRASH_AT", "alarm-actions")
        cloud.start(timeout=60)
        pid = cloud.status().pid
        name = _fire(cloud.client("cloudwatch"), topic)
        _wait_dead(pid)  # it committed the change, then died before the action

        def notifications() -> list[dict]:
            return [m for m in read_mailbox(cloud.state_dir, topic_arn=topic) if m["Type"] == "Notification"]

        assert notifications() == []
        monkeypatch.delenv("RENTALIQ_LOCAL_CRASH_AT")
        cloud.start(timeout=60)
        deadline = time.monotonic() + 20
        while not notifications():
            assert time.monotonic() < deadline, "the owed ALARM notification was never sent after the restart"
            time.sleep(0.2)
        time.sleep(3)  # a few more evaluator passes: still one
        [mail] = notifications()
        assert json.loads(json.loads(mail["Body"])["Message"])["NewStateValue"] == "ALARM"
        history = cloud.client("cloudwatch").describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")["AlarmHistoryItems"]
        kinds = [(h["HistoryItemType"], h["HistorySummary"]) for h in history]
        assert kinds.count(("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM")) == 1
        assert kinds.count(("Action", f"Successfully executed action {topic}")) == 1


def test_a_slow_endpoint_never_delays_another_and_basic_auth_urls_are_honoured(cloud):
    """One subscriber taking 5 s per POST; the other still gets every message at once. A URL with user:password@
    (SNS's documented basic authentication) is called with its Authorization header, and never shown."""
    from tests.functional.sns_subscriber import subscriber as endpoint

    sns = cloud.client("sns")
    topic = sns.create_topic(Name=f"lanes-{uuid.uuid4().hex[:8]}")["TopicArn"]
    with endpoint(delay=5.0) as slow, endpoint() as fast:
        authenticated = fast.url.replace("http://", "http://hook:s3cr3t@").replace("/sns", "/auth")
        for url in (slow.url, fast.url, authenticated):
            sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)
        deadline = time.monotonic() + 20
        while len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) != 3 or any(
            s["SubscriptionArn"] == "PendingConfirmation" for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        ):
            assert time.monotonic() < deadline, "not every endpoint confirmed"
            time.sleep(0.2)
        basic = [h.get("Authorization") for h, b in fast.received if b.get("Type") == "SubscriptionConfirmation"]
        assert sorted(map(str, basic)) == ["Basic aG9vazpzM2NyM3Q=", "None"]  # base64 of hook:s3cr3t, on /auth only
        sent = time.monotonic()
        for n in range(4):
            sns.publish(TopicArn=topic, Message=f"message {n}")
        while len(fast.messages("Notification")) < 8:  # 4 to /sns, 4 to /auth
            assert time.monotonic() - sent < 4, f"the fast endpoint waited behind the slow one: {len(fast.messages('Notification'))} of 8"
            time.sleep(0.1)
        assert len(slow.messages("Notification")) < 4  # still working through them, 5 s each


def test_a_topic_remembers_a_bounded_number_of_published_messages(tmp_path):
    """moto kept every message on its topic, pickled with every SNS commit: the SNS state grew without end."""
    from moto.sns.models import sns_backends

    from rentaliq.local import sns_delivery
    from rentaliq.local.sns_delivery.subscriptions import SENT_KEPT

    sns_delivery.install(tmp_path)  # the server's patches, in this process
    try:
        backend = sns_backends["123456789012"]["us-east-1"]
        topic = backend.create_topic(f"bounded-{uuid.uuid4().hex[:8]}")
        for n in range(SENT_KEPT + 50):
            backend.publish(f"message {n}", arn=topic.arn)
        assert [m[1] for m in topic.sent_notifications] == [f"message {n}" for n in range(50, SENT_KEPT + 50)]
    finally:
        sns_delivery.stop()
