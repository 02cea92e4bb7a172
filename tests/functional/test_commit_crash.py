"""kill -9 in the middle of a commit: the restarted cloud holds the previous state or the new one, whole.

A commit writes the new generation's files, replaces ``manifest.json`` (the commit point), then
deletes the files it superseded.  The server's test-only fault-injection point
(``RENTALIQ_LOCAL_CRASH_AT``, see ``rentaliq.local.state.commit``) SIGKILLs it at each phase;
the test restarts it without the variable and reads the data itself back: secret values by
version, S3 objects by version with their bodies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from rentaliq.local.cloud import LocalCloud
from tests.ports import free_port

pytestmark = [pytest.mark.functional, pytest.mark.slow]

SECRETS = "moto.secretsmanager.models:secretsmanager_backends"
S3 = "moto.s3.models:s3_backends"
BUCKET = "rentaliq-crash-data"


@pytest.fixture()
def unstarted_cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    """A cloud of this test's own, not started: each phase starts it with its own crash point."""
    c = LocalCloud(state_dir=tmp_path / "state", port=free_port())
    try:
        yield c
    finally:
        c.stop()


def _start(c: LocalCloud, monkeypatch: pytest.MonkeyPatch, crash_at: str | None, service: str = "") -> None:
    if crash_at:
        monkeypatch.setenv("RENTALIQ_LOCAL_CRASH_AT", crash_at)
        monkeypatch.setenv("RENTALIQ_LOCAL_CRASH_SERVICE", service)
    else:
        monkeypatch.delenv("RENTALIQ_LOCAL_CRASH_AT", raising=False)
        monkeypatch.delenv("RENTALIQ_LOCAL_CRASH_SERVICE", raising=False)
    c.start(timeout=60)


def _killed_by(c: LocalCloud, call: object) -> None:
    """``call`` must not be acknowledged: the server kills itself during its commit."""
    with pytest.raises((BotoCoreError, ClientError)):
        call()  # type: ignore[operator]
    deadline = time.monotonic() + 10
    while c.status().running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not c.status().running


def _state_files_match_manifest(state: Path) -> None:
    """Restart removed what the crash left behind: every service file is named by the manifest, and exists."""
    manifest = json.loads((state / "manifest.json").read_text())
    named = set()
    for entry in manifest["services"].values():
        named.add(entry["file"])
        named.update(p["file"] for pages in entry.get("bpages", {}).values() for p in pages.values())
        for shard in entry.get("shards", {}).values():
            named.add(shard["file"])
            named.update(p["file"] for p in shard.get("pages", {}).values())
    on_disk = {f.name for f in (state / "services").iterdir()}
    assert on_disk == named


@pytest.mark.parametrize("phase", ["files-written", "manifest-replaced"])
def test_kill_during_commit_keeps_previous_or_new_state_whole(unstarted_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, phase: str) -> None:
    # The state before: a secret with one version, a versioned bucket with one object.
    _start(unstarted_cloud, monkeypatch, None)
    sm, s3 = unstarted_cloud.client("secretsmanager"), unstarted_cloud.client("s3")
    secret = sm.create_secret(Name="rentaliq/crash/db", SecretString=json.dumps({"password": "first"}))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=BUCKET, Key="report.json", Body=b"one")["VersionId"]
    unstarted_cloud.stop()

    # A secret's new value: the server dies in that commit.
    _start(unstarted_cloud, monkeypatch, phase, SECRETS)
    sm = unstarted_cloud.client("secretsmanager")
    _killed_by(unstarted_cloud, lambda: sm.put_secret_value(SecretId=secret["ARN"], SecretString=json.dumps({"password": "second"})))

    # An S3 object's new version: the server dies in that commit (bucket entry, key page, service file).
    _start(unstarted_cloud, monkeypatch, phase, S3)
    s3 = unstarted_cloud.client("s3")
    _killed_by(unstarted_cloud, lambda: s3.put_object(Bucket=BUCKET, Key="report.json", Body=b"two"))

    _start(unstarted_cloud, monkeypatch, None)
    sm, s3 = unstarted_cloud.client("secretsmanager"), unstarted_cloud.client("s3")
    versions = sm.list_secret_version_ids(SecretId=secret["ARN"])["Versions"]
    current = json.loads(sm.get_secret_value(SecretId=secret["ARN"])["SecretString"])
    first = json.loads(sm.get_secret_value(SecretId=secret["ARN"], VersionId=secret["VersionId"])["SecretString"])
    assert first == {"password": "first"}
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix="report.json")["Versions"]
    bodies = {v["VersionId"]: s3.get_object(Bucket=BUCKET, Key="report.json", VersionId=v["VersionId"])["Body"].read() for v in listed}
    latest = s3.get_object(Bucket=BUCKET, Key="report.json")["Body"].read()
    assert bodies[v1] == b"one"
    if phase == "files-written":  # the manifest still names the previous generation: the change is not there
        assert len(versions) == 1 and current == {"password": "first"}
        assert set(bodies) == {v1} and latest == b"one"
    else:  # the new manifest was in place: the change is there, with everything before it
        assert len(versions) == 2 and current == {"password": "second"}
        assert len(bodies) == 2 and sorted(bodies.values()) == [b"one", b"two"] and latest == b"two"
    _state_files_match_manifest(unstarted_cloud.state_dir)

    # And the cloud goes on: a change after the restart survives another restart.
    s3.put_object(Bucket=BUCKET, Key="after.txt", Body=b"after")
    unstarted_cloud.stop()
    _start(unstarted_cloud, monkeypatch, None)
    assert unstarted_cloud.client("s3").get_object(Bucket=BUCKET, Key="after.txt")["Body"].read() == b"after"
    first = unstarted_cloud.client("secretsmanager").get_secret_value(SecretId=secret["ARN"], VersionId=secret["VersionId"])
    assert json.loads(first["SecretString"]) == {"password": "first"}
