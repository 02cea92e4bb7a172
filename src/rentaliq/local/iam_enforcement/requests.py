"""What a request asks for, in IAM's terms: the signing key, the action (``service:Operation``), the resource ARN
and the request context (``aws:SecureTransport``, ``s3:x-amz-server-side-encryption``).

The body is read only for the JSON and query protocols (small documents) and put back for moto; S3 object bodies
are never read. Resources are resolved to full ARNs for the services whose policies name resources (Secrets
Manager, S3, KMS, STS's AssumeRole); every other action is evaluated against ``*``.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Request:
    service: str
    region: str
    access_key_id: str | None
    session_token: str | None
    operation: str = ""
    params: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold a SecretString: never shown
    bucket: str | None = None
    key: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    data = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(data)
    return data


def parse(environ: dict[str, Any], secure: bool) -> Request | None:
    """None for a request that carries no AWS signature (anonymous)."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL.search(auth) or _CREDENTIAL.search("Credential=" + unquote(query.get("X-Amz-Credential", [""])[0]))
    if match is None:
        return None
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN") or query.get("X-Amz-Security-Token", [None])[0]
    request = Request(service=match.group(3), region=match.group(2), access_key_id=match.group(1), session_token=token)
    request.context["aws:SecureTransport"] = "true" if secure else "false"
    if request.service == "s3":
        _s3(request, environ, query)
        return request
    target = environ.get("HTTP_X_AMZ_TARGET")
    body = request.body = _body(environ)
    if target:  # JSON protocol: the operation in the header, the parameters in the body
        request.operation = target.rsplit(".", 1)[-1]
        try:
            request.params = json.loads(body or b"{}")
        except ValueError:
            request.params = {}
    else:  # query protocol: Action=... in the form body or the query string
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()} if body else {}
        form.update({k: v[0] for k, v in query.items() if k not in form})
        request.operation = form.get("Action", "")
        request.params = form
    return request


# S3: a bucket sub-resource -> its IAM actions for GET, PUT and DELETE (IAM's names, which differ from the API's).
_BUCKET_SUB: dict[str, tuple[str, str, str]] = {
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", "PutBucketVersioning"),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "logging": ("GetBucketLogging", "PutBucketLogging", "PutBucketLogging"),
    "notification": ("GetBucketNotification", "PutBucketNotification", "PutBucketNotification"),
    "acl": ("GetBucketAcl", "PutBucketAcl", "PutBucketAcl"),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "intelligent-tiering": ("GetIntelligentTieringConfiguration", "PutIntelligentTieringConfiguration", "PutIntelligentTieringConfiguration"),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration"),
    "replication": ("GetReplicationConfiguration", "PutReplicationConfiguration", "PutReplicationConfiguration"),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "location": ("GetBucketLocation", "GetBucketLocation", "GetBucketLocation"),
    "versions": ("ListBucketVersions", "ListBucketVersions", "ListBucketVersions"),
    "uploads": ("ListBucketMultipartUploads", "ListBucketMultipartUploads", "ListBucketMultipartUploads"),
}


def _s3(request: Request, environ: dict[str, Any], query: dict[str, list[str]]) -> None:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/").lstrip("/")
    host = environ.get("HTTP_HOST", "").split(":")[0]
    bucket, _, key = path.partition("/")
    if ".s3." in host or host.endswith(".localhost"):  # virtual-hosted style
        bucket, key = host.split(".", 1)[0], path
    request.bucket, request.key = bucket or None, key or None
    sse = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION")
    if sse:
        request.context["s3:x-amz-server-side-encryption"] = sse
    sub = next((s for s in _BUCKET_SUB if s in query), None)
    if not bucket:
        request.operation = "ListAllMyBuckets"
    elif key:
        versioned = "versionId" in query
        if "tagging" in query:
            request.operation = {"GET": "GetObjectTagging", "PUT": "PutObjectTagging", "DELETE": "DeleteObjectTagging"}.get(method, "GetObjectTagging")
        elif method in ("GET", "HEAD"):
            request.operation = "ListMultipartUploadParts" if "uploadId" in query else "GetObjectVersion" if versioned else "GetObject"
        elif method == "DELETE":
            request.operation = "AbortMultipartUpload" if "uploadId" in query else "DeleteObjectVersion" if versioned else "DeleteObject"
        else:  # PUT object, copy, CreateMultipartUpload, UploadPart, CompleteMultipartUpload: all s3:PutObject
            request.operation = "PutObject"
            request.params["multipart_part"] = "uploadId" in query
    elif method == "POST" and "delete" in query:
        request.operation = "DeleteObject"
    elif sub is not None:
        get, put, delete = _BUCKET_SUB[sub]
        request.operation = {"PUT": put, "DELETE": delete}.get(method, get)
    elif method in ("GET", "HEAD"):
        request.operation = "ListBucket"
    elif method == "PUT":
        request.operation = "CreateBucket"
    elif method == "DELETE":
        request.operation = "DeleteBucket"
    else:
        request.operation = "ListBucket"
