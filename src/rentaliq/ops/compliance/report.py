"""One environment's compliance report: per framework the spec claims, the controls in place and the gaps, from its spec.

Pure: reads the spec and the tables in :mod:`rentaliq.ops.compliance.controls`, calls no AWS API and synthesizes
nothing, so it answers in a moment. The CLI (`rentaliq compliance ENV`) prints it; ``to_dict`` is its JSON form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rentaliq import naming
from rentaliq.environments import EnvironmentSpec
from rentaliq.ops.compliance.controls import CONTROLS, FRAMEWORKS, GAPS, Control, Framework, Gap, VerifyCheck


def verify_names(env: str) -> dict[str, str]:
    """The values of the placeholders in :class:`VerifyCheck` names, for one environment."""
    return {
        "files_bucket": naming.files_bucket(env),
        "access_logs_bucket": naming.access_logs_bucket(),
        "rds_sg": naming.rds_security_group(env),
        "app_sg": naming.app_security_group(env),
        "read_secrets_policy": naming.read_secrets_policy(env),
        "alerts_topic": naming.alerts_topic(env),
        "credentials": naming.secret_path(env, "db/credentials"),
        "connection_string": naming.secret_path(env, "db/connection-string"),
        "api_keys": naming.secret_path(env, "api/keys"),
        "env_key": naming.env_key_alias(env),
        "trail": naming.trail(env),
    }


def verify_check_name(check: VerifyCheck, env: str) -> str:
    """The check's name as ``rentaliq verify ENV`` shows it."""
    return check.name.format(**verify_names(env))


@dataclass(frozen=True)
class FrameworkReport:
    framework: Framework
    in_place: tuple[Control, ...]
    off_by_spec: tuple[Control, ...]  # controls the framework wants that this environment's spec turns off
    gaps: tuple[Gap, ...]


@dataclass(frozen=True)
class ComplianceReport:
    spec: EnvironmentSpec
    frameworks: tuple[FrameworkReport, ...]

    @property
    def env(self) -> str:
        return self.spec.name.value

    def to_dict(self) -> dict[str, Any]:
        env = self.env
        return {
            "environment": env,
            "stack": self.spec.stack_name,
            "frameworks": [
                {
                    "name": f.framework.name,
                    "spec_claim": f.framework.spec_claim,
                    "nag_pack": f.framework.nag_pack,
                    "note": f.framework.note,
                    "controls": [_control(c, env) for c in f.in_place],
                    "gaps": [*(_off(c, env) for c in f.off_by_spec), *({"key": g.key, "missing": g.missing, "configuration": g.configuration} for g in f.gaps)],
                }
                for f in self.frameworks
            ],
        }


def _off(control: Control, env: str) -> dict[str, str]:
    """A control this environment's spec turns off, as a gap: what is off, why, and the setting that turns it on."""
    return {"key": control.key, "missing": f"{control.title}: off in {env.upper()} by its spec ({control.off_because}).", "configuration": control.setting}


def _control(control: Control, env: str) -> dict[str, Any]:
    return {
        "key": control.key,
        "title": control.title,
        "constructs": [f"{naming.stack_name(env)}/{path}" for path in control.constructs],
        "nag_rules": list(control.nag_rules),
        "verify_checks": [{"area": v.area, "name": verify_check_name(v, env)} for v in control.verify],
    }


def compliance_report(spec: EnvironmentSpec) -> ComplianceReport:
    """The report for one environment: what is built and on, what the spec turns off here, and what remains to do."""
    reports = []
    for framework in FRAMEWORKS:
        wanted = [c for c in CONTROLS if framework.name in c.frameworks]
        reports.append(
            FrameworkReport(
                framework,
                tuple(c for c in wanted if c.required(spec)),
                tuple(c for c in wanted if not c.required(spec) and not c.covered_by_gap),
                tuple(g for g in GAPS if framework.name in g.frameworks and g.open(spec)),
            )
        )
    return ComplianceReport(spec, tuple(reports))
