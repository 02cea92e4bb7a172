"""The local CA on real PostgreSQL 15 servers: every server's certificate verifies with ``verify-full``
against the state dir's CA, names its own endpoint, and nothing else verifies.

One engine root (one CA) is shared by the module; each test makes the instances it needs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509

from rentaliq.local.postgres import Endpoint, PostgresEngine, self_signed_cert
from rentaliq.local.postgres.ca import CA_DIR, CA_KEY_FILE
from rentaliq.local.postgres.config import CONF_FILE
from tests.postgres_dirs import postgres_top

pytestmark = pytest.mark.functional

MASTER = "app_master"
PASSWORD = "tls-Pa55word"


@pytest.fixture(scope="module")
def engine() -> Iterator[PostgresEngine]:
    with postgres_top("pgtls") as top:
        yield PostgresEngine(top / "postgres")


def connect(endpoint: Endpoint, **tls: Any) -> psycopg.Connection:
    params: dict[str, Any] = {"host": endpoint.host, "port": endpoint.port, "user": MASTER, "password": PASSWORD, "dbname": "postgres", **tls}
    return psycopg.connect(connect_timeout=5, autocommit=True, **params)


def make(engine: PostgresEngine, instance_id: str) -> Endpoint:
    return engine.create(instance_id, master_username=MASTER, master_password=PASSWORD, dbname=None)


def test_verify_full_with_the_ca_alone_and_the_certificate_names_the_instance(engine: PostgresEngine) -> None:
    endpoint = make(engine, "tls-a")
    ca = engine.ca_bundle_path
    with connect(endpoint, sslmode="verify-full", sslrootcert=str(ca)) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    # By its own name too (hostaddr reaches the server, host is what the certificate must name).
    with connect(endpoint, host="tls-a", hostaddr=endpoint.host, sslmode="verify-full", sslrootcert=str(ca)):
        pass
    server = x509.load_pem_x509_certificate((engine.root_dir / "tls-a" / "data" / "server.crt").read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.read_bytes())
    assert server.issuer == ca_cert.subject != server.subject
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "tls-a" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert oct((engine.root_dir / CA_DIR / CA_KEY_FILE).stat().st_mode & 0o777) == "0o600"


def test_a_client_without_the_ca_is_refused(engine: PostgresEngine, tmp_path: Path) -> None:
    endpoint = make(engine, "tls-a")
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(self_signed_cert("not-our-ca")[0])
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(endpoint, sslmode="verify-full", sslrootcert=str(stranger))


def test_a_wrong_host_name_is_refused(engine: PostgresEngine) -> None:
    endpoint = make(engine, "tls-a")
    make(engine, "tls-b")
    with pytest.raises(psycopg.OperationalError, match='does not match host name "tls-b"'):
        connect(endpoint, host="tls-b", hostaddr=endpoint.host, sslmode="verify-full", sslrootcert=str(engine.ca_bundle_path))


def test_one_ca_per_state_dir_shared_by_every_server_and_kept_across_engines(engine: PostgresEngine) -> None:
    make(engine, "tls-a")
    before = engine.ca_bundle_path.read_bytes()
    again = PostgresEngine(engine.root_dir)  # a restarted local cloud
    assert again.ca_bundle_path.read_bytes() == before
    endpoint_b = make(again, "tls-b")
    with connect(endpoint_b, sslmode="verify-full", sslrootcert=str(engine.ca_bundle_path)):
        pass


def test_an_old_self_signed_certificate_is_reissued_from_the_ca_on_start(engine: PostgresEngine) -> None:
    endpoint = make(engine, "tls-old")
    engine.stop("tls-old")
    inst = engine.root_dir / "tls-old"
    cert_pem, key_pem = self_signed_cert("tls-old")  # what every instance of an older state dir holds
    for path, data in ((inst / "data" / "server.crt", cert_pem), (inst / "data" / "server.key", key_pem), (inst / "server.crt", cert_pem)):
        path.write_bytes(data)
        shutil.chown(path, *_owner(inst / "data"))
    PostgresEngine(engine.root_dir).start("tls-old")  # a local cloud started on the old state dir
    with connect(endpoint, sslmode="verify-full", sslrootcert=str(engine.ca_bundle_path)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # The instance's public copy (certificate + CA) verifies too: it is what the engine's admin connection uses.
    with connect(endpoint, sslmode="verify-full", sslrootcert=str(engine.tls_cert_path("tls-old"))):
        pass
    engine.delete("tls-old")


def test_a_replica_and_a_renamed_instance_get_certificates_with_their_own_names(engine: PostgresEngine) -> None:
    source = make(engine, "tls-src")
    replica = engine.create_replica("tls-replica", "tls-src", force_ssl=True)
    ca = str(engine.ca_bundle_path)
    with connect(replica, host="tls-replica", hostaddr=replica.host, sslmode="verify-full", sslrootcert=ca) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        connect(replica, host="tls-src", hostaddr=replica.host, sslmode="verify-full", sslrootcert=ca)
    # The replica itself verifies its primary (streaming replication is a client too), and streams.
    conf = (engine.root_dir / "tls-replica" / "data" / CONF_FILE).read_text(encoding="utf-8")
    assert f"sslmode=verify-full sslrootcert={ca}" in conf
    with connect(source, sslmode="verify-full", sslrootcert=ca) as primary:
        primary.execute("CREATE DATABASE streamed")  # the master may create databases, not tables in postgres' public
    with connect(source, dbname="streamed", sslmode="verify-full", sslrootcert=ca) as primary:
        primary.execute("CREATE TABLE rows (v text)")
        primary.execute("INSERT INTO rows VALUES ('over verified TLS')")
    deadline = time.monotonic() + 20
    while True:
        try:
            with connect(replica, dbname="streamed", sslmode="verify-full", sslrootcert=ca) as conn:
                if conn.execute("SELECT to_regclass('rows') IS NOT NULL").fetchone() == (True,):
                    if rows := conn.execute("SELECT v FROM rows").fetchall():
                        assert rows == [("over verified TLS",)]
                        break
        except psycopg.OperationalError as error:  # the database itself has not been replayed yet
            assert "does not exist" in str(error), error
        assert time.monotonic() < deadline, "the replica never received the primary's rows"
        time.sleep(0.2)
    engine.delete("tls-replica")
    renamed = engine.rename("tls-src", "tls-renamed")
    with connect(renamed, host="tls-renamed", hostaddr=renamed.host, sslmode="verify-full", sslrootcert=ca):
        pass
    engine.delete("tls-renamed")


def _owner(path: Path) -> tuple[str, str]:
    import grp
    import pwd

    st = path.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def test_a_snapshot_restore_gets_a_certificate_with_its_own_name(engine: PostgresEngine) -> None:
    make(engine, "tls-snap-src")
    snapshot = engine.root_dir.parent / "snapshots" / "tls-snap-1"
    snapshot.parent.mkdir(exist_ok=True)
    engine.snapshot("tls-snap-src", snapshot)
    restored = engine.restore_snapshot("tls-snap-restored", snapshot, force_ssl=True)
    ca = str(engine.ca_bundle_path)
    with connect(restored, host="tls-snap-restored", hostaddr=restored.host, sslmode="verify-full", sslrootcert=ca) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        connect(restored, host="tls-snap-src", hostaddr=restored.host, sslmode="verify-full", sslrootcert=ca)
    engine.delete("tls-snap-restored")
    engine.delete("tls-snap-src")


def test_a_reissue_cut_short_by_a_crash_is_redone_on_the_next_start(engine: PostgresEngine) -> None:
    """A kill -9 between the atomic writes of install_certificate leaves a new certificate beside the old key;
    the next start must not serve (or fail on) that pair."""
    from rentaliq.local.postgres.ca import ensure_ca, issue_server_cert

    endpoint = make(engine, "tls-crash")
    engine.stop("tls-crash")
    data = engine.root_dir / "tls-crash" / "data"
    new_cert, _ = issue_server_cert(ensure_ca(engine.root_dir), "tls-crash")  # its key was never written
    (data / "server.crt").write_bytes(new_cert)
    PostgresEngine(engine.root_dir).start("tls-crash")
    with connect(endpoint, sslmode="verify-full", sslrootcert=str(engine.ca_bundle_path)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    engine.delete("tls-crash")
