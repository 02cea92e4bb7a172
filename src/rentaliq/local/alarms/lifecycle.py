"""moto patches for an alarm's life as CloudWatch documents it: created in INSUFFICIENT_DATA, configuration
updates that keep the state, deletions, and every state change (evaluated or SetAlarmState) with its history and
its actions.

Each writes the history item AWS writes: ``Alarm "name" created|updated|deleted`` (ConfigurationUpdate),
``Alarm updated from OK to ALARM`` (StateUpdate), and through :mod:`.actions` one Action item per action.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.cloudwatch import responses as cw_responses
from moto.cloudwatch.exceptions import InvalidFormat, ResourceNotFound, ValidationError
from moto.core.responses import ActionResult

from rentaliq.local.alarms import actions, history, validation
from rentaliq.local.alarms.evaluation import INSUFFICIENT_DATA

INITIAL_REASON = "Unchecked: Initial alarm creation"
_installed = False


def configuration(alarm: Any) -> dict[str, Any]:
    """An alarm's configuration as CloudWatch's ConfigurationUpdate history data spells it."""
    config: dict[str, Any] = {
        "alarmName": alarm.name,
        "alarmArn": alarm.alarm_arn,
        "alarmDescription": alarm.description,
        "actionsEnabled": bool(alarm.actions_enabled),
        "oKActions": list(alarm.ok_actions or []),
        "alarmActions": list(alarm.alarm_actions or []),
        "insufficientDataActions": list(alarm.insufficient_data_actions or []),
        "metricName": alarm.metric_name,
        "namespace": alarm.namespace,
        "dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
        "period": alarm.period,
        "unit": alarm.unit,
        "evaluationPeriods": alarm.evaluation_periods,
        "datapointsToAlarm": alarm.datapoints_to_alarm,
        "threshold": alarm.threshold,
        "comparisonOperator": alarm.comparison_operator,
        "treatMissingData": alarm.treat_missing_data,
        "timestamp": history.iso_time(alarm.configuration_updated_timestamp),
    }
    if alarm.extended_statistic:
        config["extendedStatistic"] = alarm.extended_statistic
    else:
        config["statistic"] = alarm.statistic
    return {k: v for k, v in config.items() if v is not None}


def transition(backend: Any, alarm: Any, state: str, reason: str, reason_data: dict[str, Any] | str | None) -> None:
    """Move ``alarm`` to ``state``: history, and the new state's actions owed (``actions.deliver`` runs them)."""
    old_state, old_reason, old_data = alarm.state_value, alarm.state_reason, alarm.state_reason_data
    data_text = reason_data if isinstance(reason_data, str) or reason_data is None else json.dumps(reason_data, separators=(",", ":"))
    alarm.state_value, alarm.state_reason = state, reason
    alarm.state_reason_data = data_text
    alarm.state_updated_timestamp = history.now()
    old: dict[str, Any] = {"stateValue": old_state, "stateReason": old_reason}
    if old_data and old_data != "{}":
        old["stateReasonData"] = _json_or_text(old_data)
    new: dict[str, Any] = {"stateValue": state, "stateReason": reason}
    if data_text:
        new["stateReasonData"] = _json_or_text(data_text)
    history.record(
        backend,
        alarm.name,
        "StateUpdate",
        f"Alarm updated from {old_state} to {state}",
        {"version": "1.0", "oldState": old, "newState": new},
        when=alarm.state_updated_timestamp,
    )
    actions.enqueue(alarm, old_state)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def install() -> None:
    """Patch moto's CloudWatch backend and responses (idempotent)."""
    global _installed
    if _installed:
        return
    backend_cls = cw_models.CloudWatchBackend
    original_put = backend_cls.put_metric_alarm
    original_delete = backend_cls.delete_alarms

    signature = inspect.signature(original_put)

    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        validation.check(signature.bind(self, name, *args, **kwargs).arguments)
        existing = self.alarms.get(name)
        alarm = original_put(self, name, *args, **kwargs)
        kind = "CompositeAlarm" if alarm.rule is not None else "MetricAlarm"
        if existing is not None:
            # "When you update an existing alarm, its state is left unchanged" (PutMetricAlarm).
            alarm.state_value, alarm.state_reason = existing.state_value, existing.state_reason
            alarm.state_reason_data, alarm.state_updated_timestamp = existing.state_reason_data, existing.state_updated_timestamp
            data = {"type": "Update", "version": "1.0", "originalUpdatedAlarm": configuration(existing), "updatedAlarm": configuration(alarm)}
            history.record(self, name, "ConfigurationUpdate", f'Alarm "{name}" updated', data)
        else:
            alarm.state_value, alarm.state_reason, alarm.state_reason_data = INSUFFICIENT_DATA, INITIAL_REASON, None
            history.record(
                self, name, "ConfigurationUpdate", f'Alarm "{name}" created', {"type": "Create", "version": "1.0", "createdAlarm": configuration(alarm)}
            )
        history.items(self)[-1]["AlarmType"] = kind
        return alarm

    def delete_alarms(self: Any, alarm_names: list[str]) -> None:
        gone = [self.alarms[n] for n in alarm_names if n in self.alarms]
        original_delete(self, alarm_names)
        for alarm in gone:
            history.record(
                self,
                alarm.name,
                "ConfigurationUpdate",
                f'Alarm "{alarm.name}" deleted',
                {"type": "Delete", "version": "1.0", "deletedAlarm": configuration(alarm)},
            )

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        try:
            if reason_data is not None:
                json.loads(reason_data)
        except ValueError:
            raise InvalidFormat("Unknown") from None
        if alarm_name not in self.alarms:
            raise ResourceNotFound
        if state_value not in ("OK", "ALARM", "INSUFFICIENT_DATA"):
            raise ValidationError(
                "1 validation error detected: "
                f"Value '{state_value}' at 'stateValue' failed to satisfy constraint: "
                "Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]"
            )
        alarm = self.alarms[alarm_name]
        if alarm.state_value != state_value:
            transition(self, alarm, state_value, reason, reason_data)
            # Inside the request: the actions run now and are committed with it, before the answer.
            if actions.deliver(self):
                _mark_sns_dirty()

    def describe_alarm_history(self: Any) -> ActionResult:
        names = ("AlarmName", "AlarmTypes", "HistoryItemType", "StartDate", "EndDate", "MaxRecords", "NextToken", "ScanBy")
        params = {n: self._get_param(n) for n in names}
        return ActionResult(history.describe(self.cloudwatch_backend, params))

    backend_cls.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign]
    backend_cls.delete_alarms = delete_alarms  # type: ignore[method-assign]
    backend_cls.set_alarm_state = set_alarm_state  # type: ignore[method-assign]
    cw_responses.CloudWatchResponse.describe_alarm_history = describe_alarm_history  # type: ignore[attr-defined]
    _installed = True


def _mark_sns_dirty() -> None:
    """Inside a request (SetAlarmState) the middleware commits what is marked; SNS changed through the action."""
    from moto.sns.models import sns_backends

    from rentaliq.local import state

    current = state.current()
    if current is not None:
        current.mark_dirty(sns_backends)
