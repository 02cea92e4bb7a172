"""RDS storage autoscaling on the local cloud: a tiny allocation filled with real rows grows, by AWS's rule.

The allocation is 1 GiB (below RDS's minimum of 20, which the local cloud does not enforce) so that ~1 GB of
real rows brings FreeStorageSpace under 10 %; the low-storage window and the 6-hour cool-down are shortened
through the environment of a cloud of the test's own.
"""

from __future__ import annotations

import time

import pytest

from tests.clouds import private_cloud
from tests.functional.test_metrics import aws, now, series
from tests.functional.test_rds_recovery import connect, create, wait_for
from tests.functional.test_rds_recovery_crash import client

pytestmark = [pytest.mark.functional, pytest.mark.slow]


def fill(rds, name: str, rows: int = 900_000) -> None:
    """~1.05 GB of real rows (1 kB each, stored uncompressed; unlogged, so no WAL doubles it), checkpointed to disk."""
    with connect(rds, name) as conn:
        conn.execute(f"CREATE UNLOGGED TABLE ballast AS SELECT g AS id, repeat('x', 1000) AS pad FROM generate_series(1, {rows}) g")
        conn.execute("CHECKPOINT")


def allocated(rds, name: str) -> int:
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["AllocatedStorage"]


def test_a_full_allocation_grows_with_its_event_and_only_with_max_allocated_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALIQ_LOCAL_METRICS_SECONDS", "1")
    monkeypatch.setenv("RENTALIQ_LOCAL_STORAGE_AUTOSCALING_SECONDS", "3")
    with private_cloud("autoscaling") as cloud:
        rds = client(cloud)
        create(rds, "grows", retention=0, AllocatedStorage=1, MaxAllocatedStorage=30)
        create(rds, "fixed", retention=0, AllocatedStorage=1)
        wait_for(rds, "grows")
        wait_for(rds, "fixed")
        for name in ("grows", "fixed"):
            fill(rds, name)
        started = now()

        deadline = time.monotonic() + 60
        while allocated(rds, "grows") == 1:
            assert time.monotonic() < deadline, "the allocation never grew"
            time.sleep(0.5)
        # AWS's increment: the greatest of 10 GiB, 10 % of 1 GiB, and the predicted 7-hour growth, capped at 30 GiB.
        assert allocated(rds, "grows") in range(11, 31)
        events = rds.describe_events(SourceIdentifier="grows", SourceType="db-instance")["Events"]
        assert "Applying autoscaling-initiated modification to allocated storage." in [e["Message"] for e in events]
        time.sleep(5)  # the other instance was as full for as long
        assert allocated(rds, "fixed") == 1
        free = series(aws(cloud, "cloudwatch"), "AWS/RDS", "FreeStorageSpace", {"DBInstanceIdentifier": "fixed"}, started, stat="Maximum")
        assert len(free) >= 5 and all(p["Maximum"] <= 0.1 * 1024**3 for p in free[-5:])  # full, for longer than the window
        assert "autoscaling" not in " ".join(e["Message"] for e in rds.describe_events(SourceIdentifier="fixed", SourceType="db-instance")["Events"])
        # The rows are all there, and the 6-hour rule holds: no second growth now.
        grown = allocated(rds, "grows")
        with connect(rds, "grows") as conn:
            assert conn.execute("SELECT count(*) FROM ballast").fetchone()[0] == 900_000
        time.sleep(4)
        assert allocated(rds, "grows") == grown
