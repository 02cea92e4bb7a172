"""The local servers' configuration files, rendered without a server (rentaliq.local.postgres.config).

The functional engine tests prove a real server accepts these files; these pin down what they say:
loopback only, TLS on, passwords over TCP, plaintext rejected exactly when ``rds.force_ssl`` is on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rentaliq.local.postgres.config import (
    CONF_FILE,
    CONF_INCLUDE,
    SOCKET_PATH_MAX,
    Recovery,
    archive_command,
    conf_quote,
    render_conf,
    render_hba,
    render_ident,
    socket_dir,
)


def settings(text: str) -> dict[str, str]:
    """``name = value`` lines of a postgresql.conf fragment (comments dropped)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): value.split("#", 1)[0].strip() for name, value in pairs}


def rules(hba: str) -> list[list[str]]:
    return [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain", "'plain'"),
        ("it's", "'it''s'"),
        ("C:\\dir", "'C:\\\\dir'"),
        ("", "''"),
    ],
)
def test_conf_quote_escapes_quotes_and_backslashes(raw: str, quoted: str) -> None:
    assert conf_quote(raw) == quoted


def test_conf_listens_on_loopback_only_with_tls_scram_and_pg_stat_statements(tmp_path: Path) -> None:
    conf = settings(render_conf(24567, tmp_path / "run"))
    assert conf == {
        "listen_addresses": "'127.0.0.1'",
        "port": "24567",
        "unix_socket_directories": f"'{tmp_path / 'run'}'",
        "ssl": "on",
        "ssl_cert_file": "'server.crt'",
        "ssl_key_file": "'server.key'",
        "password_encryption": "'scram-sha-256'",
        "shared_preload_libraries": "'pg_stat_statements'",
        "timezone": "'UTC'",
        "log_timezone": "'UTC'",
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": "'/bin/true'",
        "max_wal_senders": "10",
        "wal_keep_size": "'256MB'",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
    }


def test_archive_command_copies_atomically_and_never_overwrites(tmp_path: Path) -> None:
    archive = tmp_path / "it's archive"
    command = settings(render_conf(24567, None, archive_dir=archive))["archive_command"]
    assert command.startswith("'if test -f ")
    assert "then cmp -s %p" in command and "else cp %p" in command and "&& mv " in command
    assert command == conf_quote(archive_command(archive))


def test_point_in_time_recovery_replays_the_archive_up_to_the_target_then_promotes(tmp_path: Path) -> None:
    conf = settings(render_conf(24567, None, recovery=Recovery(archive_dir=tmp_path, target_time="2026-11-30T01:02:03+00:00")))
    assert conf["restore_command"] == conf_quote(f"cp {tmp_path}/%f %p")
    assert conf["recovery_target_time"] == "'2026-11-30T01:02:03+00:00'"
    assert conf["recovery_target_inclusive"] == "on"
    assert conf["recovery_target_action"] == "'promote'"
    assert "primary_conninfo" not in conf


def test_max_connections_follows_the_instance_class_when_given() -> None:
    assert settings(render_conf(24567, None, max_connections=112))["max_connections"] == "112"
    assert "max_connections" not in settings(render_conf(24567, None))


def test_conf_without_a_socket_directory_disables_unix_sockets() -> None:
    assert settings(render_conf(24567, None))["unix_socket_directories"] == "''"


def test_conf_quotes_a_socket_directory_with_a_quote_in_it(tmp_path: Path) -> None:
    odd = tmp_path / "o'brien" / "run"
    assert settings(render_conf(24567, odd))["unix_socket_directories"] == conf_quote(str(odd))


def test_include_line_names_the_rendered_file() -> None:
    assert f"include '{CONF_FILE}'" in CONF_INCLUDE.splitlines()


def test_socket_dir_is_dropped_when_the_socket_path_would_not_fit_sun_path(tmp_path: Path) -> None:
    assert socket_dir(tmp_path, 24567) == tmp_path / "run"
    suffix = len("/run/.s.PGSQL.24567")
    fits = Path("/" + "d" * (SOCKET_PATH_MAX - suffix - 1))
    too_long = Path("/" + "d" * (SOCKET_PATH_MAX - suffix))
    assert len(str(fits / "run" / ".s.PGSQL.24567")) == SOCKET_PATH_MAX
    assert socket_dir(fits, 24567) == fits / "run"
    assert socket_dir(too_long, 24567) is None


def test_hba_with_force_ssl_rejects_plaintext_before_accepting_tls() -> None:
    assert rules(render_hba(True)) == [
        ["local", "all", "rdsadmin", "peer", "map=rentaliq_admin"],
        ["local", "all", "all", "scram-sha-256"],
        ["hostnossl", "all", "all", "127.0.0.1/32", "reject"],
        ["hostssl", "all", "all", "127.0.0.1/32", "scram-sha-256"],
        ["hostssl", "replication", "rdsadmin", "127.0.0.1/32", "scram-sha-256"],
    ]


def test_hba_without_force_ssl_accepts_both_but_only_with_a_password() -> None:
    tcp = [rule for rule in rules(render_hba(False)) if rule[0] != "local"]
    assert tcp == [
        ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"],
        ["hostssl", "replication", "rdsadmin", "127.0.0.1/32", "scram-sha-256"],
    ]


@pytest.mark.parametrize("force_ssl", [True, False])
def test_hba_never_trusts_and_says_which_setting_wrote_it(force_ssl: bool) -> None:
    hba = render_hba(force_ssl)
    assert all(rule[-1] not in {"trust", "password", "md5"} for rule in rules(hba))
    assert hba.splitlines()[0].endswith(f"(force_ssl={force_ssl}); edits are lost.")


def test_ident_maps_only_the_server_user_to_rdsadmin() -> None:
    assert rules(render_ident("postgres")) == [["rentaliq_admin", "postgres", "rdsadmin"]]
