"""Secrets never reach logs, stdout/stderr or exception text, even with every logger at DEBUG.

One workflow touches every path that handles a secret value (reads, refreshes, a rotation with an
authentication failure and retry, a wrong password, TLS status, files), with the root logger and
botocore at DEBUG, and then scans caplog, capsys and the text of every exception raised.
"""

from __future__ import annotations

import logging
import secrets as tokens
import traceback
from urllib.parse import quote

import psycopg
import pytest

from rentaliq.runtime import (
    DB_CONNECTION_STRING,
    DB_CREDENTIALS,
    Database,
    Files,
    InvalidObjectKey,
    RuntimeConfig,
    SecretNotFound,
    Secrets,
)
from tests.functional.runtime.seeded_cloud import SeededCloud

pytestmark = pytest.mark.functional


def variants(value: str) -> set[str]:
    """The value and the encodings it could leak in."""
    out = {value, quote(value, safe=""), quote(value), repr(value)[1:-1]}
    out.add(value.encode("unicode_escape").decode("ascii"))
    return {v for v in out if len(v) >= 6}


def test_no_secret_in_logs_output_or_errors(seeded_cloud: SeededCloud, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)  # root: botocore, urllib3, psycopg, psycopg.pool, rentaliq
    original = seeded_cloud.password
    rotated = "L3ak@:/?#%[]-" + tokens.token_hex(6)
    wrong = "Wr0ng@:/?#%[]-" + tokens.token_hex(6)
    errors: list[BaseException] = []
    secret_values: set[str] = set()

    secrets = Secrets(RuntimeConfig(env="lab"))
    db = Database(secrets)
    try:
        for name in ("db/credentials", "db/connection-string", "api/keys", "s3/config"):
            value = secrets.get(name)
            print(value, repr(value))
            logging.getLogger("app").info("got %s / %r", value, value)
        creds = secrets.credentials()
        print(creds)
        logging.getLogger("app").warning("creds: %s", creds)
        db.query("SELECT 1")
        print(db.tls_status())

        # rotation: auth failure with the cached password, refresh, retry
        seeded_cloud.rotate_password(rotated)
        db.pool.drain()
        db.query("SELECT 1")
        with db.connect() as conn:
            conn.execute("SELECT 1")

        # a wrong password in the secret
        good = seeded_cloud.read_secret("lab", "db/credentials")
        seeded_cloud.put_secret("lab", "db/credentials", {**good, "password": wrong})
        try:
            with Database(Secrets(RuntimeConfig(env="lab"))) as broken:
                broken.connect()
        except psycopg.OperationalError as exc:
            errors.append(exc)
        finally:
            seeded_cloud.put_secret("lab", "db/credentials", good)

        for bad in (lambda: Secrets(RuntimeConfig(env="prod")).get("api/keys"), lambda: Files(secrets).upload("../x", b"")):
            try:
                bad()
            except (SecretNotFound, InvalidObjectKey) as exc:
                errors.append(exc)

        with Files(secrets) as files:
            files.upload("leak/test.txt", b"content")
            print(files.download("leak/test.txt"))

        secret_values.update(seeded_cloud.all_secret_strings())
        secret_values.update({original, rotated, wrong, secrets.get(DB_CONNECTION_STRING)["DATABASE_URL"]})
        secret_values.update(secrets.get(DB_CREDENTIALS)["password"] for _ in [0])
    finally:
        db.close()
        seeded_cloud.rotate_password(original)

    assert len(errors) == 3
    assert any("rentaliq.runtime redacted" in r.getMessage() for r in caplog.records)  # botocore DEBUG bodies were there
    captured = capsys.readouterr()
    haystacks = {
        "caplog": caplog.text + "\n".join(str(r.__dict__) for r in caplog.records),
        "stdout": captured.out,
        "stderr": captured.err,
        "errors": "\n".join("".join(traceback.format_exception(e)) + repr(e) + str(e) for e in errors),
    }
    for where, text in haystacks.items():
        for value in secret_values:
            for form in variants(value):
                assert form not in text, f"a secret value leaked into {where}"
