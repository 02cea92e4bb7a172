"""Turn `--target` into a Target, starting the local cloud when it is the target and not yet running."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from rentaliq.deploy.target import NotLoopback, Target
from rentaliq.environments import EnvironmentSpec


class TargetName(StrEnum):
    local = "local"
    aws = "aws"


TargetOpt = Annotated[TargetName, typer.Option("--target", help="local: the embedded local cloud; aws: your AWS credentials")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="AWS profile (with --target aws)")]


def resolve(target: TargetName, spec: EnvironmentSpec, profile: str | None = None, *, start: bool = True) -> Target:
    from rentaliq.cli.output import fail

    if target is TargetName.aws:
        from botocore.exceptions import BotoCoreError

        try:
            return Target.aws(spec.region, profile)
        except BotoCoreError as error:  # e.g. an unknown --profile
            fail(str(error))
    from rentaliq.local.cloud import LocalCloud, LocalCloudError
    from rentaliq.local.postgres import PostgresNotInstalled, find_pg_bin

    try:
        find_pg_bin()  # the local cloud's databases are real PostgreSQL 15 servers
        cloud = LocalCloud()
        if start and not cloud.status().running:
            from rentaliq.cli.output import err_console

            with err_console.status("starting the local cloud"):
                cloud.start()
        return Target.local(cloud.endpoint_url, spec.region, cloud.state_dir)
    except (PostgresNotInstalled, LocalCloudError, NotLoopback) as error:
        fail(str(error))
    except OSError as error:  # an unusable RENTALIQ_HOME: not a directory, not writable
        from rentaliq.local.cloud import HOME_ENV, default_state_dir

        fail(f"cannot use the local cloud's state directory {default_state_dir()}: {error.strerror or error}; "
             f"set {HOME_ENV} to a writable directory")
