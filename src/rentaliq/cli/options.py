"""Options and arguments shared by the command groups, defined once (Typer `Annotated` aliases)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rentaliq.environments import ENV_NAMES


class TargetChoice(StrEnum):
    local = "local"
    aws = "aws"


TargetOpt = Annotated[TargetChoice, typer.Option("--target", help="local: the embedded local cloud; aws: your AWS credentials")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="AWS profile (with --target aws)")]
EnvArg = Annotated[str, typer.Argument(help=f"Environment: {', '.join(ENV_NAMES)}", show_default=False)]
OptionalEnvArg = Annotated[str | None, typer.Argument(help=f"Environment: {', '.join(ENV_NAMES)}", show_default=False)]
EnvArgs = Annotated[list[str] | None, typer.Argument(help=f"Environments ({', '.join(ENV_NAMES)}); default: all", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
OutdirOpt = Annotated[Path, typer.Option(help="Cloud assembly directory")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing")]
ConfirmProdOpt = Annotated[bool, typer.Option("--confirm-prod", help="Required for production actions")]
AllowReplacementOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-replacement",
        metavar="ENV-RESOURCE",
        help="Let the deploy replace this stateful resource (its data is lost): ENV-database, ENV-files, prod-access-logs, "
        "ENV-db-credentials, ENV-db-connection-string, ENV-api-keys, ENV-s3-config. Repeatable.",
    ),
]
RestoreRetainedOpt = Annotated[
    bool,
    typer.Option("--restore-retained", help="Bring back what a previous destroy retained: secrets, buckets (imported), the database from its final snapshot"),
]
# `rentaliq top` and `rentaliq report` (monitoring views)
OnceOpt = Annotated[bool, typer.Option("--once", help="Print one frame and exit (with --json: the snapshot as JSON)")]
IntervalOpt = Annotated[float, typer.Option("--interval", metavar="SECONDS", help="Seconds between refreshes of the live view")]
MinutesOpt = Annotated[int, typer.Option("--minutes", metavar="N", help="Window of metrics shown: the last N minutes")]
PointsOpt = Annotated[int, typer.Option("--points", metavar="N", help="Datapoints in each sparkline")]
PeriodOpt = Annotated[int | None, typer.Option("--period", metavar="SECONDS", help="Seconds per datapoint, a multiple of 60 (default: from the window)")]
HtmlFileOpt = Annotated[Path, typer.Option("--html", metavar="FILE", help="Write the report to this HTML file", show_default=False)]
HoursOpt = Annotated[int, typer.Option("--hours", metavar="N", help="Plot the last N hours")]

# `rentaliq cost`
AllEnvsOpt = Annotated[bool, typer.Option("--all", help="Every environment (the default when none is named)")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="Price in this region instead of each environment's own")]
UsageOpt = Annotated[
    list[str] | None,
    typer.Option("--usage", metavar="KEY=VALUE", help="Override a usage assumption of the spec's usage table, e.g. nat_gb=50. Repeatable."),
]
