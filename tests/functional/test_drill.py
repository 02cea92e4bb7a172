"""`rentaliq drill ENV`: a point-in-time restore to a scratch instance, its data compared table by table, RPO and RTO
measured against the spec, the scratch instance deleted. On the deployed QA environment of the session's cloud.

The comparison itself is also tested on two real PostgreSQL databases (equal, reordered, tampered, missing).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rentaliq.deploy.db_tls import ca_bundle
from rentaliq.environments import load_spec
from rentaliq.ops.drill_compare import compare
from rentaliq.runtime import RuntimeConfig, Secrets
from rentaliq.runtime.database import connection_kwargs

SEED_ROWS = 1000


def qa_connect(target, dbname: str | None = None, **extra: Any) -> psycopg.Connection:
    creds = Secrets(RuntimeConfig(env="qa"), client=target.client("secretsmanager")).credentials()
    kwargs = connection_kwargs(creds, RuntimeConfig(env="qa", ca_bundle=ca_bundle(target)))
    if dbname:
        kwargs["dbname"] = dbname
    return psycopg.connect(**{**kwargs, **extra})


def drill_instances(target) -> list[str]:
    names = [i["DBInstanceIdentifier"] for i in target.client("rds").describe_db_instances()["DBInstances"]]
    return [n for n in names if n.startswith("rentaliq-qa-drill-")]


@pytest.fixture
def seeded_qa(deployed, target) -> Iterator[str]:
    """A user table with known rows in QA's database, as a service would have written it."""
    table = f"drill_fixture_{uuid.uuid4().hex[:8]}"
    with qa_connect(target) as conn:
        conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, city text NOT NULL, rent numeric(10, 2), listed timestamptz DEFAULT now())")
        conn.execute(f"INSERT INTO {table} (id, city, rent) SELECT g, 'city ' || g, g * 3.5 FROM generate_series(1, {SEED_ROWS}) AS g")
    yield table
    with qa_connect(target) as conn:
        conn.execute(f"DROP TABLE {table}")
    assert drill_instances(target) == []  # every drill deleted its scratch instance


def rentaliq(cloud_env, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, env=cloud_env, timeout=timeout)


@pytest.mark.slow
def test_drill_restores_every_table_and_meets_the_targets(seeded_qa, target, cloud_env) -> None:
    result = rentaliq(cloud_env, "drill", "qa", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0, json.dumps(report["problems"]) + result.stderr[-3000:]
    assert report["ok"] and report["data_verified"] and report["problems"] == []
    tables = {t["table"]: t for t in report["tables"]}
    fixture = tables[f"public.{seeded_qa}"]
    assert fixture["match"] and fixture["source"]["rows"] == fixture["restored"]["rows"] == SEED_ROWS
    markers = tables["public.rentaliq_drill_markers"]
    assert markers["match"] and markers["restored"]["rows"] >= 1
    assert all(t["match"] for t in report["tables"])
    assert report["newest_marker_restored"] is not None and report["markers_missing_before_restore_point"] == 0
    assert not report["rpo_is_lower_bound"] and 0 <= report["rpo_seconds"] < report["rpo_target_seconds"] == 3600
    assert 0 <= report["restorable_lag_max_seconds"] < 3600 and report["rpo_met"]
    assert 0 < report["rto_seconds"] < report["rto_target_seconds"] == 4 * 3600
    assert report["tls"].startswith("TLSv1")
    assert report["cleanup"] == "deleted" and report["markers_written"] >= 2
    assert report["scratch_instance"].startswith("rentaliq-qa-drill-")


@pytest.mark.slow
def test_a_tampered_restore_fails_the_drill(seeded_qa, target) -> None:
    """The library's hook changes the restored data before the comparison: the drill must see it, name it, fail."""
    from rentaliq.ops.drill import run_drill

    def tamper(instance: dict[str, Any]) -> None:
        endpoint = instance["Endpoint"]
        with qa_connect(target, host=endpoint["Address"], port=endpoint["Port"]) as conn:
            conn.execute(f"UPDATE {seeded_qa} SET city = 'elsewhere' WHERE id = 7")

    report = run_drill(target, load_spec("qa"), after_restore=tamper)
    assert not report.ok and not report.data_verified
    assert f"public.{seeded_qa} (all rows): same {SEED_ROWS} rows counted, different contents (checksum)" in report.problems
    assert report.cleanup == "deleted"


@pytest.mark.slow
def test_data_a_restore_cannot_bring_back_fails_the_drill_with_exit_1(seeded_qa, target, cloud_env) -> None:
    """An UNLOGGED table is not in the WAL, so a point-in-time restore brings it back empty (on AWS too): the drill
    must name it and exit 1, while the logged tables still match."""
    unlogged = f"{seeded_qa}_cache"
    with qa_connect(target) as conn:
        conn.execute(f"CREATE UNLOGGED TABLE {unlogged} (id integer PRIMARY KEY, payload text)")
        conn.execute(f"INSERT INTO {unlogged} SELECT g, 'cached ' || g FROM generate_series(1, 100) g")
    try:
        result = rentaliq(cloud_env, "drill", "qa")
    finally:
        with qa_connect(target) as conn:
            conn.execute(f"DROP TABLE {unlogged}")
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert f"✗ public.{unlogged} (all rows): 0 rows restored, 100 in the source" in result.stdout
    assert f"✓ public.{seeded_qa} " in result.stdout
    assert "drill FAILED" in result.stdout and ": deleted" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("env", ["qa", "prod"])
def test_an_interrupted_drill_deletes_its_scratch_instance(deployed, target, env) -> None:
    """Ctrl-C once the scratch instance exists (raised from the library's hook): it is deleted, the interrupt goes on.

    The scratch instance sits where the env's database does: same subnet group, security groups, parameter group;
    in PROD, whose database has deletion protection, the scratch instance is deleted all the same.
    """
    from rentaliq.ops.drill import run_drill

    rds = target.client("rds")
    source = rds.describe_db_instances(DBInstanceIdentifier=f"rentaliq-{env}-db")["DBInstances"][0]
    made: list[dict[str, Any]] = []
    progress: list[str] = []

    def interrupt(instance: dict[str, Any]) -> None:
        made.append(instance)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_drill(target, load_spec(env), after_restore=interrupt, on_progress=progress.append)
    [scratch] = made
    name = scratch["DBInstanceIdentifier"]
    assert name.startswith(f"rentaliq-{env}-drill-")
    assert scratch["DBSubnetGroup"]["DBSubnetGroupName"] == source["DBSubnetGroup"]["DBSubnetGroupName"]
    assert {g["VpcSecurityGroupId"] for g in scratch["VpcSecurityGroups"]} == {g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]}
    assert scratch["DBParameterGroups"][0]["DBParameterGroupName"] == source["DBParameterGroups"][0]["DBParameterGroupName"]
    assert scratch["DBInstanceClass"] == source["DBInstanceClass"]
    assert {"Key": "Purpose", "Value": "dr-drill"} in scratch.get("TagList", [])
    assert progress[-2:] == [f"deleting {name} (no final snapshot; Ctrl-C waits for it)", f"{name}: deleted"]
    assert [i for i in rds.describe_db_instances()["DBInstances"] if "-drill-" in i["DBInstanceIdentifier"]] == []


@pytest.mark.slow
def test_ctrl_c_on_the_cli_leaves_no_scratch_instance(seeded_qa, target, cloud_env) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "rentaliq.cli", "drill", "qa"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cloud_env)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if " restoring rentaliq-qa-db " in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, "".join(seen) + err
    assert err.rstrip().endswith("error: interrupted (the scratch instance was cleaned up, see above)"), err
    if "deleting rentaliq-qa-drill-" in err:  # the restore had been requested when the signal came
        assert ": deleted\n" in err or ": not created\n" in err, err
    assert drill_instances(target) == []


def test_aws_needs_yes(cloud_env) -> None:
    result = rentaliq(cloud_env, "drill", "prod", "--target", "aws")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: refusing to run a DR drill of prod on AWS without --yes: it creates a scratch RDS instance (billed while it exists, deleted at the end)"
    )


def test_targets_come_from_the_spec() -> None:
    minutes = {env: (load_spec(env).recovery.rpo_minutes, load_spec(env).recovery.rto_minutes) for env in ("lab", "qa", "prod")}
    assert minutes == {"lab": (24 * 60, 8 * 60), "qa": (60, 4 * 60), "prod": (5, 60)}


# ------------------------------------------------------------------ the comparison, on two real databases


@pytest.fixture
def two_databases(deployed, target) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    names = [f"drill_cmp_{uuid.uuid4().hex[:8]}_{side}" for side in ("a", "b")]
    with qa_connect(target, autocommit=True) as admin:
        for name in names:
            admin.execute(f"CREATE DATABASE {name}")
    conns = [qa_connect(target, dbname=name, autocommit=True) for name in names]
    schema = """
        CREATE SCHEMA billing;
        CREATE TABLE listings (id integer PRIMARY KEY, city text, tags text[], meta jsonb);
        CREATE TABLE billing.invoices (id bigint, amount numeric(12, 2), paid boolean);
    """
    for conn in conns:
        conn.execute(schema)
    yield conns[0], conns[1]
    for conn in conns:
        conn.close()
    with qa_connect(target, autocommit=True) as admin:
        for name in names:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def fill(conn: psycopg.Connection, order: str = "ASC") -> None:
    conn.execute(
        f"INSERT INTO listings SELECT g, 'city ' || g, ARRAY['a', g::text], jsonb_build_object('n', g) FROM generate_series(1, 500) g ORDER BY g {order}"
    )
    conn.execute(f"INSERT INTO billing.invoices SELECT g % 50, g * 1.25, g % 2 = 0 FROM generate_series(1, 300) g ORDER BY g {order}")


def problems(a: psycopg.Connection, b: psycopg.Connection) -> list[str]:
    return [c.problem for c in compare(a, b) if c.problem]


def test_equal_data_in_another_physical_order_matches(two_databases) -> None:
    a, b = two_databases
    fill(a, "ASC")
    fill(b, "DESC")
    checks = compare(a, b)
    assert [c.name for c in checks] == ["billing.invoices", "public.listings"]
    assert all(c.match for c in checks) and checks[1].source.rows == 500


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("UPDATE listings SET city = 'x' WHERE id = 250", "public.listings (all rows): same 500 rows counted, different contents (checksum)"),
        (
            "DELETE FROM billing.invoices WHERE ctid = (SELECT min(ctid) FROM billing.invoices)",
            "billing.invoices (all rows): 299 rows restored, 300 in the source",
        ),
        ("INSERT INTO billing.invoices SELECT * FROM billing.invoices LIMIT 1", "billing.invoices (all rows): 301 rows restored, 300 in the source"),
        ("DROP TABLE listings", "public.listings: missing from the restore"),
        ("CREATE TABLE extra (id int)", "public.extra: only in the restore"),
        ("UPDATE listings SET meta = NULL WHERE id = 1", "public.listings (all rows): same 500 rows counted, different contents (checksum)"),
    ],
    ids=["changed-value", "lost-row", "duplicated-row", "missing-table", "extra-table", "null"],
)
def test_any_difference_is_a_named_mismatch(two_databases, change: str, expected: str) -> None:
    source, restored = two_databases
    fill(source)
    fill(restored)
    assert problems(source, restored) == []
    restored.execute(change)
    assert problems(source, restored) == [expected]
