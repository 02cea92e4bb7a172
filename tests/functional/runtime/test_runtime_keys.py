"""Object-key validation: every rule, its documented message, and that no request is made for a bad key."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from rentaliq.runtime import (
    MAX_KEY_BYTES,
    Files,
    InvalidObjectKey,
    validate_key,
    validate_prefix,
)
from rentaliq.runtime import keys as keys_mod

pytestmark = pytest.mark.functional


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", keys_mod.RULE_EMPTY),
        ("a/../b", keys_mod.RULE_DOTDOT),
        ("..", keys_mod.RULE_DOTDOT),
        ("a/..", keys_mod.RULE_DOTDOT),
        ("/etc/passwd", keys_mod.RULE_LEADING_SLASH),
        ("a\x00b", keys_mod.RULE_CONTROL),
        ("line\nbreak", keys_mod.RULE_CONTROL),
        ("tab\there", keys_mod.RULE_CONTROL),
        ("del\x7f", keys_mod.RULE_CONTROL),
        ("c1\x85", keys_mod.RULE_CONTROL),
        ("x" * (MAX_KEY_BYTES + 1), keys_mod.RULE_TOO_LONG),
        ("é" * 513, keys_mod.RULE_TOO_LONG),  # 513 characters, 1026 bytes: the limit counts bytes
        ("bad\ud800surrogate", keys_mod.RULE_ENCODING),
        (b"bytes/key", keys_mod.RULE_TYPE),
    ],
)
def test_each_rule_rejects_with_a_clear_message(key: object, rule: str) -> None:
    with pytest.raises(InvalidObjectKey) as info:
        validate_key(key)
    assert any(r.startswith(rule) for r in info.value.rules)
    message = str(info.value)
    assert message.startswith("invalid object key ")
    assert rule in message
    assert isinstance(info.value, ValueError)  # callers validating input can catch ValueError


def test_every_broken_rule_is_listed_at_once() -> None:
    with pytest.raises(InvalidObjectKey) as info:
        validate_key("/a/../b\x01")
    assert set(info.value.rules) == {keys_mod.RULE_LEADING_SLASH, keys_mod.RULE_DOTDOT, keys_mod.RULE_CONTROL}


def test_control_characters_are_escaped_and_long_keys_shortened_in_the_message() -> None:
    with pytest.raises(InvalidObjectKey) as info:
        validate_key("a\x1b[31mred")
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)
    with pytest.raises(InvalidObjectKey) as info:
        validate_key("k" * 5000)
    assert len(str(info.value)) < 250


@pytest.mark.parametrize(
    "key",
    ["a", "reports/2025/11/report.pdf", "a..b/c", "...", "a/./b", "dir/", "ünïcode/ключ.txt", "x" * MAX_KEY_BYTES, "é" * 512, "with space.txt"],
)
def test_reasonable_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


def test_prefix_may_be_empty_but_follows_the_other_rules() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("reports/") == "reports/"
    with pytest.raises(InvalidObjectKey):
        validate_prefix("../")


def test_files_reject_bad_keys_before_any_request(seeded_cloud, secrets) -> None:
    import boto3

    client = boto3.client("s3", region_name="eu-west-3")
    with Stubber(client):  # no responses queued: any request would raise
        files = Files(secrets, client=client)
        for call in (
            lambda: files.upload("../escape", b"x"),
            lambda: files.download("/abs"),
            lambda: files.delete(""),
            lambda: files.presigned_url("a\nb"),
            lambda: files.head("a/../b"),
            lambda: list(files.list("/")),
            lambda: files.list_versions(".."),
            lambda: files.restore_version("bad\x00", "v1"),
        ):
            with pytest.raises(InvalidObjectKey):
                call()
