"""What `rentaliq files restore` would do: each key's state as of T against its state now (no writes here).

The plan is computed from one paginated ``ListObjectVersions`` walk of the prefix. For each key the version
*as of T* is the newest entry (version or delete marker) whose ``LastModified`` is at or before T:

============================  ==========================  ==========================================
as of T                        now                         action
============================  ==========================  ==========================================
version V                      V (or V's bytes, see below)  ``unchanged``
version V                      another version              ``restore``: copy V over the key
version V                      a delete marker              ``undelete``: copy V over the key
delete marker / no entry yet   a version                    ``delete``: a new delete marker
delete marker / no entry yet   a delete marker              ``unchanged``
============================  ==========================  ==========================================

Nothing is ever removed from a key's history: a restore adds a version, a delete adds a delete marker.
Because a restore adds a *copy* of V (a new version id), a second run would find "another version" and copy
again; so a current version with V's ETag and size (same bytes: S3's ETag is the MD5 of a single-part
object and the same part digest for a multipart one) also counts as ``unchanged``. That makes a run that was
interrupted safe to repeat: only what is still different is written.

Times: S3 reports ``LastModified`` in whole seconds, so an entry written during the second of T counts as at
or before T. ``ListObjectVersions`` returns a page's versions and delete markers as two lists; within one
key both are newest first, so they are merged by time, the entry S3 flags ``IsLatest`` first on a tie. A tie
that decides the version as of T (an upload and a delete in the same second, both at or before T) is resolved
by S3 itself: that key is listed again one entry per request (``MaxKeys=1``), which gives S3's own order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Action = Literal["restore", "undelete", "delete", "unchanged"]
ACTIONS: tuple[Action, ...] = ("restore", "undelete", "delete", "unchanged")

AS_OF_FORMAT = "an ISO-8601 time with a timezone, e.g. 2025-11-08T10:00:00Z or 2025-11-08T12:00:00+02:00"


class FileRestoreError(ValueError):
    """A restore that cannot start (bad input, unversioned bucket, PROD without confirmation): one line for the user."""


def parse_as_of(text: str, *, now: datetime | None = None) -> datetime:
    """``--as-of`` as an aware datetime; a naive time would be read in some unknown zone, so it is refused."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FileRestoreError(f"--as-of {text!r} is invalid; allowed: {AS_OF_FORMAT}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise FileRestoreError(f"--as-of {text!r} has no timezone; allowed: {AS_OF_FORMAT}")
    current = now or datetime.now(UTC)
    if value > current:
        raise FileRestoreError(f"--as-of {text!r} is in the future (now is {current.isoformat(timespec='seconds')}); allowed: a past time")
    return value


@dataclass(frozen=True)
class Entry:
    """One version or delete marker of a key, as ListObjectVersions reports it."""

    version_id: str
    last_modified: datetime
    is_latest: bool
    is_delete_marker: bool
    size: int | None = None
    etag: str | None = None


@dataclass(frozen=True)
class KeyPlan:
    """One key's action. ``current``/``as_of`` are the entries now and at T (None: the key did not exist then)."""

    key: str
    action: Action
    current: Entry
    as_of: Entry | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        def describe(entry: Entry | None) -> dict[str, Any] | None:
            if entry is None:
                return None
            return {
                "version_id": entry.version_id,
                "delete_marker": entry.is_delete_marker,
                "last_modified": entry.last_modified.isoformat(),
                "size": entry.size,
            }

        return {"key": self.key, "action": self.action, "current": describe(self.current), "as_of": describe(self.as_of), "reason": self.reason}


@dataclass
class RestorePlan:
    bucket: str
    prefix: str
    as_of: datetime
    items: list[KeyPlan] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        seen = Counter(item.action for item in self.items)
        return {action: seen.get(action, 0) for action in ACTIONS}

    @property
    def changes(self) -> list[KeyPlan]:
        return [item for item in self.items if item.action != "unchanged"]


def _same_bytes(a: Entry, b: Entry) -> bool:
    return not a.is_delete_marker and not b.is_delete_marker and a.etag is not None and a.etag == b.etag and a.size == b.size


def decide(key: str, entries: list[Entry], as_of: datetime) -> KeyPlan:
    """The action for one key; ``entries`` are all its versions and delete markers, newest first."""
    current = next((e for e in entries if e.is_latest), entries[0])
    then = next((e for e in entries if e.last_modified <= as_of), None)
    if then is None or then.is_delete_marker:
        gone = "did not exist" if then is None else "was deleted"
        if current.is_delete_marker:
            return KeyPlan(key, "unchanged", current, then, f"{gone} at T and is deleted now")
        return KeyPlan(key, "delete", current, then, f"{gone} at T")
    if then.version_id == current.version_id:
        return KeyPlan(key, "unchanged", current, then, "current version is the one as of T")
    if current.is_delete_marker:
        return KeyPlan(key, "undelete", current, then, "deleted since T")
    if _same_bytes(current, then):
        return KeyPlan(key, "unchanged", current, then, "current version has the same bytes (ETag, size) as the one as of T")
    return KeyPlan(key, "restore", current, then, "changed since T")


def _entries(page: Mapping[str, Any]) -> Iterator[tuple[str, Entry]]:
    for item in page.get("Versions", []):
        yield item["Key"], Entry(item["VersionId"], item["LastModified"], bool(item.get("IsLatest")), False, int(item["Size"]), item.get("ETag"))
    for item in page.get("DeleteMarkers", []):
        yield item["Key"], Entry(item["VersionId"], item["LastModified"], bool(item.get("IsLatest")), True)


def _newest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (-e.last_modified.timestamp(), not e.is_latest))  # sorted() is stable


def keys_with_entries(pages: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, list[Entry]]]:
    """(key, entries newest first) in key order, from ListObjectVersions pages.

    A key's entries may straddle pages; the listing is in key order, so every key below a page's greatest
    key is complete when the page ends, and only that greatest key waits for the next page.
    """
    pending: dict[str, list[Entry]] = {}
    for page in pages:
        for key, entry in _entries(page):
            pending.setdefault(key, []).append(entry)
        if not pending:
            continue
        last = max(pending)
        for key in sorted(k for k in pending if k != last):
            yield key, _newest_first(pending.pop(key))
    for key in sorted(pending):
        yield key, _newest_first(pending[key])


def tied_at_t(entries: list[Entry], as_of: datetime) -> bool:
    """Whether the newest second at or before T holds more than one entry: merging by time cannot order them."""
    then = next((e for e in entries if e.last_modified <= as_of), None)
    return then is not None and sum(1 for e in entries if e.last_modified == then.last_modified) > 1


def exact_order(s3: Any, bucket: str, key: str) -> list[Entry]:
    """``key``'s entries in S3's own order (newest first), one entry per request: no two lists to merge."""
    out: list[Entry] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": key, "MaxKeys": 1}
    while True:
        page = s3.list_object_versions(**request)
        for name, entry in _entries(page):
            if name != key:  # a longer key under the same prefix: ours are all listed
                return out
            out.append(entry)
        if not page.get("IsTruncated"):
            return out
        request.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page.get("NextVersionIdMarker", ""))


def plan_restore(
    s3: Any,
    bucket: str,
    prefix: str,
    as_of: datetime,
    *,
    page_size: int | None = None,
    on_key: Callable[[int], None] | None = None,
) -> RestorePlan:
    """Walk every version under ``prefix`` (page by page, ``page_size`` entries a page) and decide each key."""
    paging = {"PageSize": page_size} if page_size else {}
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix, PaginationConfig=paging)
    plan = RestorePlan(bucket, prefix, as_of)
    for key, entries in keys_with_entries(pages):
        if tied_at_t(entries, as_of):
            entries = exact_order(s3, bucket, key)
        plan.items.append(decide(key, entries, as_of))
        if on_key is not None:
            on_key(len(plan.items))
    return plan
