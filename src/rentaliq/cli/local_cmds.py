"""`rentaliq local start|stop|status|env|fire-schedule`: the embedded local cloud."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from rentaliq.cli.options import JsonOpt
from rentaliq.cli.output import console, fail, print_json

if TYPE_CHECKING:
    from rentaliq.local.cloud import LocalCloud

T = TypeVar("T")

local_app = typer.Typer(help="The local cloud: a moto server on 127.0.0.1 plus real PostgreSQL servers.", no_args_is_help=True)


def _cloud() -> LocalCloud:
    from rentaliq.local.cloud import LocalCloud

    return LocalCloud()


def _guard(action: Callable[[], T]) -> T:
    from rentaliq.local.cloud import LocalCloudError

    try:
        return action()
    except LocalCloudError as error:
        fail(str(error))
    except OSError as error:  # an unusable RENTALIQ_HOME
        from rentaliq.cli.targets import state_dir_problem

        fail(state_dir_problem(error))


@local_app.command()
def start() -> None:
    """Start the local cloud in the background (no-op when running)."""
    cloud = _cloud()
    with console.status("starting the local cloud"):
        status = _guard(cloud.start)
    console.print(f"[green]✓[/] local cloud running at {status.endpoint} (pid {status.pid}, state {status.state_dir})", highlight=False)


@local_app.command()
def stop() -> None:
    """Stop the local cloud and its PostgreSQL servers; all state stays on disk."""
    cloud = _cloud()
    _guard(cloud.stop)
    console.print("[green]✓[/] local cloud stopped", highlight=False)


@local_app.command()
def status(json_out: JsonOpt = False) -> None:
    """Whether the local cloud runs, and where."""
    state = _guard(_cloud().status)
    if json_out:
        print_json({"running": state.running, "pid": state.pid, "endpoint": state.endpoint, "state_dir": str(state.state_dir)})
        return
    word = "[green]running[/]" if state.running else "[yellow]stopped[/]"
    console.print(f"local cloud {word}  endpoint {state.endpoint}  state {state.state_dir}" + (f"  pid {state.pid}" if state.pid else ""), highlight=False)


@local_app.command()
def env() -> None:
    """Print shell lines: eval "$(rentaliq local env)" points every aws CLI (v1, v2), boto3 and SDK at the local cloud.

    They export a generated profile with per-service endpoints and test credentials, and put an `aws` wrapper
    (which adds --endpoint-url) first on PATH: awscli v1 ignores the profile's endpoint for RDS in us-east-1.
    They also export the local CA, which signs every local database's certificate (the part AWS's RDS CA bundle
    plays), for the usual clients: PGSSLROOTCERT (libpq: psql, psycopg, the runtime SDK) and NODE_EXTRA_CA_CERTS
    (Node, e.g. `pg`), so that the connection-string secret's DATABASE_URL (sslmode=verify-full) works as it is.
    """
    cloud = _cloud()
    typer.echo(_guard(cloud.export_lines) + _guard(lambda: _tls_lines(cloud)), nl=False)


def _tls_lines(cloud: LocalCloud) -> str:
    import shlex

    from rentaliq.local.postgres.ca import local_cloud_ca

    bundle = shlex.quote(str(local_cloud_ca(cloud.state_dir).path))
    return f"export PGSSLROOTCERT={bundle}\nexport NODE_EXTRA_CA_CERTS={bundle}\n"


@local_app.command("fire-schedule")
def fire_schedule(
    name: Annotated[str, typer.Argument(help="The schedule's name, e.g. rentaliq-lab-db-stop")],
    group: Annotated[str, typer.Option("--group", help="Its schedule group")] = "default",
    json_out: JsonOpt = False,
) -> None:
    """Invoke an EventBridge Scheduler schedule's target now, as if its time had come (the local cloud only)."""
    from rentaliq.local.scheduler_calls import ControlCallError
    from rentaliq.local.scheduler_calls import fire_schedule as fire

    cloud = _cloud()
    if not _guard(cloud.status).running:
        fail(f"the local cloud is not running; start it with `rentaliq local start` (RENTALIQ_HOME={cloud.state_dir})")
    try:
        outcome = fire(cloud.endpoint_url, name, group)
    except ControlCallError as error:
        fail(f"schedule {name!r} in group {group!r}: {error.message}")
    if json_out:
        print_json(outcome)
    if outcome.get("Status") != "SUCCEEDED":
        fail(f"schedule {name}: the invocation of {outcome.get('Target')} failed: {outcome.get('ErrorCode')}: {outcome.get('ErrorMessage')}")
    if not json_out:
        console.print(
            f"[green]✓[/] {name} invoked {outcome.get('Target')} on {outcome.get('DBInstanceIdentifier')} ({outcome.get('DBInstanceStatus')})", highlight=False
        )
