"""Turn `--target` into a Target, starting the local cloud when it is the target and not yet running."""

from __future__ import annotations

from rentaliq.cli.options import ProfileOpt, TargetChoice, TargetOpt
from rentaliq.deploy.target import NotLoopback, Target
from rentaliq.environments import EnvironmentSpec

__all__ = ["ProfileOpt", "TargetChoice", "TargetOpt", "resolve"]


def resolve(target: TargetChoice, spec: EnvironmentSpec, profile: str | None = None, *, start: bool = True) -> Target:
    from rentaliq.cli.output import fail

    if target is TargetChoice.aws:
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
        if not cloud.status().running:
            if not start:
                from rentaliq.deploy.commands import command

                fail(
                    f"the local cloud is not running at {cloud.endpoint_url}; start it with `{command('local', 'start')}` "
                    f"(or `{command('up', spec.name.value)}`)"
                )
            from rentaliq.cli.output import err_console

            with err_console.status("starting the local cloud"):
                cloud.start()
        return Target.local(cloud.endpoint_url, spec.region, cloud.state_dir)
    except (PostgresNotInstalled, LocalCloudError, NotLoopback) as error:
        fail(str(error))
    except OSError as error:  # an unusable RENTALIQ_HOME: not a directory, not writable
        fail(state_dir_problem(error))


def state_dir_problem(error: OSError) -> str:
    """One line for a RENTALIQ_HOME the local cloud cannot use."""
    import errno

    from rentaliq.local.cloud import HOME_ENV, default_state_dir

    where = default_state_dir()
    if error.errno in (errno.EEXIST, errno.ENOTDIR):
        why = "it (or a parent) is not a directory"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "it is not writable"
    else:
        why = error.strerror or str(error)
    return f"cannot use {where} as the local cloud's state directory: {why}; set {HOME_ENV} to a writable directory"
