"""The state directory on disk: its layout, the FORMAT record, the manifest, and the one atomic-write helper.

Everything the local cloud writes into a state dir (FORMAT, manifest.json, service files, blobs,
server.json) goes through :func:`atomic_write`: write a temporary file, then ``os.replace`` it onto
its name, so a reader (or a restart after ``kill -9``) sees the old file or the new one, whole.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import re
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FORMAT_NAME = "rentaliq-local-cloud-state"
FORMAT_VERSION = 1
FORMAT_FILE = "FORMAT"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = "lock"
SERVICES_DIR = "services"
BLOBS_DIR = "blobs"
CHUNK = 8 * 1024 * 1024


class StateFormatError(RuntimeError):
    """The state directory was written by an incompatible version, or is damaged."""


class StateLockedError(RuntimeError):
    """Another server process is using the state directory."""


class PersistenceError(RuntimeError):
    """A snapshot could not be written."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write(
    target: Path | Callable[[], Path | None],
    data: bytes | bytearray | memoryview | Iterable[bytes],
    *,
    fsync: bool,
    tmp_dir: Path | None = None,
) -> Path | None:
    """Write ``data`` (bytes, or an iterable of chunks) to a temporary file, then rename it onto ``target``.

    ``target`` may be a function called once every chunk is written (a content-addressed name is
    known only then); it returns None when the file need not be stored (it exists already).
    The temporary file is ``tmp_dir/<uuid>`` or, by default, ``.<name>.<uuid>.tmp`` beside the target
    (removed at start-up if a crash leaves it).  Mode 0600.  Returns the path written, or None.
    """
    if tmp_dir is not None:
        tmp = tmp_dir / uuid.uuid4().hex
    elif isinstance(target, Path):
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    else:
        raise ValueError("atomic_write: a computed target needs tmp_dir")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            _write_all(fd, data)
        else:
            for chunk in data:
                _write_all(fd, chunk)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    final = target if isinstance(target, Path) else target()
    if final is None:
        os.unlink(tmp)
        return None
    final.parent.mkdir(exist_ok=True)
    os.replace(tmp, final)
    if fsync:
        fsync_dir(final.parent)
    return final


# --------------------------------------------------------------------------- FORMAT


def _moto_version() -> str:
    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _python_version() -> str:
    return ".".join(platform.python_version_tuple()[:2])


def format_record() -> dict[str, Any]:
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "moto": _moto_version(), "python": _python_version()}


def check_state_dir(state_dir: Path) -> None:
    """Raise :class:`StateFormatError` (one-line message) unless ``state_dir`` is usable.

    A missing or empty directory is usable (it will be initialised).  Cheap: does not
    import moto, so the CLI can call it before spawning a server.
    """
    state_dir = Path(state_dir)
    fmt = state_dir / FORMAT_FILE
    if not fmt.exists():
        if (state_dir / MANIFEST_FILE).exists():
            raise StateFormatError(
                f"state dir {state_dir} has a {MANIFEST_FILE} but no {FORMAT_FILE} file; "
                "it was not written by this version of RentalIQ (move it aside to start fresh)"
            )
        return
    try:
        rec = json.loads(fmt.read_text())
        name, version, moto, py = rec["format"], int(rec["version"]), rec.get("moto"), rec.get("python")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise StateFormatError(f"state dir {state_dir} has an unreadable {FORMAT_FILE} file ({exc}); move it aside to start fresh") from None
    if name != FORMAT_NAME or version != FORMAT_VERSION:
        raise StateFormatError(
            f"state dir {state_dir} uses state format {name!s} v{version}, but this RentalIQ reads "
            f"{FORMAT_NAME} v{FORMAT_VERSION}; use a matching RentalIQ version or move the state dir aside"
        )
    if moto != _moto_version():
        raise StateFormatError(
            f"state dir {state_dir} was written with moto {moto}, but moto {_moto_version()} is installed; "
            "snapshots are moto-version specific: reinstall that moto version or move the state dir aside"
        )
    if py != _python_version():
        raise StateFormatError(
            f"state dir {state_dir} was written by Python {py}, but this is Python {_python_version()}; "
            "snapshots are Python-version specific: use that Python or move the state dir aside"
        )


def init_state_dir(state_dir: Path) -> None:
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    with contextlib.suppress(OSError):
        os.chmod(state_dir, 0o711)
    check_state_dir(state_dir)
    (state_dir / SERVICES_DIR).mkdir(exist_ok=True, mode=0o700)
    (state_dir / BLOBS_DIR / "tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (state_dir / FORMAT_FILE).exists():
        atomic_write(state_dir / FORMAT_FILE, json.dumps(format_record()).encode() + b"\n", fsync=True)


# --------------------------------------------------------------------------- manifest


def empty_manifest() -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "generation": 0, "services": {}}


def read_manifest(state_dir: Path) -> dict[str, Any]:
    """The last committed manifest (an empty one for a new state dir)."""
    mpath = state_dir / MANIFEST_FILE
    if not mpath.exists():
        return empty_manifest()
    try:
        manifest: dict[str, Any] = json.loads(mpath.read_text())
    except ValueError as exc:
        raise StateFormatError(f"{mpath} is not valid JSON ({exc}); the state dir is damaged") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise StateFormatError(f"{mpath} has format {manifest.get('format')!r}, expected {FORMAT_VERSION}; move the state dir aside")
    return manifest


def write_manifest(state_dir: Path, manifest: dict[str, Any], *, fsync: bool) -> None:
    """The commit point: after this rename the new generation's files are the state."""
    atomic_write(state_dir / MANIFEST_FILE, json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode(), fsync=fsync)


def manifest_files(manifest: dict[str, Any]) -> set[str]:
    """Every service file a manifest names."""
    files = set()
    for entry in manifest["services"].values():
        files.add(entry["file"])
        for pages in entry.get("bpages", {}).values():
            files.update(p["file"] for p in pages.values())
        for shard in entry.get("shards", {}).values():
            files.add(shard["file"])
            files.update(p["file"] for p in shard.get("pages", {}).values())
    return files


def safe_name(key: str) -> str:
    """A service key (``module:attr``) or account/region as a file-name part."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key.replace(":", "__"))
