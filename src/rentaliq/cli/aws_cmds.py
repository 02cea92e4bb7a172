"""`rentaliq aws ...`: the aws CLI, always against the local cloud (like LocalStack's `awslocal`).

Runs `aws --endpoint-url <local cloud> ...` with the local profile and test credentials in its environment,
so not one call can reach a real account, whatever credentials the shell holds.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer

from rentaliq.cli.output import fail
from rentaliq.deploy.commands import command


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}, add_help_option=False)(aws)


def _aws_binary() -> str | None:
    beside = Path(sys.executable).parent / "aws"
    return str(beside) if beside.is_file() else shutil.which("aws")


def aws(ctx: typer.Context) -> None:
    """Run the aws CLI against the local cloud: `rentaliq aws s3 ls`, `rentaliq aws rds describe-db-instances`."""
    from rentaliq.deploy.target import NotLoopback, require_loopback
    from rentaliq.local.cloud import LocalCloud

    binary = _aws_binary()
    if binary is None:
        fail("the aws CLI is not installed; install it with: pip install awscli")
    cloud = LocalCloud()
    try:
        require_loopback(cloud.endpoint_url)
    except NotLoopback as error:
        fail(str(error))
    if not cloud.status().running:
        fail(f"the local cloud is not running at {cloud.endpoint_url}; start it with `{command('local', 'start')}`")
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")}
    env.update(cloud.env())
    sys.stdout.flush()
    os.execve(binary, [binary, "--endpoint-url", cloud.endpoint_url, *ctx.args], env)
