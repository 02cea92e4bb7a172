"""`rentaliq files restore ENV --as-of T`: objects back to their versions as of T, history kept, on the deployed envs.

Objects are written as a RentalIQ service writes them (the runtime SDK: SSE, CRC32), in two phases more than a
second apart (S3's LastModified has whole seconds) with T between them; every check reads the objects' bytes
and the version lists back from S3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rentaliq.environments import load_spec
from rentaliq.runtime import Files, RuntimeConfig, Secrets


def rentaliq(cloud_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, env=cloud_env, timeout=300)


@pytest.fixture
def qa_files(deployed, target) -> Iterator[Files]:
    secrets = Secrets(RuntimeConfig(env="qa"), client=target.client("secretsmanager"))
    with Files(secrets, client=target.client("s3")) as files:
        yield files


def versions(s3: Any, bucket: str, prefix: str) -> dict[str, list[tuple[str, bool]]]:
    """{key: [(version id, is delete marker), ...]} under ``prefix``, as S3 lists them."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []):
            out.setdefault(item["Key"], []).append((item["VersionId"], False))
        for item in page.get("DeleteMarkers", []):
            out.setdefault(item["Key"], []).append((item["VersionId"], True))
    return {k: sorted(v) for k, v in out.items()}


def body(files: Files, key: str) -> bytes | None:
    from rentaliq.runtime.errors import ObjectNotFound

    try:
        return files.read(key)
    except ObjectNotFound:
        return None


def pause() -> None:
    time.sleep(1.1)  # LastModified has whole seconds: each phase gets its own


def test_restore_to_t_restores_undeletes_deletes_and_keeps_history(qa_files: Files, target, cloud_env) -> None:
    s3, bucket = target.client("s3"), qa_files.bucket
    run = uuid.uuid4().hex[:8]
    p, other = f"restore-{run}/", f"restore-{run}-other/"
    # Before T.
    qa_files.upload(p + "a.txt", b"a1")  # overwritten after T: restored
    qa_files.upload(p + "b.txt", b"b1")  # deleted after T: undeleted
    qa_files.upload(p + "d.txt", b"d1")  # untouched: unchanged
    qa_files.upload(p + "e.txt", b"e1")  # deleted before T and still deleted: unchanged
    qa_files.upload(p + "f.txt", b"f1")  # deleted before T, re-created after: deleted again
    qa_files.upload(p + "g.txt", b"g1")  # two versions before T, overwritten and deleted after: undeleted to g2
    qa_files.upload(other + "a.txt", b"o1")  # outside the prefix: left as it is now
    pause()
    qa_files.delete(p + "e.txt")
    qa_files.delete(p + "f.txt")
    qa_files.upload(p + "g.txt", b"g2")
    pause()
    as_of = datetime.now(UTC)
    pause()
    # After T.
    qa_files.upload(p + "a.txt", b"a2")
    qa_files.delete(p + "b.txt")
    qa_files.upload(p + "c.txt", b"c2")  # created after T: deleted
    qa_files.upload(p + "f.txt", b"f2")
    qa_files.upload(p + "g.txt", b"g3")
    qa_files.delete(p + "g.txt")
    qa_files.upload(other + "a.txt", b"o2")
    d_version = qa_files.head(p + "d.txt").version_id

    before = versions(s3, bucket, f"restore-{run}")
    dry = rentaliq(cloud_env, "files", "restore", "qa", "--as-of", as_of.isoformat(), "--prefix", p, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    plan = json.loads(dry.stdout)
    assert versions(s3, bucket, f"restore-{run}") == before  # a dry run changes nothing
    assert plan["dry_run"] is True and plan["bucket"] == "rentaliq-qa-files" and plan["prefix"] == p
    assert plan["counts"] == {"restore": 1, "undelete": 2, "delete": 2, "unchanged": 2}
    actions = {item["key"].removeprefix(p): item["action"] for item in plan["items"]}
    assert actions == {
        "a.txt": "restore",
        "b.txt": "undelete",
        "c.txt": "delete",
        "d.txt": "unchanged",
        "e.txt": "unchanged",
        "f.txt": "delete",
        "g.txt": "undelete",
    }

    human = rentaliq(cloud_env, "files", "restore", "qa", "--as-of", as_of.isoformat(), "--prefix", p, "--dry-run")
    assert human.returncode == 0, human.stdout + human.stderr
    assert "1 restore, 2 undelete, 2 delete, 2 unchanged" in human.stdout and "dry run: nothing changed" in human.stdout
    assert versions(s3, bucket, f"restore-{run}") == before

    done = rentaliq(cloud_env, "files", "restore", "qa", "--as-of", as_of.isoformat(), "--prefix", p)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 applied, 0 failed" in done.stdout

    # The data as of T, read back.
    assert body(qa_files, p + "a.txt") == b"a1"
    assert body(qa_files, p + "b.txt") == b"b1"
    assert body(qa_files, p + "c.txt") is None
    assert body(qa_files, p + "d.txt") == b"d1" and qa_files.head(p + "d.txt").version_id == d_version
    assert body(qa_files, p + "e.txt") is None
    assert body(qa_files, p + "f.txt") is None
    assert body(qa_files, p + "g.txt") == b"g2"
    assert body(qa_files, other + "a.txt") == b"o2"  # outside the prefix
    for key in ("a.txt", "b.txt", "g.txt"):
        head = qa_files.head(p + key)
        assert head.server_side_encryption == "AES256" and head.content_type == "text/plain"

    # History kept: every earlier version and marker is still there, plus one new entry per changed key.
    after = versions(s3, bucket, f"restore-{run}")
    for key, entries in before.items():
        assert set(entries) <= set(after[key]), key
    added = {k.removeprefix(p): sorted(set(after[k]) - set(before[k])) for k in after if k.startswith(p)}
    assert {k: [marker for _, marker in v] for k, v in added.items()} == {
        "a.txt": [False],
        "b.txt": [False],
        "c.txt": [True],
        "d.txt": [],
        "e.txt": [],
        "f.txt": [True],
        "g.txt": [False],
    }
    assert after[other + "a.txt"] == before[other + "a.txt"]

    # A second run finds nothing left to do (the copies have the bytes as of T) and writes nothing.
    again = rentaliq(cloud_env, "files", "restore", "qa", "--as-of", as_of.isoformat(), "--prefix", p, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["counts"] == {"restore": 0, "undelete": 0, "delete": 0, "unchanged": 7}
    assert versions(s3, bucket, f"restore-{run}") == after


def test_many_keys_across_small_pages(qa_files: Files, target) -> None:
    """Keys whose versions straddle ListObjectVersions pages (3 entries a page) are planned and restored whole."""
    from rentaliq.ops.file_restore import restore_files

    p = f"paged-{uuid.uuid4().hex[:8]}/"
    keys = [f"{p}{i:02d}.bin" for i in range(24)]
    for i, key in enumerate(keys):
        qa_files.upload(key, f"{key} old".encode())
        if i % 3 == 0:
            qa_files.delete(key)  # deleted at T, in the second of its upload: a tie the plan must order as S3 does
    pause()
    as_of = datetime.now(UTC)
    pause()
    for i, key in enumerate(keys):
        if i % 3 == 0:
            qa_files.upload(key, f"{key} new".encode())  # re-created: deleted again
        elif i % 3 == 1:
            qa_files.upload(key, f"{key} new".encode())
            qa_files.upload(key, f"{key} newer".encode())  # overwritten twice: restored
        else:
            qa_files.delete(key)  # deleted: undeleted

    spec = load_spec("qa")
    ticks: list[tuple[int, int]] = []
    report = restore_files(target, spec, as_of, prefix=p, page_size=3, workers=4, on_done=lambda n, total, _: ticks.append((n, total)))
    assert [i.key for i in report.plan.items] == keys
    assert report.plan.counts() == {"restore": 8, "undelete": 8, "delete": 8, "unchanged": 0}
    assert not report.failed and len(report.results) == 24
    assert ticks[-1] == (24, 24) and len(ticks) == 24
    for i, key in enumerate(keys):
        assert body(qa_files, key) == (None if i % 3 == 0 else f"{key} old".encode()), key


def test_prod_restores_with_confirmation_and_refuses_without(deployed, target, cloud_env) -> None:
    s3, bucket = target.client("s3"), "rentaliq-prod-files"
    p = f"prod-restore-{uuid.uuid4().hex[:8]}/"
    s3.put_object(Bucket=bucket, Key=p + "report.txt", Body=b"v1", ServerSideEncryption="AES256")
    pause()
    as_of = datetime.now(UTC).isoformat()
    pause()
    s3.put_object(Bucket=bucket, Key=p + "report.txt", Body=b"v2", ServerSideEncryption="AES256")
    before = versions(s3, bucket, p)

    refused = rentaliq(cloud_env, "files", "restore", "prod", "--as-of", as_of, "--prefix", p)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: refusing to restore files in prod: pass --confirm-prod (or --dry-run to see the plan)"
    assert versions(s3, bucket, p) == before

    done = rentaliq(cloud_env, "files", "restore", "prod", "--as-of", as_of, "--prefix", p, "--confirm-prod", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["counts"]["restore"] == 1
    assert s3.get_object(Bucket=bucket, Key=p + "report.txt")["Body"].read() == b"v1"
    assert len(versions(s3, bucket, p)[p + "report.txt"]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["lab", "--as-of", "2025-01-01T00:00:00Z"],
            "error: refusing to restore files in lab: bucket rentaliq-lab-files is not versioned (its spec turns versioning off), "
            "so it keeps no earlier versions; files restore needs a versioned bucket (qa, prod)",
        ),
        (
            ["qa", "--as-of", "2025-01-01T00:00:00"],
            "error: --as-of '2025-01-01T00:00:00' has no timezone; allowed: an ISO-8601 time with a timezone, "
            "e.g. 2025-11-08T10:00:00Z or 2025-11-08T12:00:00+02:00",
        ),
        (
            ["qa", "--as-of", "last tuesday"],
            "error: --as-of 'last tuesday' is invalid; allowed: an ISO-8601 time with a timezone, e.g. 2025-11-08T10:00:00Z or 2025-11-08T12:00:00+02:00",
        ),
        (["qa", "--as-of", "2025-13-01T00:00:00Z"], "error: --as-of '2025-13-01T00:00:00Z' is invalid; allowed: an ISO-8601 time with a timezone"),
        (["qa", "--as-of", "2999-01-01T00:00:00Z"], "error: --as-of '2999-01-01T00:00:00Z' is in the future"),
        (["qa", "--as-of", "2025-01-01T00:00:00Z", "--prefix", "a/../b"], "error: --prefix 'a/../b' is invalid: must not contain a '..' segment"),
    ],
    ids=["lab-unversioned", "naive-time", "not-a-time", "bad-month", "future", "bad-prefix"],
)
def test_refusals_are_one_line_and_change_nothing(deployed, target, cloud_env, args: list[str], message: str) -> None:
    before = versions(target.client("s3"), "rentaliq-qa-files", "")
    result = rentaliq(cloud_env, "files", "restore", *args)
    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert versions(target.client("s3"), "rentaliq-qa-files", "") == before
