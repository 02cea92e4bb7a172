"""Keep secret payloads out of botocore's DEBUG logs: its parsers log whole response bodies."""

from __future__ import annotations

import logging


class _SecretPayloadRedactor(logging.Filter):
    """botocore logs whole request and response bodies at DEBUG, which for Secrets Manager are secret values."""

    _MARKERS = ("SecretString", "SecretBinary")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix; drop its arguments
            text = str(record.msg)
        if any(marker in text for marker in self._MARKERS):
            record.msg = "[rentaliq.runtime redacted a botocore message carrying a Secrets Manager secret value]"
            record.args = ()
        return True


_REDACTOR = _SecretPayloadRedactor()
_REDACTED_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.awsrequest")


def _install_botocore_redaction() -> None:
    """Idempotent; filters run only for records that pass the level check, so this costs nothing unless DEBUG is on."""
    for name in _REDACTED_LOGGERS:
        target = logging.getLogger(name)
        if _REDACTOR not in target.filters:
            target.addFilter(_REDACTOR)
