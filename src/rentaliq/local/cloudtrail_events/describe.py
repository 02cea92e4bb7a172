"""What an API call was, in CloudTrail's terms: event source and name, read-only or not, the resources it
named, and the request parameters that are safe to keep.

Request parameters are kept by an allowlist, never a denylist: only top-level parameters whose names say they
identify something (``...Name``, ``...Id``, ``...Identifier``, ``...Arn``) and whose values are short strings.
A secret value (``SecretString``), a password (``MasterUserPassword``), a policy or a template body can therefore
never be recorded, whatever a future API calls them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, unquote

from rentaliq.local.state.middleware import READ_ACTION_PREFIXES

_IDENTIFYING_SUFFIXES = ("Name", "Id", "Identifier", "Arn", "ARN")
_MAX_VALUE = 512
# (parameter, resource type) pairs CloudTrail lists in an event's resources.
RESOURCE_PARAMETERS: dict[str, str] = {
    "SecretId": "AWS::SecretsManager::Secret",
    "StackName": "AWS::CloudFormation::Stack",
    "ChangeSetName": "AWS::CloudFormation::ChangeSet",
    "DBInstanceIdentifier": "AWS::RDS::DBInstance",
    "DBSnapshotIdentifier": "AWS::RDS::DBSnapshot",
    "RoleName": "AWS::IAM::Role",
    "UserName": "AWS::IAM::User",
    "PolicyArn": "AWS::IAM::ManagedPolicy",
    "KeyId": "AWS::KMS::Key",
    "TopicArn": "AWS::SNS::Topic",
    "AlarmName": "AWS::CloudWatch::Alarm",
    "TrailName": "AWS::CloudTrail::Trail",
    "ConfigRuleName": "AWS::Config::ConfigRule",
    "Bucket": "AWS::S3::Bucket",
}
# A plain ``Name`` names a resource of the service's own kind.
NAME_PARAMETER_TYPES: dict[str, str] = {
    "secretsmanager": "AWS::SecretsManager::Secret",
    "cloudtrail": "AWS::CloudTrail::Trail",
}
# The signing name is the service's endpoint prefix; CloudTrail's event source is <prefix>.amazonaws.com.
_SOURCE_OVERRIDES = {"email": "ses.amazonaws.com"}


def event_source(signing_service: str) -> str:
    return _SOURCE_OVERRIDES.get(signing_service, f"{signing_service}.amazonaws.com")


def is_read_only(event_name: str) -> bool:
    return event_name.startswith(READ_ACTION_PREFIXES)


def _flat(values: dict[str, list[str]]) -> dict[str, Any]:
    return {key: items[0] for key, items in values.items() if items}


def raw_parameters(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The request's top-level parameters (JSON body, form body or query string), before any filtering."""
    params: dict[str, Any] = _flat(parse_qs(environ.get("QUERY_STRING", "")))
    content_type = environ.get("CONTENT_TYPE", "")
    if body and "json" in content_type:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            params.update(parsed)
    elif body and content_type.startswith("application/x-www-form-urlencoded"):
        params.update(_flat(parse_qs(body.decode("utf-8", "replace"))))
    return params


def safe_parameters(params: dict[str, Any]) -> dict[str, str] | None:
    kept = {
        key: value
        for key, value in params.items()
        if isinstance(value, str) and len(value) <= _MAX_VALUE and (key in RESOURCE_PARAMETERS or key.endswith(_IDENTIFYING_SUFFIXES))
    }
    return kept or None


def resources(params: dict[str, Any], signing_service: str = "") -> list[dict[str, str]]:
    found = [
        {"ResourceType": kind, "ResourceName": params[key]} for key, kind in RESOURCE_PARAMETERS.items() if isinstance(params.get(key), str) and params[key]
    ]
    kind = NAME_PARAMETER_TYPES.get(signing_service)
    if kind and isinstance(params.get("Name"), str) and params["Name"]:
        found.append({"ResourceType": kind, "ResourceName": params["Name"]})
    return found


def s3_target(environ: dict[str, Any]) -> tuple[str | None, bool]:
    """(bucket, object-level) of an S3 request, path-style or virtual-hosted."""
    path = unquote(environ.get("PATH_INFO", "")).lstrip("/")
    host = environ.get("HTTP_HOST", "").split(":")[0]
    if ".s3." in host or host.endswith(".s3.amazonaws.com") or (host.count(".") and host.split(".", 1)[1].startswith("s3")):
        return host.split(".", 1)[0], bool(path)
    bucket, _, key = path.partition("/")
    return (bucket or None), bool(key)


def error_of(status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[str | None, str | None]:
    """(errorCode, errorMessage) of a failed response, as the SDKs would read them."""
    if status < 400:
        return None, None
    code = next((v.split(":")[0] for k, v in headers if k.lower() == "x-amzn-errortype"), None)
    message = None
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code = code or str(parsed.get("__type") or parsed.get("code") or parsed.get("Code") or "").rsplit("#", 1)[-1] or None
        message = parsed.get("message") or parsed.get("Message")
    else:
        import re

        found = re.search(r"<Code>([^<]+)</Code>", text)
        code = code or (found.group(1) if found else None)
        found = re.search(r"<Message>([^<]*)</Message>", text)
        message = found.group(1) if found else None
    return code or str(status), (message[:1000] if isinstance(message, str) else None)
