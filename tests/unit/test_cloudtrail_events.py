"""The local CloudTrail event history's pure parts: which parameters may be kept, how errors are read, the store's
bounds and torn lines, and LookupEvents' filters, order and paging."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rentaliq.local.cloudtrail_events import describe
from rentaliq.local.cloudtrail_events.lookup import LookupError_, lookup
from rentaliq.local.cloudtrail_events.store import FILE_NAME, EventStore


def _event(n: int, when: datetime, name: str = "GetSecretValue", user: str = "root") -> dict:
    return {
        "eventID": f"id-{n}",
        "eventName": name,
        "eventSource": "secretsmanager.amazonaws.com",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "readOnly": name.startswith("Get"),
        "userIdentity": {"type": "Root", "accessKeyId": "test"},
        "resources": [{"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": f"s{n}"}],
        "_username": user,
    }


def test_only_identifying_parameters_are_kept():
    params = {
        "SecretId": "rentaliq/prod/db/credentials",
        "SecretString": "hunter2",
        "SecretBinary": "aHVudGVyMg==",
        "MasterUserPassword": "hunter2",
        "DBInstanceIdentifier": "rentaliq-prod-db",
        "TemplateBody": '{"Resources": {}}',
        "ClientRequestToken": "t",
        "Parameters.member.1.ParameterValue": "hunter2",
        "PolicyDocument": '{"Statement": []}',
        "RoleArn": "x" * 600,  # too long to be an identifier
    }
    assert describe.safe_parameters(params) == {"SecretId": "rentaliq/prod/db/credentials", "DBInstanceIdentifier": "rentaliq-prod-db"}
    assert describe.safe_parameters({"SecretString": "hunter2"}) is None


def test_resources_come_from_identifying_parameters():
    assert describe.resources({"Name": "rentaliq/lab/api/keys"}, "secretsmanager") == [
        {"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": "rentaliq/lab/api/keys"}
    ]
    assert describe.resources({"Name": "a-topic"}, "sns") == []


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ([], b'{"__type": "com.amazonaws#ResourceNotFoundException", "message": "not here"}', ("ResourceNotFoundException", "not here")),
        ([], b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>", ("AccessDenied", "no")),
        ([("x-amzn-ErrorType", "AccessDeniedException:http://internal")], b"{}", ("AccessDeniedException", None)),
        ([], b"", ("500", None)),
    ],
)
def test_error_code_and_message_are_read_as_the_sdks_read_them(headers, body, expected):
    status = 500 if not body else 400
    assert describe.error_of(status, headers, body) == expected
    assert describe.error_of(200, headers, body) == (None, None)


def test_s3_object_requests_are_told_apart_from_bucket_requests():
    assert describe.s3_target({"PATH_INFO": "/bucket", "HTTP_HOST": "localhost:4566"}) == ("bucket", False)
    assert describe.s3_target({"PATH_INFO": "/bucket/a/b.pdf", "HTTP_HOST": "localhost:4566"}) == ("bucket", True)
    assert describe.s3_target({"PATH_INFO": "/a.pdf", "HTTP_HOST": "bucket.s3.amazonaws.com"}) == ("bucket", True)


def test_the_store_survives_a_torn_line_and_drops_events_past_90_days(tmp_path):
    now = datetime.now(UTC)
    lines = [json.dumps(_event(1, now - timedelta(days=91))), json.dumps(_event(2, now - timedelta(days=1))), '{"eventID": "id-3", "eventTi']
    (tmp_path / FILE_NAME).write_text("\n".join(lines))
    store = EventStore(tmp_path)
    assert [e["eventID"] for e in store.snapshot()] == ["id-2"]
    store.append(_event(4, now))
    store.close()
    assert [e["eventID"] for e in EventStore(tmp_path).snapshot()] == ["id-2", "id-4"]  # the file was rewritten without the rest


def test_lookup_filters_orders_newest_first_and_pages():
    now = datetime.now(UTC)
    events = [_event(n, now - timedelta(minutes=10 - n), "GetSecretValue" if n % 2 else "ListSecrets", "web" if n < 5 else "root") for n in range(10)]
    first = lookup(events, {"MaxResults": 3})
    assert [e["EventId"] for e in first["Events"]] == ["id-9", "id-8", "id-7"]
    rest = lookup(events, {"MaxResults": 50, "NextToken": first["NextToken"]})
    assert [e["EventId"] for e in rest["Events"]] == [f"id-{n}" for n in range(6, -1, -1)] and "NextToken" not in rest
    by_name = lookup(events, {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"}]})
    assert [e["EventId"] for e in by_name["Events"]] == ["id-9", "id-7", "id-5", "id-3", "id-1"]
    assert {e["Username"] for e in lookup(events, {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "web"}]})["Events"]} == {"web"}
    read_only = lookup(events, {"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "false"}]})["Events"]
    assert {e["EventName"] for e in read_only} == {"ListSecrets"}  # readOnly as each event recorded it
    window = lookup(events, {"StartTime": (now - timedelta(minutes=3, seconds=30)).timestamp(), "EndTime": now.timestamp()})
    assert [e["EventId"] for e in window["Events"]] == ["id-9", "id-8", "id-7"]
    assert "_username" not in json.loads(first["Events"][0]["CloudTrailEvent"])


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (
            {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "a"}, {"AttributeKey": "Username", "AttributeValue": "b"}]},
            "InvalidLookupAttributesException",
        ),
        ({"LookupAttributes": [{"AttributeKey": "Colour", "AttributeValue": "a"}]}, "InvalidLookupAttributesException"),
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"MaxResults": 0}, "InvalidMaxResultsException"),
        ({"StartTime": 200.0, "EndTime": 100.0}, "InvalidTimeRangeException"),
        ({"NextToken": "garbage"}, "InvalidNextTokenException"),
    ],
)
def test_lookup_refuses_bad_input_with_cloudtrails_codes(request_, code):
    with pytest.raises(LookupError_) as raised:
        lookup([], request_)
    assert raised.value.code == code


def test_the_store_keeps_the_newest_events_within_its_count_bound(tmp_path, monkeypatch):
    from rentaliq.local.cloudtrail_events import store as store_module

    monkeypatch.setattr(store_module, "MAX_EVENTS", 10)
    store = EventStore(tmp_path)
    now = datetime.now(UTC)
    for n in range(12):
        store.append(_event(n, now))
    assert [e["eventID"] for e in store.snapshot()] == [f"id-{n}" for n in range(2, 12)]
    store.close()
    assert [e["eventID"] for e in EventStore(tmp_path).snapshot()] == [f"id-{n}" for n in range(2, 12)]  # and on disk
