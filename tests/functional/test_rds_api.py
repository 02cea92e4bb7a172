"""RDS instances created through the RDS API (not CloudFormation) get a real PostgreSQL server too."""

from __future__ import annotations

import psycopg
import pytest

from tests.functional.rds_client import SMALL_POSTGRES, recording_client

PASSWORD = "first-Pass_word1"


def connect(db, password, **overrides):
    params = dict(
        host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], user="appadmin", password=password, dbname="appdb", sslmode="require", connect_timeout=5
    )
    return psycopg.connect(**{**params, **overrides})


def describe(rds, name="api-made-db"):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


@pytest.fixture(scope="module")
def rds(cloud):
    client, server_errors = recording_client(cloud)  # any HTTP 5xx fails the module
    client.create_db_instance(DBInstanceIdentifier="api-made-db", MasterUserPassword=PASSWORD, **SMALL_POSTGRES)
    yield client
    try:
        client.delete_db_instance(DBInstanceIdentifier="api-made-db", SkipFinalSnapshot=True)
    except client.exceptions.DBInstanceNotFoundFault:
        pass
    assert not server_errors, server_errors


def test_instance_made_through_the_api_is_a_real_server(rds):
    db = describe(rds)
    assert db["Endpoint"]["Address"] == "127.0.0.1"
    with connect(db, PASSWORD) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == ("appdb", "appadmin")


def test_stop_and_start_act_on_the_server(rds):
    db = describe(rds)
    with connect(db, PASSWORD) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('row')")
    rds.stop_db_instance(DBInstanceIdentifier="api-made-db")
    with pytest.raises(psycopg.OperationalError):
        connect(db, PASSWORD).close()
    rds.start_db_instance(DBInstanceIdentifier="api-made-db")
    with connect(describe(rds), PASSWORD) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("row",)]


def test_reboot_keeps_serving(rds):
    rds.reboot_db_instance(DBInstanceIdentifier="api-made-db")
    with connect(describe(rds), PASSWORD) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_changing_the_master_password_acts_on_the_server(rds):
    new_password = "n3w@:/?#%[]pass"
    rds.modify_db_instance(DBInstanceIdentifier="api-made-db", MasterUserPassword=new_password, ApplyImmediately=True)
    db = describe(rds)
    with pytest.raises(psycopg.OperationalError):
        connect(db, PASSWORD).close()
    with connect(db, new_password) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_delete_removes_the_server(rds):
    db = describe(rds)
    rds.delete_db_instance(DBInstanceIdentifier="api-made-db", SkipFinalSnapshot=True)
    with pytest.raises(psycopg.OperationalError):
        connect(db, "n3w@:/?#%[]pass").close()
    assert not rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ["api-made-db"]}])["DBInstances"]
