"""The files-restore plan: each key's action from its versions, and keys whose versions straddle listing pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rentaliq.ops.file_restore_plan import Entry, FileRestoreError, decide, keys_with_entries, parse_as_of

T = datetime(2025, 11, 8, 10, 0, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T + timedelta(seconds=seconds)


def version(vid: str, seconds: int, *, latest: bool = False, etag: str | None = None, size: int = 1) -> Entry:
    return Entry(vid, at(seconds), latest, False, size, etag or f'"{vid}"')


def marker(vid: str, seconds: int, *, latest: bool = False) -> Entry:
    return Entry(vid, at(seconds), latest, True)


@pytest.mark.parametrize(
    ("entries", "action", "as_of_version"),
    [
        ([version("v2", 5, latest=True), version("v1", -5)], "restore", "v1"),
        ([marker("m1", 5, latest=True), version("v1", -5)], "undelete", "v1"),
        ([version("v1", 5, latest=True)], "delete", None),
        ([version("v2", 5, latest=True), marker("m1", -2), version("v1", -5)], "delete", "m1"),
        ([version("v1", -5, latest=True)], "unchanged", "v1"),
        ([marker("m1", -2, latest=True), version("v1", -5)], "unchanged", "m1"),
        ([marker("m1", 5, latest=True), version("v1", 3)], "unchanged", None),
        ([version("v3", 5, latest=True, etag='"same"'), version("v1", -5, etag='"same"')], "unchanged", "v1"),
        ([version("v3", 5, latest=True, etag='"same"', size=2), version("v1", -5, etag='"same"')], "restore", "v1"),
        ([version("v1", 0, latest=True)], "unchanged", "v1"),  # written in T's second: at or before T
    ],
    ids=["overwritten", "deleted", "created-after", "deleted-at-t", "same", "still-deleted", "born-and-gone", "same-bytes", "same-etag-other-size", "boundary"],
)
def test_decide(entries: list[Entry], action: str, as_of_version: str | None) -> None:
    plan = decide("k", entries, T)
    assert plan.action == action
    assert (plan.as_of.version_id if plan.as_of else None) == as_of_version


def test_the_latest_entry_wins_a_tie_within_one_second() -> None:
    pages = [
        {
            "Versions": [{"Key": "k", "VersionId": "v1", "LastModified": at(-3), "IsLatest": False, "Size": 1, "ETag": '"e"'}],
            "DeleteMarkers": [{"Key": "k", "VersionId": "m1", "LastModified": at(-3), "IsLatest": True}],
        }
    ]
    [(key, merged)] = list(keys_with_entries(pages))
    assert [e.version_id for e in merged] == ["m1", "v1"]
    plan = decide(key, merged, T)
    assert plan.action == "unchanged" and plan.as_of is not None and plan.as_of.version_id == "m1"


def test_keys_straddling_pages_are_yielded_once_and_whole() -> None:
    def v(key: str, vid: str, s: int, latest: bool = False) -> dict:
        return {"Key": key, "VersionId": vid, "LastModified": at(s), "IsLatest": latest, "Size": 1, "ETag": f'"{vid}"'}

    def m(key: str, vid: str, s: int, latest: bool = False) -> dict:
        return {"Key": key, "VersionId": vid, "LastModified": at(s), "IsLatest": latest}

    pages = [
        {"Versions": [v("a", "a2", 5, True), v("a", "a1", -5), v("b", "b3", 9)], "DeleteMarkers": [m("b", "bm", 10, True)]},
        {"Versions": [v("b", "b1", -1)]},
        {"Versions": [], "DeleteMarkers": []},
        {"Versions": [v("c", "c1", -1, True)]},
    ]
    out = {k: [e.version_id for e in entries] for k, entries in keys_with_entries(pages)}
    assert out == {"a": ["a2", "a1"], "b": ["bm", "b3", "b1"], "c": ["c1"]}
    assert list(dict(keys_with_entries(pages))) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-11-08T10:00:00", "has no timezone"),
        ("2025-11-08", "has no timezone"),
        ("soon", "is invalid"),
        ("2025-11-08T25:00:00Z", "is invalid"),
        ("2999-01-01T00:00:00+00:00", "is in the future"),
    ],
)
def test_parse_as_of_refuses(text: str, message: str) -> None:
    with pytest.raises(FileRestoreError, match=message):
        parse_as_of(text)


def test_parse_as_of_accepts_zones() -> None:
    assert parse_as_of("2025-11-08T12:00:00+02:00") == T
    assert parse_as_of("2025-11-08T10:00:00Z") == T


def test_only_a_tie_in_the_second_that_decides_t_needs_s3s_own_order() -> None:
    from rentaliq.ops.file_restore_plan import tied_at_t

    assert tied_at_t([marker("m1", -3), version("v1", -3)], T)
    assert not tied_at_t([version("v3", 4), version("v2", 4), version("v1", -3)], T)  # both after T: irrelevant
    assert not tied_at_t([version("v2", 4, latest=True)], T)
