"""The audit's results: one Check per audited value, its status, and the record the areas add them to.

Owns what a check is (area, name, expected, actual, status, detail), the summary counts, VerifyError, and
:class:`Recorder`, the one list every area appends to, so that a check's status is decided in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rentaliq.ops.verify.documents import tag_map

Status = Literal["pass", "fail", "not-checkable", "deviation"]
PASS: Status = "pass"
FAIL: Status = "fail"
NOT_CHECKABLE: Status = "not-checkable"
DEVIATION: Status = "deviation"  # differs from the spec on purpose, by an operator's recorded action (a restore's cutover)

# Areas, in the order the audit reports them.
STACK, RDS, S3, SECRETS, IAM, EC2, CLOUDWATCH, ALERTS = "Stack", "RDS", "S3", "Secrets", "IAM", "EC2", "CloudWatch", "Alerts"
BUDGET = "Budget"
SCHEDULER = "Scheduler"
AUDIT = "Audit"
KMS = "KMS"
AREAS = (STACK, RDS, S3, SECRETS, IAM, EC2, CLOUDWATCH, ALERTS, BUDGET, SCHEDULER, AUDIT, KMS)

# Tags a stack of ours sets; a resource carrying one of these that the spec doesn't expect fails its tag check.
TAG_KEYS_WE_MANAGE = ("Project", "Environment", "ManagedBy", "Owner", "Application", "Critical", "CostCenter", "Backup")


@dataclass(frozen=True)
class Check:
    area: str
    name: str
    expected: Any
    actual: Any
    status: Status
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(checks: list[Check]) -> dict[str, int]:
    return {
        "passed": sum(c.status == PASS for c in checks),
        "failed": sum(c.status == FAIL for c in checks),
        "not_checkable": sum(c.status == NOT_CHECKABLE for c in checks),
        "deviations": sum(c.status == DEVIATION for c in checks),
    }


class VerifyError(RuntimeError):
    """The audit could not talk to the target at all (no endpoint, no credentials); nothing was checked."""


@dataclass
class Recorder:
    """The checks so far, in the order they were made."""

    checks: list[Check] = field(default_factory=list)

    def add(self, area: str, name: str, expected: Any, actual: Any, ok: bool | None = None, detail: str = "") -> bool:
        """Record a live value against the spec's; passes when equal unless ``ok`` says otherwise. Returns whether it passed."""
        passed = (expected == actual) if ok is None else ok
        self.checks.append(Check(area, name, expected, actual, PASS if passed else FAIL, detail))
        return passed

    def not_checkable(self, area: str, name: str, expected: Any, reason: str) -> None:
        self.checks.append(Check(area, name, expected, None, NOT_CHECKABLE, reason))

    def deviation(self, area: str, name: str, expected: Any, actual: Any, detail: str) -> None:
        """A deliberate, recorded difference: shown on its own line and counted apart, neither a pass nor a failure."""
        self.checks.append(Check(area, name, expected, actual, DEVIATION, detail))

    def tags(self, area: str, name: str, expected: dict[str, str], tag_list: list[dict[str, str]] | None) -> None:
        """Every expected tag with its value, and none of the tags we manage beyond those."""
        actual = tag_map(tag_list)
        shown = {k: v for k, v in actual.items() if k in expected or k in TAG_KEYS_WE_MANAGE}
        wrong = sorted(k for k in expected if actual.get(k) != expected[k])
        extra = sorted(k for k in shown if k not in expected)
        detail = "; ".join(
            part for part in (f"missing or different: {', '.join(wrong)}" if wrong else "", f"unexpected: {', '.join(extra)}" if extra else "") if part
        )
        self.add(area, f"{name} tags", dict(sorted(expected.items())), dict(sorted(shown.items())), ok=not wrong and not extra, detail=detail)

    def in_area_order(self) -> list[Check]:
        """Grouped by area in AREAS order; the order within an area is kept."""
        order = {area: i for i, area in enumerate(AREAS)}
        return sorted(self.checks, key=lambda c: order.get(c.area, len(order)))
