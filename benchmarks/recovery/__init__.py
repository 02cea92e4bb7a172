"""Recovery benchmarks (issue 9 §3): snapshot, restore, point-in-time restore, replica lag, failover."""
