"""CloudWatch alarms that evaluate, change state, keep history and run their actions on the local cloud.

moto stores alarms but never evaluates them (every alarm stays OK, "Unchecked: Initial alarm creation"). Modules:

``evaluation``  the pure rules: statistics, M of N, missing-data treatment, AWS's reason strings
``series``      an incremental index of moto's datapoints by metric (a pass never scans per alarm)
``history``     alarm history items and DescribeAlarmHistory
``actions``     the SNS alarm message and the Action history items
``lifecycle``   moto patches: INSUFFICIENT_DATA at creation, updates that keep state, SetAlarmState, deletions
``evaluator``   the background pass (``RENTALIQ_LOCAL_ALARM_SECONDS``, default 60)
"""

from __future__ import annotations

from rentaliq.local.alarms.evaluator import Evaluator
from rentaliq.local.periodic import OneRunning

_evaluator = OneRunning(Evaluator)


def install() -> None:
    """Patch moto's CloudWatch (idempotent); before any state is restored."""
    from rentaliq.local.alarms import lifecycle

    lifecycle.install()


def start() -> None:
    """Start the evaluator (after the restore)."""
    _evaluator.start()


def stop() -> None:
    _evaluator.stop()
