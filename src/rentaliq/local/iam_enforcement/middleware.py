"""The WSGI layer that enforces IAM in front of moto: a denied request never reaches moto or the state store.

Resources our policies name are resolved here from moto's backends (secret ARNs with their random suffix, bucket
policies, object and secret KMS keys, key policies); the answer to a denial is the error each service's protocol
returns on AWS (S3: 403 XML ``AccessDenied``; JSON services: ``AccessDeniedException``; query services:
``AccessDenied``, EC2 ``UnauthorizedOperation``).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from moto.core import DEFAULT_ACCOUNT_ID

from rentaliq.local.iam_enforcement import decisions, principals, requests, signatures
from rentaliq.local.iam_enforcement.policy import document, effects

log = logging.getLogger("rentaliq.local.iam")
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
App = Callable[[dict[str, Any], Callable[..., Any]], Any]


class Denied(Exception):
    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _kms_key(region: str, key_id: str) -> tuple[str, dict[str, Any]] | None:
    from moto.kms.models import kms_backends

    backend = kms_backends[DEFAULT_ACCOUNT_ID][region]
    try:
        key = backend.keys[backend.any_id_to_key_id(key_id)]
    except (KeyError, TypeError, AttributeError):  # no such key or alias: KMS itself answers NotFound
        return None
    return key.arn, document(key.policy)


def _require_decrypt(identity: principals.Identity, region: str, key_id: str | None, context: dict[str, str], via: str) -> None:
    """Reading data encrypted under a customer-managed key needs kms:Decrypt on that key (AWS-managed keys: no)."""
    if not key_id or key_id.startswith("alias/aws/"):
        return
    found = _kms_key(region, key_id)
    if found is None:
        return
    arn, key_policy = found
    why = decisions.decide_kms(identity, "kms:Decrypt", arn, key_policy, {**context, "kms:ViaService": f"{via}.{region}.amazonaws.com"})
    if why:
        raise Denied("AccessDenied", decisions.denial(identity.caller, "kms:Decrypt", arn, why))


def _secret(request: requests.Request) -> tuple[str, str | None]:
    from moto.secretsmanager.models import secretsmanager_backends

    secret_id = str(request.params.get("SecretId") or request.params.get("Name") or "")
    store = secretsmanager_backends[DEFAULT_ACCOUNT_ID][request.region].secrets
    secret = store.get(secret_id) if secret_id else None
    if secret is not None:
        return secret.arn, getattr(secret, "kms_key_id", None)
    if secret_id.startswith("arn:"):
        return secret_id, None
    return (f"arn:aws:secretsmanager:{request.region}:{DEFAULT_ACCOUNT_ID}:secret:{secret_id}" if secret_id else "*"), None


def _check_s3(identity: principals.Identity, request: requests.Request) -> None:
    from moto.s3.models import s3_backends

    resource = f"arn:aws:s3:::{request.bucket}/{request.key}" if request.key else f"arn:aws:s3:::{request.bucket}" if request.bucket else "*"
    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.get(request.bucket) if request.bucket else None
    if request.params.get("multipart_part") and "s3:x-amz-server-side-encryption" not in request.context:
        request.context["s3:x-amz-server-side-encryption"] = "multipart"  # a part inherits its upload's encryption
    policy = document(bucket.policy) if bucket is not None and bucket.policy else None
    why = decisions.decide(identity, request.action, resource, request.context, policy)
    if why:
        raise Denied("AccessDenied", decisions.denial(identity.caller, request.action, resource, why, quote=True))
    if bucket is not None and request.key and request.operation in ("GetObject", "GetObjectVersion"):
        key = bucket.keys.get(request.key)
        if key is not None and getattr(key, "encryption", None) == "aws:kms":
            _require_decrypt(identity, request.region, key.kms_key_id, request.context, "s3")


def check(identity: principals.Identity, request: requests.Request) -> None:
    """Raise :class:`Denied` unless ``identity`` may make ``request``."""
    if request.action == "sts:GetCallerIdentity":
        return  # always allowed on AWS, even under an explicit deny
    if request.service == "s3":
        _check_s3(identity, request)
        return
    resource, key_id = "*", None
    if request.service == "secretsmanager" and request.operation != "ListSecrets":
        resource, key_id = _secret(request)
    elif request.service == "kms" and request.params.get("KeyId"):
        found = _kms_key(request.region, str(request.params["KeyId"]))
        if found is not None:
            why = decisions.decide_kms(identity, request.action, found[0], found[1], request.context)
            if why:
                raise Denied("AccessDeniedException", decisions.denial(identity.caller, request.action, found[0], why))
            return
    elif request.action == "sts:AssumeRole":
        resource = str(request.params.get("RoleArn", "*"))
        if identity.caller.is_root:
            return  # the deploy identity stands in for the AWS services (ECS, Lambda, EC2) that assume app roles
        _check_trust(identity, resource)
    why = decisions.decide(identity, request.action, resource, request.context)
    if why:
        raise Denied(
            "AccessDeniedException" if request.service in ("secretsmanager", "kms") else "AccessDenied",
            decisions.denial(identity.caller, request.action, resource, why),
        )
    if request.action == "secretsmanager:GetSecretValue":
        _require_decrypt(identity, request.region, key_id, request.context, "secretsmanager")


def _check_trust(identity: principals.Identity, role_arn: str) -> None:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].get_role_by_arn(role_arn)
    except NotFoundException:
        return  # moto answers NoSuchEntity
    trust = document(role.assume_role_policy_document)
    if "Allow" not in effects(trust, "sts:AssumeRole", role_arn, {}, identity.caller) or "Deny" in effects(
        trust, "sts:AssumeRole", role_arn, {}, identity.caller
    ):
        raise Denied("AccessDenied", decisions.denial(identity.caller, "sts:AssumeRole", role_arn, NO_TRUST))


NO_TRUST = "because the role's trust policy does not allow the caller"


def _respond(start_response: Callable[..., Any], environ: dict[str, Any], request: requests.Request | None, error: Denied) -> list[bytes]:
    request_id = str(uuid.uuid4())
    service = request.service if request else "s3"
    if service == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{error.code}</Code><Message>{escape(error.message)}</Message>'
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()
        content_type = "application/xml"
    elif environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": error.code, "message": error.message, "Message": error.message}).encode()
        content_type = "application/x-amz-json-1.1"
        error.status = 400
    elif service == "ec2":
        code = "UnauthorizedOperation" if error.code == "AccessDenied" else error.code
        errors = f"<Errors><Error><Code>{code}</Code><Message>{escape(error.message)}</Message></Error></Errors>"
        body = f"<Response>{errors}<RequestID>{request_id}</RequestID></Response>".encode()
        content_type = "text/xml"
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{error.code}</Code><Message>{escape(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    status = {400: "400 Bad Request", 403: "403 Forbidden"}[error.status]
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _dechunk(environ: dict[str, Any]) -> None:
    """boto3 streams S3 uploads over HTTPS with ``Transfer-Encoding: chunked`` (aws-chunked bodies with a trailing
    checksum) and no Content-Length; moto reads Content-Length bytes, so it would store an empty object. werkzeug has
    already removed the HTTP chunking: buffer the body and give its length."""
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked":
        return
    if not environ.get("CONTENT_LENGTH"):  # else an outer layer (the CloudTrail recorder) has buffered it already
        data = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)  # werkzeug ignores Content-Length beside it: moto would read nothing


def _drain(environ: dict[str, Any]) -> None:
    """Read a refused request's body, so that a TLS client still sending it sees the answer, not a reset."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        while length > 0:
            chunk = stream.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)
    except (OSError, ValueError):
        pass


def wrap(app: App) -> App:
    """``app`` behind IAM enforcement; ``aws:SecureTransport`` is true only for requests that arrived over TLS."""

    def enforcing(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        _dechunk(environ)
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return app(environ, start_response)
        request = None
        try:
            request = requests.parse(environ, secure=environ.get("wsgi.url_scheme") == "https")
            if request is None:
                if environ.get("HTTP_X_AMZ_TARGET") or "s3" not in environ.get("HTTP_HOST", "") and environ.get("QUERY_STRING", "").find("Action=") >= 0:
                    raise Denied("MissingAuthenticationToken", "Request is missing Authentication Token")
                return app(environ, start_response)  # unsigned: S3 anonymous access is refused by moto's public-access rules
            try:
                identity = principals.resolve(request.access_key_id or "", request.session_token)
            except principals.UnknownCredentials:
                code = (
                    "InvalidToken" if request.service == "s3" else "UnrecognizedClientException" if environ.get("HTTP_X_AMZ_TARGET") else "InvalidClientTokenId"
                )
                raise Denied(code, "The security token included in the request is invalid.") from None
            if identity.secret is not None and not signatures.valid(
                environ, request.body, request.service, request.region, request.access_key_id or "", identity.secret, request.session_token
            ):
                code = "InvalidSignatureException" if environ.get("HTTP_X_AMZ_TARGET") else "SignatureDoesNotMatch"
                raise Denied(code, BAD_SIGNATURE)
            check(identity, request)
        except Denied as error:
            log.info("denied %s for %s", request.action if request else "?", error.code)
            _drain(environ)
            return _respond(start_response, environ, request, error)
        return app(environ, start_response)

    return enforcing
