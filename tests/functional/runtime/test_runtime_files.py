"""Files: every operation against the local cloud, encryption on every write, checksums, versions in QA."""

from __future__ import annotations

import io
import os
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import boto3
import pytest

from rentaliq.runtime import (
    ChecksumMismatch,
    Files,
    ObjectNotFound,
    RuntimeConfig,
    Secrets,
    VersioningNotEnabled,
)
from rentaliq.runtime.checksums import SourceChecksums, crc32s_of_file
from tests.functional.runtime.seeded_cloud import SeededCloud

pytestmark = pytest.mark.functional

MiB = 1024 * 1024
SMALL_PARTS = {"multipart_threshold": 5 * MiB, "multipart_chunksize": 5 * MiB, "max_concurrency": 4}


class ReadOnlyStream:
    """A non-seekable stream (a socket, a pipe, a request body)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)


def recording_client() -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """A real S3 client of the local cloud that records the parameters of every write."""
    client = boto3.client("s3", region_name="eu-west-3")
    seen: list[tuple[str, dict[str, Any]]] = []
    for op in ("PutObject", "CreateMultipartUpload", "CopyObject"):
        client.meta.events.register(f"before-parameter-build.s3.{op}", lambda params, model, **_: seen.append((model.name, dict(params))))
    return client, seen


@pytest.fixture
def big_files(secrets: Secrets) -> Files:
    with Files(secrets, config=RuntimeConfig(env="lab", **SMALL_PARTS)) as f:
        yield f


# --------------------------------------------------------------------------- upload / download


def test_bucket_comes_from_the_s3_config_secret(seeded_cloud: SeededCloud, files: Files) -> None:
    assert files.bucket == seeded_cloud.read_secret("lab", "s3/config")["bucket_name"] == "rentaliq-lab-files"


def test_small_bytes_round_trip(files: Files) -> None:
    up = files.upload("rt/hello.txt", b"hello world")
    assert (up.server_side_encryption, up.content_type, up.size, up.checksum_type) == ("AES256", "text/plain", 11, "FULL_OBJECT")
    assert up.version_id is None  # lab: unversioned
    down = files.download("rt/hello.txt")
    assert down.data == b"hello world"
    assert down.checksum_verified and down.checksum_crc32 == up.checksum_crc32
    assert down.server_side_encryption == "AES256"
    assert files.read("rt/hello.txt") == b"hello world"


def test_content_type_and_metadata(files: Files) -> None:
    files.upload("rt/data.json", b"{}")
    assert files.head("rt/data.json").content_type == "application/json"
    files.upload("rt/blob", b"\x00\x01", content_type="image/png", metadata={"owner": "tests"})
    info = files.head("rt/blob")
    assert info.content_type == "image/png" and info.server_side_encryption == "AES256"
    files.upload("rt/noext", b"x")
    assert files.head("rt/noext").content_type == "application/octet-stream"


def test_large_file_multipart_round_trip_through_paths(big_files: Files, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    up = big_files.upload("rt/big.bin", src)
    assert up.size == len(data) and up.server_side_encryption == "AES256"
    assert up.checksum_type == "COMPOSITE" and up.checksum_verified  # S3's composite CRC32 matches our own read
    assert (up.etag or "").endswith('-3"') and up.checksum_crc32.endswith("-3")  # three parts: really multipart
    dest = tmp_path / "out" / "big.bin"
    dest.parent.mkdir()
    down = big_files.download("rt/big.bin", dest)
    assert down.checksum_verified and down.path == dest
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["big.bin"]  # no temporary file left behind


def test_seekable_and_non_seekable_streams(big_files: Files) -> None:
    data = os.urandom(11 * MiB)
    buf = io.BytesIO(b"skip" + data)
    buf.seek(4)  # uploads from the current position
    up = big_files.upload("rt/seekable.bin", buf)
    assert up.size == len(data) and up.checksum_verified
    assert big_files.read("rt/seekable.bin") == data

    up = big_files.upload("rt/stream.bin", ReadOnlyStream(data))
    assert up.size == len(data) and up.checksum_verified  # part CRCs computed while streaming
    out = io.BytesIO()
    down = big_files.download("rt/stream.bin", out)
    assert out.getvalue() == data
    assert down.size == len(data) and down.checksum_verified

    small = big_files.upload("rt/small-stream.txt", ReadOnlyStream(b"tiny"))
    assert small.size == 4 and big_files.read("rt/small-stream.txt") == b"tiny"


def files_crc(data: bytes) -> str:
    import base64

    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_objects_from_other_tools_are_verified_too(seeded_cloud: SeededCloud, files: Files, big_files: Files) -> None:
    """Composite checksums with another part size (the AWS CLI uses 8 MiB parts): part 1's size comes from S3."""
    from boto3.s3.transfer import TransferConfig

    raw = seeded_cloud.client("s3")
    data = os.urandom(11 * MiB)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    raw.upload_fileobj(io.BytesIO(data), files.bucket, "rt/by-cli.bin", Config=cfg)
    for f in (files, big_files):  # below and above the SDK's own multipart threshold
        down = f.download("rt/by-cli.bin")
        assert down.data == data and down.checksum_verified and down.checksum_crc32.endswith("-3")


def test_an_upload_that_does_not_match_its_source_is_removed(secrets: Secrets, big_files: Files, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(6 * MiB))

    def skewed(path: Any, part: int) -> Any:
        sums = crc32s_of_file(path, part)
        sums.parts[-1] ^= 1  # as if the file changed between our read and the transfer's
        return sums

    with Files(secrets, config=RuntimeConfig(env="lab", **SMALL_PARTS), checksums=SourceChecksums(of_file=skewed)) as changing:
        with pytest.raises(ChecksumMismatch, match="the object was removed"):
            changing.upload("rt/skewed.bin", src)
    with pytest.raises(ObjectNotFound):
        big_files.head("rt/skewed.bin")


def test_every_write_requests_server_side_encryption(seeded_cloud: SeededCloud, secrets: Secrets, tmp_path: Path) -> None:
    client, seen = recording_client()
    with Files(secrets, config=RuntimeConfig(env="lab", **SMALL_PARTS), client=client) as f:
        f.upload("rt/sse-small", b"x")
        f.upload("rt/sse-big", os.urandom(6 * MiB))
        f.upload("rt/sse-stream", ReadOnlyStream(os.urandom(6 * MiB)))
    with Files(Secrets(secrets.config.replace(env="qa")), client=client) as q:
        v = q.upload("rt/sse-version", b"1")
        q.upload("rt/sse-version", b"2")
        q.restore_version("rt/sse-version", v.version_id)
    ops = [name for name, _ in seen]
    assert {"PutObject", "CreateMultipartUpload", "CopyObject"} <= set(ops)
    assert all(params.get("ServerSideEncryption") == "AES256" for _, params in seen), seen


def test_list_delete_and_missing_objects(files: Files) -> None:
    for name in ("a", "b", "c"):
        files.upload(f"rt-list/{name}.txt", name.encode())
    files.upload("rt-listing-other/x.txt", b"x")
    keys = [o.key for o in files.list("rt-list/")]
    assert keys == ["rt-list/a.txt", "rt-list/b.txt", "rt-list/c.txt"]
    assert [o.key for o in files.list("rt-list/", limit=2)] == keys[:2]
    assert all(o.size == 1 for o in files.list("rt-list/"))
    result = files.delete("rt-list/b.txt")
    assert not result.delete_marker
    assert [o.key for o in files.list("rt-list/")] == ["rt-list/a.txt", "rt-list/c.txt"]
    with pytest.raises(ObjectNotFound, match="s3://rentaliq-lab-files/rt-list/b.txt"):
        files.download("rt-list/b.txt")
    with pytest.raises(ObjectNotFound):
        files.head("rt-list/never")


def test_presigned_urls(files: Files) -> None:
    files.upload("rt/presigned.txt", b"signed")
    with urllib.request.urlopen(files.presigned_url("rt/presigned.txt", expires_in=60)) as response:
        assert response.read() == b"signed"

    url = files.presigned_url("rt/uploaded.txt", method="PUT", expires_in=60)
    assert "x-amz-server-side-encryption" in url  # the encryption header is part of the signature
    request = urllib.request.Request(url, data=b"via url", method="PUT", headers={"x-amz-server-side-encryption": "AES256", "Content-Type": "text/plain"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    info = files.head("rt/uploaded.txt")
    assert info.server_side_encryption == "AES256" and files.read("rt/uploaded.txt") == b"via url"
    with pytest.raises(ValueError, match="method"):
        files.presigned_url("rt/x", method="DELETE")


def test_corrupt_objects_are_refused_and_nothing_is_written(seeded_cloud: SeededCloud, files: Files, big_files: Files, tmp_path: Path) -> None:
    raw = seeded_cloud.client("s3")
    wrong = files_crc(b"something else")
    raw.put_object(Bucket=files.bucket, Key="rt/corrupt-small", Body=b"payload", ChecksumAlgorithm="CRC32", ChecksumCRC32=wrong)
    dest = tmp_path / "small.out"
    with pytest.raises(ChecksumMismatch, match="rt/corrupt-small"):
        files.download("rt/corrupt-small", dest)
    assert not dest.exists()

    data = os.urandom(6 * MiB)
    raw.put_object(Bucket=files.bucket, Key="rt/corrupt-big", Body=data, ChecksumAlgorithm="CRC32", ChecksumCRC32=files_crc(data[:-1]))
    dest = tmp_path / "big.out"
    with pytest.raises(ChecksumMismatch, match="rt/corrupt-big"):
        big_files.download("rt/corrupt-big", dest)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ChecksumMismatch):
        big_files.download("rt/corrupt-big")


# --------------------------------------------------------------------------- versions


def test_versions_in_qa(qa_files: Files) -> None:
    assert qa_files.versioning_enabled()
    v1 = qa_files.upload("rt/doc.txt", b"version 1")
    v2 = qa_files.upload("rt/doc.txt", b"version 2")
    assert v1.version_id and v2.version_id and v1.version_id != v2.version_id
    versions = qa_files.list_versions("rt/doc.txt")
    assert [v.version_id for v in versions] == [v2.version_id, v1.version_id]
    assert versions[0].is_latest and not versions[1].is_latest

    restored = qa_files.restore_version("rt/doc.txt", v1.version_id)
    assert restored.server_side_encryption == "AES256"
    assert restored.version_id not in (v1.version_id, v2.version_id)
    assert qa_files.read("rt/doc.txt") == b"version 1"
    assert qa_files.read("rt/doc.txt", version_id=v2.version_id) == b"version 2"
    assert len(qa_files.list_versions("rt/doc.txt")) == 3

    deleted = qa_files.delete("rt/doc.txt")
    assert deleted.delete_marker
    with pytest.raises(ObjectNotFound):
        qa_files.read("rt/doc.txt")
    assert qa_files.list_versions("rt/doc.txt")[0].is_delete_marker
    qa_files.restore_version("rt/doc.txt", v2.version_id)  # undelete
    assert qa_files.read("rt/doc.txt") == b"version 2"
    with pytest.raises(ObjectNotFound):
        qa_files.restore_version("rt/doc.txt", "no-such-version")


def test_versions_only_where_the_bucket_is_versioned(files: Files) -> None:
    files.upload("rt/unversioned.txt", b"x")
    with pytest.raises(VersioningNotEnabled, match="rentaliq-lab-files.*'lab'.*qa, prod"):
        files.list_versions("rt/unversioned.txt")
    with pytest.raises(VersioningNotEnabled):
        files.restore_version("rt/unversioned.txt", "v1")
