"""Nothing escapes to AWS, errors are one line, and what `up` prints can be pasted as printed: through the real CLI."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_runs import one_line_error, rentaliq
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# One real aws v1 command per service the stacks, the deployer and verify use.
AWS_COMMANDS = [
    "cloudformation describe-stacks",
    "s3 ls",
    "s3api list-buckets",
    "secretsmanager list-secrets",
    "rds describe-db-instances",
    "rds describe-db-parameter-groups",
    "iam list-roles",
    "ec2 describe-vpcs",
    "cloudwatch describe-alarms",
    "logs describe-log-groups",
    "kms list-keys",
]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No AWS_* from the caller and an empty HOME: only what `local env` sets can point anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "COLUMNS"}
    return {**env, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **extra}


def test_every_aws_v1_command_reaches_the_local_cloud_after_local_env(cloud, tmp_path):
    env = clean_env(
        tmp_path,
        RENTALIQ_HOME=str(cloud.state_dir),
        RENTALIQ_LOCAL_PORT=str(cloud.port),
        AWS_ACCESS_KEY_ID="AKIAREALLOOKING",
        AWS_SECRET_ACCESS_KEY="real",
        AWS_SESSION_TOKEN="real-token",
    )
    exports = rentaliq(env, "local", "env")
    assert exports.returncode == 0, exports.stderr
    cloud.client("s3").create_bucket(Bucket="rentaliq-env-check")
    script = (
        "set -e\n"
        + f'eval "$({shlex.quote(sys.executable)} -m rentaliq.cli local env)"\n'
        + "aws --version\n"
        + "".join(f"echo '== {c}'; aws {c} --output json >/dev/null\n" for c in AWS_COMMANDS)
        + "aws s3 ls\n"
    )
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "aws-cli/1." in done.stdout + done.stderr  # the v1 CLI the project installs, which needs more than AWS_ENDPOINT_URL
    assert "rentaliq-env-check" in done.stdout
    for c in AWS_COMMANDS:
        assert f"== {c}" in done.stdout
    # and an SDK, with nothing but the environment
    sdk = "import boto3; print(len(boto3.client('rds').describe_db_instances()['DBInstances']), boto3.client('sts').get_caller_identity()['Account'])"
    done = subprocess.run(
        ["bash", "-c", f'eval "$({shlex.quote(sys.executable)} -m rentaliq.cli local env)"; {shlex.quote(sys.executable)} -c "{sdk}"'],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "123456789012"  # moto's account: the call stayed local


def test_rentaliq_aws_passes_through_to_the_local_cloud(cloud, tmp_path):
    env = clean_env(tmp_path, RENTALIQ_HOME=str(cloud.state_dir), RENTALIQ_LOCAL_PORT=str(cloud.port), AWS_PROFILE="production")
    cloud.client("secretsmanager").create_secret(Name="rentaliq/passthrough-check", SecretString="x")
    done = rentaliq(env, "aws", "secretsmanager", "describe-secret", "--secret-id", "rentaliq/passthrough-check")
    assert done.returncode == 0, done.stderr
    assert "rentaliq/passthrough-check" in done.stdout
    done = rentaliq(env, "aws", "rds", "describe-db-instances")  # awscli v1 would send this one to rds.amazonaws.com
    assert done.returncode == 0, done.stderr


def test_up_and_diff_name_the_program_holding_the_port(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        env = clean_env(tmp_path, RENTALIQ_HOME=str(tmp_path / "home"), RENTALIQ_LOCAL_PORT=str(other.getsockname()[1]))
        for command in (("up", "lab"), ("diff", "lab")):
            line = one_line_error(rentaliq(env, *command, "--outdir", str(tmp_path / "out")))
            assert f"port {other.getsockname()[1]} on 127.0.0.1 is already in use by another process" in line
            assert "RENTALIQ_LOCAL_PORT" in line


@pytest.mark.parametrize("home", ["a-file", "a-file/below", "/proc/rentaliq-home"])
def test_an_unusable_rentaliq_home_is_one_line(tmp_path, home):
    (tmp_path / "a-file").write_text("not a directory")
    path = tmp_path / home if not home.startswith("/") else Path(home)
    # A free port: a cloud someone runs on the default one would answer first (the port is checked before the home).
    env = clean_env(tmp_path, RENTALIQ_HOME=str(path), RENTALIQ_LOCAL_PORT=str(free_port()))
    for command in (("up", "lab"), ("local", "start"), ("local", "env")):
        line = one_line_error(rentaliq(env, *command))
        assert f"cannot use {path} as the local cloud's state directory" in line and "set RENTALIQ_HOME" in line


def test_the_cloud_dying_mid_up_is_one_line_naming_the_log(tmp_path, outdir):
    home = Path(tempfile_dir())
    env = clean_env(tmp_path, RENTALIQ_HOME=str(home), RENTALIQ_LOCAL_PORT=str(_free_port()))
    try:
        assert rentaliq(env, "local", "start").returncode == 0
        up = subprocess.Popen(
            [sys.executable, "-m", "rentaliq.cli", "up", "lab", "--outdir", str(outdir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "rentaliq-lab" not in _stack_names(env):
            time.sleep(0.1)
        os.kill(int((home / "server.pid").read_text()), signal.SIGKILL)
        out, err = up.communicate(timeout=300)
        line = one_line_error(subprocess.CompletedProcess(up.args, up.returncode, out, err))
        assert "the local cloud stopped during the operation" in line and f"see {home}/server.log" in line and "up lab` again" in line
    finally:
        rentaliq(env, "local", "stop")
        subprocess.run(["rm", "-rf", str(home)])


def tempfile_dir() -> str:
    import tempfile

    path = tempfile.mkdtemp(prefix="rentaliq-dying-", dir="/tmp")
    os.chmod(path, 0o755)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stack_names(env) -> str:
    done = subprocess.run(
        [
            str(VENV_BIN / "aws"),
            "--endpoint-url",
            f"http://127.0.0.1:{env['RENTALIQ_LOCAL_PORT']}",
            "cloudformation",
            "list-stacks",
            "--query",
            "StackSummaries[].StackName",
            "--output",
            "text",
        ],
        env={**env, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout


def test_up_output_is_never_wrapped_and_every_next_step_runs_as_printed(cloud, tmp_path, outdir):
    """No COLUMNS, stdout a pipe, `rentaliq` not on PATH: the lines stay whole and the commands work pasted."""
    env = clean_env(tmp_path, RENTALIQ_HOME=str(cloud.state_dir), RENTALIQ_LOCAL_PORT=str(cloud.port))
    up = subprocess.run([str(VENV_BIN / "rentaliq"), "up", "lab", "--outdir", str(outdir)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    database = next(line for line in lines if line.startswith("  database"))
    assert "PostgreSQL 15" in database and "TLS on" in database  # one line, not split at 80 columns
    assert next(line for line in lines if line.startswith("  secrets")).endswith("rentaliq/lab/s3/config")
    steps = [line.split("  # ")[0].strip() for line in lines[lines.index("  next steps:") + 1 :]]
    assert len(steps) == 4 and all(step.startswith(('eval "$(.venv/bin/rentaliq', ".venv/bin/rentaliq")) for step in steps), steps
    inputs = {"psql": "SELECT 'pasted-' || 41 + 1;\n"}
    for step in steps:
        script = step if not step.startswith("eval") else f"set -e\n{step}\naws s3 ls\n"
        kind = next((k for k in inputs if f" {k} " in f" {step} "), None)
        done = subprocess.run(["bash", "-c", script], env=env, cwd=ROOT, input=inputs.get(kind, ""), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (step, done.stdout, done.stderr)
        if kind == "psql":
            assert "pasted-42" in done.stdout
        if step.startswith("eval"):
            assert "rentaliq-lab-files" in done.stdout  # the aws CLI, in the shell `local env` set up, lists the local buckets
