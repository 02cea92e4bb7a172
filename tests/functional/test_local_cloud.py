"""The local cloud: a moto server whose state survives restarts and kill -9.

Every test runs its own server(s) on free loopback ports in temporary state dirs (never
the default port) and stops them in teardown, also when the test fails.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rentaliq.local.cloud import IncompatibleStateError, LocalCloud, PortInUseError
from tests.ports import free_port

pytestmark = pytest.mark.functional

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
AWS_CLI = Path(sys.executable).with_name("aws")


@pytest.fixture(scope="module")
def own_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    c = LocalCloud(state_dir=tmp_path_factory.mktemp("cloud"), port=free_port())
    try:
        c.start(timeout=60)
        yield c
    finally:
        c.stop()


def _wait_dead(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # our child: reap it, or it stays a zombie (still "alive" for kill(0))
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive")


def populate(c: LocalCloud, tag: str) -> dict:
    """Create one of everything the restart tests check; return what must come back."""
    from boto3.s3.transfer import TransferConfig

    sm, s3, iam, ec2 = c.client("secretsmanager"), c.client("s3"), c.client("iam"), c.client("ec2")
    out: dict = {"tag": tag}

    secret = sm.create_secret(Name=f"rentaliq/{tag}/db", SecretString=json.dumps({"password": "first"}))
    second = sm.put_secret_value(SecretId=secret["ARN"], SecretString=json.dumps({"password": "second"}))
    out["secret"] = {
        "arn": secret["ARN"],
        "versions": {secret["VersionId"]: "first", second["VersionId"]: "second"},
        "current": second["VersionId"],
    }

    bucket = f"rentaliq-{tag}-data"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "env", "Value": tag}]})
    v1 = s3.put_object(Bucket=bucket, Key="report.json", Body=b'{"v": 1}')["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="report.json", Body=b'{"v": 2}')["VersionId"]
    big = os.urandom(20 * MiB)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    import io

    s3.upload_fileobj(io.BytesIO(big), bucket, "big.bin", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    out["s3"] = {
        "bucket": bucket,
        "versions": {v1: b'{"v": 1}', v2: b'{"v": 2}'},
        "big_sha": hashlib.sha256(big).hexdigest(),
        "big_etag": head["ETag"],
        "big_version": head["VersionId"],
    }
    assert head["ETag"].endswith('-3"'), head["ETag"]  # really a 3-part multipart upload

    role = iam.create_role(
        RoleName=f"rentaliq-{tag}-app",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
            }
        ),
    )["Role"]
    out["role"] = {"name": role["RoleName"], "id": role["RoleId"], "arn": role["Arn"]}

    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName=f"rentaliq-{tag}-db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.42.0.0/16"}]}]
    )
    out["ec2"] = {"vpc": vpc, "sg": sg}
    return out


def verify(c: LocalCloud, expected: dict) -> None:
    sm, s3, iam, ec2 = c.client("secretsmanager"), c.client("s3"), c.client("iam"), c.client("ec2")

    sec = expected["secret"]
    assert sm.describe_secret(SecretId=sec["arn"])["ARN"] == sec["arn"]
    listed = sm.list_secret_version_ids(SecretId=sec["arn"])["Versions"]
    assert {v["VersionId"] for v in listed} == set(sec["versions"])
    for version_id, password in sec["versions"].items():
        value = sm.get_secret_value(SecretId=sec["arn"], VersionId=version_id)
        assert value["ARN"] == sec["arn"]
        assert json.loads(value["SecretString"]) == {"password": password}
    current = sm.get_secret_value(SecretId=sec["arn"])
    assert current["VersionId"] == sec["current"] and "AWSCURRENT" in current["VersionStages"]

    exp = expected["s3"]
    bucket = exp["bucket"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "env", "Value": expected["tag"]}]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="report.json")["Versions"]
    assert {v["VersionId"] for v in versions} == set(exp["versions"])
    for version_id, body in exp["versions"].items():
        assert s3.get_object(Bucket=bucket, Key="report.json", VersionId=version_id)["Body"].read() == body
    obj = s3.get_object(Bucket=bucket, Key="big.bin")
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == exp["big_sha"]
    assert obj["ETag"] == exp["big_etag"] and obj["VersionId"] == exp["big_version"]
    part1 = s3.head_object(Bucket=bucket, Key="big.bin", PartNumber=1)
    assert part1["ContentLength"] == 8 * MiB and part1["PartsCount"] == 3

    role = iam.get_role(RoleName=expected["role"]["name"])["Role"]
    assert (role["RoleId"], role["Arn"]) == (expected["role"]["id"], expected["role"]["arn"])

    vpcs = ec2.describe_vpcs(VpcIds=[expected["ec2"]["vpc"]])["Vpcs"]
    assert vpcs[0]["CidrBlock"] == "10.42.0.0/16"
    sg = ec2.describe_security_groups(GroupIds=[expected["ec2"]["sg"]])["SecurityGroups"][0]
    assert sg["VpcId"] == expected["ec2"]["vpc"]
    assert [p["FromPort"] for p in sg["IpPermissions"]] == [5432]


def test_stop_then_start_restores_state(own_cloud: LocalCloud) -> None:
    expected = populate(own_cloud, "stop")
    first_pid = own_cloud.status().pid
    own_cloud.stop()
    assert not own_cloud.status().running
    own_cloud.stop()  # idempotent
    status = own_cloud.start(timeout=60)
    assert status.running and status.pid != first_pid
    assert own_cloud.start().pid == status.pid  # idempotent
    verify(own_cloud, expected)


def test_kill_9_loses_nothing_that_was_acknowledged(own_cloud: LocalCloud) -> None:
    expected = populate(own_cloud, "kill")
    s3 = own_cloud.client("s3")

    def put(i: int) -> str:
        return s3.put_object(Bucket=expected["s3"]["bucket"], Key=f"many/{i:03d}", Body=f"body {i}".encode())["VersionId"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # concurrent requests: group commit
        many = dict(enumerate(pool.map(put, range(40))))
    pid = own_cloud.status().pid
    assert pid
    os.kill(pid, signal.SIGKILL)  # right after the last acknowledgement
    _wait_dead(pid)
    assert not own_cloud.status().running
    own_cloud.start(timeout=60)
    verify(own_cloud, expected)
    for i, version_id in many.items():
        got = s3.get_object(Bucket=expected["s3"]["bucket"], Key=f"many/{i:03d}")
        assert (got["VersionId"], got["Body"].read()) == (version_id, f"body {i}".encode())


def test_export_lines_configure_the_aws_cli(own_cloud: LocalCloud, tmp_path: Path) -> None:
    s3, sm = own_cloud.client("s3"), own_cloud.client("secretsmanager")
    s3.create_bucket(Bucket="rentaliq-cli-check")
    sm.create_secret(Name="rentaliq/cli-check", SecretString="x")
    lines = own_cloud.export_lines()
    assert "test" in lines and own_cloud.endpoint_url in lines
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path)  # no ~/.aws config or credentials can leak in
    script = f'set -eu\neval "$1"\n"{AWS_CLI}" s3 ls\n"{AWS_CLI}" secretsmanager list-secrets --output json\n'
    done = subprocess.run(["bash", "-c", script, "bash", lines], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rentaliq-cli-check" in done.stdout
    assert "rentaliq/cli-check" in done.stdout


def test_port_taken_by_another_process_is_named(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        c = LocalCloud(state_dir=tmp_path / "state", port=port)
        try:
            with pytest.raises(PortInUseError) as err:
                c.start(timeout=30)
            message = str(err.value)
            assert str(port) in message and "RENTALIQ_LOCAL_PORT=<port>" in message
            assert not c.status().running
        finally:
            c.stop()


def test_incompatible_state_format_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "FORMAT").write_text(json.dumps({"format": "rentaliq-local-cloud-state", "version": 999}))
    c = LocalCloud(state_dir=state, port=free_port())
    try:
        with pytest.raises(IncompatibleStateError) as err:
            c.start(timeout=30)
        message = str(err.value)
        assert "\n" not in message and "v999" in message and str(state) in message
        assert not c.status().running
    finally:
        c.stop()
    # the server itself refuses too, with the same one-line error and no traceback
    done = subprocess.run(
        [sys.executable, "-m", "rentaliq.local.server", "--port", str(free_port()), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])},
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "v999" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_server_refuses_non_loopback_bind(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rentaliq.local.server", "--host", "0.0.0.0", "--port", str(free_port()), "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])},
    )
    assert done.returncode == 4 and "--allow-remote" in done.stderr
