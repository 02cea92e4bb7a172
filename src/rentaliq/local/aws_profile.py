"""An AWS config profile that points every `aws` command (v1 and v2) and every SDK at the local cloud.

`AWS_ENDPOINT_URL` alone is not enough: older clients (the awscli v1 the project installs among them) do not
read it, and a shell that still holds real credentials would then act on a real account. So `rentaliq local
env` also writes `$RENTALIQ_HOME/aws/config` with a `rentaliq-local` profile carrying `endpoint_url` for the
profile and for each service our stacks use (the `services` section), test credentials, and a credentials file
of its own, and exports AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE with it.

Even that does not hold for awscli v1 and RDS: in us-east-1 its `overridesslcommonname` customization sets
the endpoint to https://rds.amazonaws.com whenever `--endpoint-url` is not on the command line, whatever the
config says. So `local env` also puts `$RENTALIQ_HOME/aws/bin` first on PATH, holding an `aws` that runs the
real one with `--endpoint-url` (what `rentaliq aws` does too): every `aws` command in that shell and in the
scripts it starts reaches the local cloud.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

PROFILE = "rentaliq-local"
# Every service the stacks, the deployer, verify and the runtime call (botocore service ids, snake_case keys).
SERVICES = ("cloudformation", "s3", "s3api", "secretsmanager", "rds", "iam", "ec2", "cloudwatch", "logs", "kms", "sts", "sns", "ssm", "events")


def config_text(endpoint_url: str, region: str) -> str:
    services = "".join(f"{name} =\n  endpoint_url = {endpoint_url}\n" for name in SERVICES if name != "s3api")
    return (
        f"[profile {PROFILE}]\nregion = {region}\noutput = json\nendpoint_url = {endpoint_url}\nservices = {PROFILE}\n"
        f"aws_access_key_id = test\naws_secret_access_key = test\ns3 =\n  addressing_style = path\n\n"
        f"[services {PROFILE}]\n{services}"
    )


def real_aws(exclude: Path | None = None) -> str | None:
    """The aws CLI to wrap: the one installed beside this Python (the project's venv), else the first on PATH."""
    beside = Path(sys.executable).parent / "aws"
    if beside.is_file():
        return str(beside)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if not exclude or Path(p) != exclude)
    return shutil.which("aws", path=path)


def write(state_dir: Path, endpoint_url: str, region: str) -> tuple[Path, Path, Path]:
    """Write (atomically) the config and credentials files and the `aws` wrapper; returns (config, credentials, bin dir)."""
    folder = state_dir / "aws"
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    files = {
        folder / "config": config_text(endpoint_url, region),
        folder / "credentials": f"[{PROFILE}]\naws_access_key_id = test\naws_secret_access_key = test\n",
    }
    binary = real_aws(exclude=bin_dir)
    if binary:
        files[bin_dir / "aws"] = (
            f"#!/bin/sh\n# Written by `rentaliq local env`: every aws command goes to the local cloud.\n"
            f'exec {shlex.quote(binary)} --endpoint-url {shlex.quote(endpoint_url)} "$@"\n'
        )
    for path, text in files.items():
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(text)
        if path.name == "aws":
            partial.chmod(0o755)
        os.replace(partial, path)
    return folder / "config", folder / "credentials", bin_dir
