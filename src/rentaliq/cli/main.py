"""The `rentaliq` command: a thin layer over the library; one module per command group."""

from __future__ import annotations

import sys

import typer

from rentaliq.cli import (
    alerts_cmds,
    aws_cmds,
    compliance_cmds,
    cost_cmds,
    deploy_cmds,
    drill_cmds,
    files_cmds,
    infra_cmds,
    monitoring_cmds,
    recovery_cmds,
    rotate_cmds,
    smoke_cmds,
    verify_cmds,
    wake_cmds,
)
from rentaliq.cli.local_cmds import local_app
from rentaliq.cli.output import fail

app = typer.Typer(
    name="rentaliq",
    help="RentalIQ infrastructure: environment specs, CDK stacks, the local cloud and operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
infra_cmds.register(app)
deploy_cmds.register(app)
verify_cmds.register(app)
smoke_cmds.register(app)
recovery_cmds.register(app)
aws_cmds.register(app)
files_cmds.register(app)
drill_cmds.register(app)
monitoring_cmds.register(app)
alerts_cmds.register(app)
cost_cmds.register(app)
compliance_cmds.register(app)
wake_cmds.register(app)
rotate_cmds.register(app)
app.add_typer(local_app, name="local")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted")
    except Exception as error:
        from rentaliq.cli.output import known_error

        if known_error(error):
            fail(str(error))
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.parsers import ResponseParserError

        if isinstance(error, (ClientError, BotoCoreError, ResponseParserError)):  # an AWS answer nobody above expected: still one line
            fail(" ".join(str(error).split())[:500])
        raise
    sys.exit(0)
