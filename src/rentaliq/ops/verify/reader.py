"""The one reader of live state: every API call the audit makes goes through :class:`Reader`.

Owns calling and paginating, the sections that let one failed read skip only the checks that needed it,
credential errors (stop the whole audit) and the operations the local cloud does not implement (their
checks are "not checkable", from the explicit contract.LOCAL_UNIMPLEMENTED_OPERATIONS and nothing else).
Every other error, an HTTP 500 or an answer that does not parse included, is a failed check.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.parsers import ResponseParserError

from rentaliq.contract import LOCAL_UNIMPLEMENTED_OPERATIONS
from rentaliq.deploy.target import Target
from rentaliq.environments import DatabaseSpec, EnvironmentSpec
from rentaliq.ops.verify.checks import SECRETS, Recorder, VerifyError
from rentaliq.ops.verify.documents import as_list, partition

# What an API call can raise that is an answer about the call (as opposed to "no endpoint at all").
API_ERRORS = (ClientError, BotoCoreError, ResponseParserError)
UNREACHABLE = (EndpointConnectionError, NoCredentialsError)
# Answers that say nothing about the environment, only that the caller's credentials don't work: stop at once.
CREDENTIAL_ERRORS = (
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "AuthFailure",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
)


class Recorded(Exception):
    """A read failed and its check is recorded; the checks that needed the value are skipped."""


def _error_detail(area: str, operation: str, error: Exception) -> str:
    """``operation: code: message (HTTP n)``; in the Secrets area an unparsed answer is named by type only (it may quote a value)."""
    if isinstance(error, ClientError):
        err, meta = error.response.get("Error", {}), error.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        http = f" (HTTP {status})" if isinstance(status, int) and status >= 500 else ""
        return f"{operation}: {err.get('Code', '')}: {err.get('Message', '')}".rstrip(": ") + http
    message = "" if area == SECRETS else f": {' '.join(str(error).split())[:200]}"
    return f"{operation}: {type(error).__name__}{message}"


@dataclass
class Reader:
    """Calls ``target``'s APIs; a failed call records its check in ``record`` and raises :class:`Recorded`."""

    target: Target
    record: Recorder
    unimplemented: Collection[str] = LOCAL_UNIMPLEMENTED_OPERATIONS  # "service:Operation", local cloud only

    def _declared_unimplemented(self, service: str, operation: str) -> str | None:
        if not self.target.is_local:
            return None
        api = self.target.client(service).meta.method_to_api_mapping.get(operation, operation)
        if f"{service}:{api}" in self.unimplemented:
            return f"{service}:{api}: the local cloud does not implement it (contract.LOCAL_UNIMPLEMENTED_OPERATIONS)"
        return None

    def call(self, area: str, name: str, expected: Any, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call one API; on an error record ``name`` as fail (or not-checkable) and raise Recorded."""
        reason = self._declared_unimplemented(service, operation)
        if reason:
            self.record.not_checkable(area, name, expected, reason)
            raise Recorded
        try:
            response: dict[str, Any] = getattr(self.target.client(service), operation)(**params)
        except UNREACHABLE:
            raise
        except API_ERRORS as error:
            if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in CREDENTIAL_ERRORS:
                raise VerifyError(f"{operation}: {error.response['Error']['Code']}: the credentials for {self.target.name} were refused") from None
            self.record.add(area, name, expected, None, ok=False, detail=_error_detail(area, operation, error))
            raise Recorded from None
        response.pop("ResponseMetadata", None)
        return response

    def paginate(self, area: str, name: str, expected: Any, service: str, operation: str, key: str, **params: Any) -> list[Any]:
        """Every page's ``key`` items, or, for an operation without a paginator, the one answer's."""
        client = self.target.client(service)
        if not client.can_paginate(operation) or self._declared_unimplemented(service, operation):
            return as_list(self.call(area, name, expected, service, operation, **params).get(key))
        items: list[Any] = []
        try:
            for page in client.get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
        except UNREACHABLE:
            raise
        except API_ERRORS:
            # Replay as a single call so the error is classified and recorded the same way.
            return as_list(self.call(area, name, expected, service, operation, **params).get(key))
        return items

    @contextmanager
    def section(self, area: str, label: str) -> Iterator[None]:
        """Run one group of checks; a failed read skips the rest of the group, never the audit."""
        try:
            yield
        except Recorded:
            pass
        except VerifyError:
            raise
        except UNREACHABLE as error:
            raise VerifyError(f"cannot reach {self.target.name} ({self.target.endpoint_url or self.target.region}): {error}") from None
        except Exception as error:  # noqa: BLE001 - an answer we did not expect is a failed check, not a crash
            # Secret areas hold values that an exception message could quote: name the type only there.
            message = "" if area == SECRETS else f": {' '.join(str(error).split())[:200]}"
            self.record.add(area, f"{label} (audit error)", "a readable answer", None, ok=False, detail=f"{type(error).__name__}{message}")


@dataclass(frozen=True)
class Audit:
    """What every area is given: the spec to compare with, the reader of live state and the record of checks."""

    spec: EnvironmentSpec
    read: Reader

    @property
    def record(self) -> Recorder:
        return self.read.record

    @property
    def env(self) -> str:
        return self.spec.name.value

    @property
    def db(self) -> DatabaseSpec:
        return self.spec.database

    @property
    def partition(self) -> str:
        return partition(self.spec.region)
