"""SigV4 signature check for the identities the enforcing cloud knows the secret of (IAM users' access keys and
STS sessions): a request signed with the wrong secret is refused as AWS refuses it, so holding an access key id
alone grants nothing. The root ``test`` keys are not checked (the local cloud accepts any secret for them).

The canonical request is rebuilt by botocore from the request as sent: the raw URI (werkzeug's ``RAW_URI``), the
signed headers, the body (JSON and query protocols; S3 signs ``X-Amz-Content-SHA256`` instead).
"""

from __future__ import annotations

from typing import Any

_SPECIAL_HEADERS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def _between(text: str, start: str, end: str) -> str:
    return text.partition(start)[2].partition(end)[0].strip()


def valid(environ: dict[str, Any], body: bytes, service: str, region: str, access_key_id: str, secret_key: str, token: str | None) -> bool:
    """Whether the request's Authorization header was made with ``secret_key``; presigned URLs are not checked."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = environ.get("HTTP_AUTHORIZATION", "")
    if not auth.startswith("AWS4-HMAC-SHA256"):
        return True
    signed = _between(auth, "SignedHeaders=", ",").split(";")
    headers = {}
    for name in signed:
        key = _SPECIAL_HEADERS.get(name, "HTTP_" + name.upper().replace("-", "_"))
        if key in environ:
            headers[name] = environ[key]
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=environ.get("RAW_URI") or environ.get("PATH_INFO", "/"), data=body, headers=headers)
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer_cls = S3SigV4Auth if service == "s3" else SigV4Auth
    signer = signer_cls(Credentials(access_key_id, secret_key, token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return expected == auth.rpartition("Signature=")[2].strip()
