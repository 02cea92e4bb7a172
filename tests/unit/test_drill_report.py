"""The DR drill's verdict: both targets and the data, each able to fail it on its own."""

from __future__ import annotations

import pytest

from rentaliq.ops.drill import DrillReport
from rentaliq.ops.drill_compare import TableCheck, TableSum

SAME = TableCheck(("public", "listings"), TableSum(3, "abc"), TableSum(3, "abc"))


def report(**changes) -> DrillReport:
    base = DrillReport("qa", "local", "rentaliq-qa-drill-1", "d1", rpo_target_seconds=3600, rto_target_seconds=14400)
    values = {"rpo_seconds": 1.0, "restorable_lag_max_seconds": 30.0, "rto_seconds": 5.0, "tables": [SAME], "markers_missing_before_restore_point": 0}
    for key, value in {**values, **changes}.items():
        setattr(base, key, value)
    return base


def test_a_healthy_drill_passes() -> None:
    assert report().ok


@pytest.mark.parametrize(
    "changes",
    [
        {"rpo_seconds": 3600.0},
        {"rpo_seconds": None},
        {"rpo_is_lower_bound": True},
        {"restorable_lag_max_seconds": 4000.0},
        {"rto_seconds": 14400.0},
        {"rto_seconds": None},
        {"tables": []},
        {"tables": [TableCheck(("public", "listings"), TableSum(3, "abc"), TableSum(3, "abd"))]},
        {"tables": [TableCheck(("public", "listings"), TableSum(3, "abc"), None)]},
        {"markers_missing_before_restore_point": 2},
        {"markers_missing_before_restore_point": None},
        {"problems": ["rentaliq-qa-drill-1 was not deleted"]},
    ],
    ids=[
        "rpo-at-target",
        "rpo-unmeasured",
        "rpo-lower-bound",
        "lag",
        "rto-at-target",
        "rto-unmeasured",
        "no-tables",
        "checksum",
        "missing",
        "markers",
        "markers-unchecked",
        "cleanup",
    ],
)
def test_each_miss_fails_the_drill(changes) -> None:
    assert not report(**changes).ok


def test_the_json_report_holds_the_verdicts() -> None:
    data = report(rto_seconds=20000.0).to_dict()
    assert data["rpo_met"] is True and data["rto_met"] is False and data["data_verified"] is True and data["ok"] is False
    assert data["tables"] == [
        {"table": "public.listings", "scope": "all rows", "source": {"rows": 3, "checksum": "abc"}, "restored": {"rows": 3, "checksum": "abc"}, "match": True}
    ]
