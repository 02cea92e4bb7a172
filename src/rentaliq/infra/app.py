"""Build the CDK app for some environments and synthesize it; also the `cdk.json` entry point."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App

from rentaliq import _jsii_node  # noqa: F401  (before aws_cdk)
from rentaliq.environments import EnvironmentSpec, load_specs
from rentaliq.infra.compliance import add_compliance_packs
from rentaliq.infra.stack import RentalIQStack

# Feature flags pinned here (not only in cdk.json) so `rentaliq synth` and `npx aws-cdk synth` agree.
FEATURE_FLAGS = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-rds:databaseProxyUniqueResourceName": True,
    "@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": False,
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
    "@aws-cdk/aws-rds:preventRenderingDeprecatedCredentials": True,
    "@aws-cdk/aws-secretsmanager:useAttachedSecretResourcePolicyForSecretTargetAttachments": True,
}

DEFAULT_OUTDIR = Path("cdk.out")


@dataclass(frozen=True)
class SynthResult:
    spec: EnvironmentSpec
    template_path: Path
    resource_count: int
    seconds: float

    @property
    def template(self) -> dict[str, Any]:
        template: dict[str, Any] = json.loads(self.template_path.read_text())
        return template


def build_app(specs: list[EnvironmentSpec], outdir: Path | None = None, *, nag: bool = True) -> App:
    app = App(outdir=str(outdir) if outdir else None, context=FEATURE_FLAGS, analytics_reporting=False)
    for spec in specs:
        RentalIQStack(app, spec=spec)
    if nag:
        add_compliance_packs(app)
    return app


def synthesize(specs: list[EnvironmentSpec], outdir: Path = DEFAULT_OUTDIR, *, nag: bool = True) -> list[SynthResult]:
    """Synthesize every given stack into ``outdir`` in one app (one jsii start-up, one nag run)."""
    started = time.perf_counter()
    app = build_app(specs, outdir, nag=nag)
    assembly = app.synth()
    seconds = time.perf_counter() - started
    results = []
    for spec in specs:
        artifact = assembly.get_stack_by_name(spec.stack_name)
        path = Path(assembly.directory) / artifact.template_file
        template = json.loads(path.read_text())
        results.append(SynthResult(spec, path, len(template.get("Resources", {})), seconds))
    return results


def main() -> None:
    """`cdk.json` runs this: the CDK CLI passes outdir and context through the environment."""
    app = build_app(load_specs())
    app.synth()


if __name__ == "__main__":
    main()
