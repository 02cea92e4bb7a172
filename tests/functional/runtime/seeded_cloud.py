"""A throw-away local cloud for the runtime SDK's tests and benchmarks: moto + one real PostgreSQL 15.

Shared by ``conftest.py`` (pytest fixtures) and ``benchmarks/runtime`` (plain script), so it has
no pytest dependency.  The secrets and the bucket are created here, directly through boto3, in
exactly the deployed format (DESIGN.md, "Secrets"), never through the SDK under test.

moto runs either in a thread of this process (``ThreadedMotoServer``: fast to start, what the
tests use) or as a separate process (what the benchmarks use, so that moto's request handling
does not compete for this process's GIL with the code being measured, just as it does not with
the ``aws`` CLI, which always runs in its own process).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3

from rentaliq import naming
from rentaliq.contract import SSLMODE
from rentaliq.local.postgres import Endpoint, PostgresEngine
from tests.ports import free_port

REGION = "eu-west-3"
MASTER_USERNAME = "rentaliq_admin"
DBNAME = "rentaliq"
# Every character that breaks a naive URL, plus quotes, a backslash, a space and non-ASCII.
TRICKY_PASSWORD = "Rq7@:/?#%[]'\"\\ é-x"
VERSIONED_ENVS = ("qa", "prod")


def aws_env(endpoint_url: str) -> dict[str, str]:
    """Standard AWS configuration pointing at the local cloud; the SDK reads nothing else."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@dataclass
class SeededEnv:
    env: str
    bucket: str
    versioned: bool


class SeededCloud:
    """moto (Secrets Manager + S3) and a TLS-only PostgreSQL server, seeded per environment."""

    def __init__(self, *, moto_mode: str = "thread", password: str = TRICKY_PASSWORD) -> None:
        if moto_mode not in ("thread", "process"):
            raise ValueError("moto_mode must be 'thread' or 'process'")
        self.moto_mode = moto_mode
        self.password = password
        self.root = Path(tempfile.mkdtemp(prefix="rentaliq-rt-", dir="/tmp"))
        os.chmod(self.root, 0o755)  # as root, the servers run as 'postgres', which must traverse this
        self.engine = PostgresEngine(self.root / "postgres")
        self.endpoint_url = ""
        self.db_instance = ""
        self.db_endpoint: Endpoint | None = None
        self._moto: Any = None
        self._moto_proc: subprocess.Popen[bytes] | None = None
        self.envs: dict[str, SeededEnv] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, db_instance: str = naming.db_instance_id("lab")) -> SeededCloud:
        self._start_moto()
        self.db_instance = db_instance
        self.db_endpoint = self.engine.create(db_instance, master_username=MASTER_USERNAME, master_password=self.password, dbname=DBNAME, force_ssl=True)
        return self

    def stop(self) -> None:
        try:
            self.engine.stop_all()
        finally:
            if self._moto is not None:
                self._moto.stop()
                self._moto = None
            if self._moto_proc is not None:
                self._moto_proc.terminate()
                try:
                    self._moto_proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._moto_proc.kill()
                self._moto_proc = None
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SeededCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_moto(self) -> None:
        if self.moto_mode == "thread":
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._moto.start()
            host, port = self._moto.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
            return
        port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._moto_proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).close()
                return
            except OSError:
                if self._moto_proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.05)

    # ------------------------------------------------------------------ AWS side

    def env_vars(self) -> dict[str, str]:
        """The AWS variables, and the local CA as $PGSSLROOTCERT (as `rentaliq local env` exports it)."""
        return {**aws_env(self.endpoint_url), "PGSSLROOTCERT": str(self.engine.ca_bundle_path)}

    @contextmanager
    def activated(self, env: str = "lab") -> Iterator[None]:
        """Set the standard AWS variables (and $RENTALIQ_ENV) for the block, restoring the old ones."""
        wanted = {**self.env_vars(), "RENTALIQ_ENV": env}
        saved = {k: os.environ.get(k) for k in [*wanted, "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(wanted)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def client(self, service: str) -> Any:
        """A client of the local cloud for the fixture's own use (explicit endpoint and credentials)."""
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def seed_env(self, env: str, *, versioned: bool | None = None) -> SeededEnv:
        """Create the four secrets (deployed format) and the encrypted files bucket of ``env``."""
        versioned = env in VERSIONED_ENVS if versioned is None else versioned
        bucket = naming.files_bucket(env)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]},
        )
        if versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        secrets = self.client("secretsmanager")
        for name, value in self.secret_values(env, bucket).items():
            secrets.create_secret(Name=naming.secret_path(env, name), SecretString=json.dumps(value))
        seeded = SeededEnv(env, bucket, versioned)
        self.envs[env] = seeded
        return seeded

    def secret_values(self, env: str, bucket: str, password: str | None = None) -> dict[str, dict[str, Any]]:
        assert self.db_endpoint is not None
        host, port = self.db_endpoint.host, self.db_endpoint.port
        pw = self.password if password is None else password
        return {
            "db/credentials": {
                "username": MASTER_USERNAME,
                "password": pw,
                "engine": "postgres",
                "host": host,
                "port": port,
                "dbname": DBNAME,
                "dbInstanceIdentifier": self.db_instance,
            },
            "db/connection-string": {
                "DATABASE_URL": f"postgresql://{MASTER_USERNAME}:{quote(pw, safe='')}@{host}:{port}/{DBNAME}?sslmode={SSLMODE}",
                "JDBC_URL": f"jdbc:postgresql://{host}:{port}/{DBNAME}?sslmode={SSLMODE}",
            },
            "api/keys": {
                "api_key": "ak_" + os.urandom(24).hex(),
                "jwt_secret": "jw_" + os.urandom(32).hex(),
                "encryption_key": "ek_" + os.urandom(32).hex(),
            },
            "s3/config": {"bucket_name": bucket, "bucket_arn": f"arn:aws:s3:::{bucket}", "region": REGION},
        }

    def read_secret(self, env: str, name: str) -> dict[str, Any]:
        raw = self.client("secretsmanager").get_secret_value(SecretId=naming.secret_path(env, name))["SecretString"]
        return json.loads(raw)

    def put_secret(self, env: str, name: str, value: Mapping[str, Any]) -> None:
        self.client("secretsmanager").put_secret_value(SecretId=naming.secret_path(env, name), SecretString=json.dumps(value))

    def rotate_password(self, new_password: str, *, envs: tuple[str, ...] = ("lab",), update_secret: bool = True) -> None:
        """What a rotation does: change the password in the database, then in the secrets."""
        self.engine.set_master_password(self.db_instance, MASTER_USERNAME, new_password)
        self.password = new_password
        if update_secret:
            self.publish_password(envs=envs)

    def publish_password(self, *, envs: tuple[str, ...] = ("lab",)) -> None:
        for env in envs:
            values = self.secret_values(env, self.envs[env].bucket)
            api_keys = self.read_secret(env, "api/keys")  # keep the generated keys
            self.put_secret(env, "db/credentials", values["db/credentials"])
            self.put_secret(env, "db/connection-string", values["db/connection-string"])
            self.put_secret(env, "api/keys", api_keys)

    def all_secret_strings(self) -> list[str]:
        """Every secret value currently deployed, for leak scans (longer than 6 chars to avoid false hits)."""
        found: list[str] = []
        for env in self.envs:
            for name in naming.SECRET_NAMES:
                if name == "s3/config":
                    continue  # bucket names are not secret and legitimately appear in messages
                for key, value in self.read_secret(env, name).items():
                    if key in ("password", "api_key", "jwt_secret", "encryption_key", "DATABASE_URL"):
                        found.append(str(value))
        return found
