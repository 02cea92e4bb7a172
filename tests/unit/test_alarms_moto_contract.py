"""What the alarm evaluator and SNS delivery patch or read in moto: fails loudly when a moto upgrade moves it."""

from __future__ import annotations

import importlib
import inspect

import pytest


@pytest.mark.parametrize(
    ("module", "attribute", "parameters"),
    [
        ("moto.cloudwatch.models", "CloudWatchBackend.put_metric_alarm", ["self", "name", "namespace", "metric_name"]),
        ("moto.cloudwatch.models", "CloudWatchBackend.delete_alarms", ["self", "alarm_names"]),
        ("moto.cloudwatch.models", "CloudWatchBackend.set_alarm_state", ["self", "alarm_name", "reason", "reason_data", "state_value"]),
        ("moto.sns.models", "SNSBackend.subscribe", ["self", "topic_arn", "endpoint", "protocol"]),
        ("moto.sns.models", "SNSBackend.unsubscribe", ["self", "subscription_arn"]),
        ("moto.sns.models", "SNSBackend._find_subscription", ["self", "topic_arn", "endpoint", "protocol"]),
        ("moto.sns.models", "Subscription.publish", ["self", "message", "message_id", "subject", "message_attributes"]),
        ("moto.sns.models", "Subscription._parse_message_structure", ["self", "message", "protocol"]),
        ("moto.sns.responses", "SNSResponse.subscribe", ["self"]),
        ("moto.sns.responses", "SNSResponse.confirm_subscription", ["self"]),
        ("moto.sns.responses", "SNSResponse.list_subscriptions", ["self"]),
        ("moto.sns.responses", "SNSResponse.list_subscriptions_by_topic", ["self"]),
    ],
)
def test_patched_functions_keep_their_signature(module, attribute, parameters):
    target = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    assert list(inspect.signature(target).parameters)[: len(parameters)] == parameters


def test_models_keep_the_attributes_we_read():
    from moto.cloudwatch.models import Alarm, CloudWatchBackend, MetricAggregatedDatum, MetricDatum
    from moto.sns.models import Topic

    backend = CloudWatchBackend("us-east-1", "123456789012")
    assert backend.metric_data == [] and backend.alarms == {}
    datum = MetricDatum("ns", "m", 1.0, [{"Name": "d", "Value": "v"}], None)
    assert (datum.namespace, datum.name, datum.value, datum.dimensions[0].name, datum.unit) == ("ns", "m", 1.0, "d", None)
    aggregated = MetricAggregatedDatum("ns", "m", 1.0, 3.0, 2.0, 4.0, [], None)
    assert (aggregated.min, aggregated.max, aggregated.sample_count, aggregated.sum) == (1.0, 3.0, 2.0, 4.0)
    for name in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "configuration_updated_timestamp"):
        assert name in inspect.getsource(Alarm.__init__)
    for name in ("subscriptions_pending", "subscriptions_confimed", "delivery_policy"):
        assert name in inspect.getsource(Topic.__init__)
