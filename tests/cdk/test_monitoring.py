"""Monitoring: essential alarms (DLQs, API 5xx, failed executions) by default; Lambda error alarms and the
dashboard (tokens, cost and timings by model) opt-in, so the default idle estimate stays <= $5/month."""

from __future__ import annotations

from typing import Any

import pytest

from quarry.adapters.cloudwatch_metrics import COST, FIRST_TOKEN_TIME, INPUT_TOKENS
from quarry.deployment.cost import PRICES, Estimate, LineItem, estimate
from stacks.monitoring import TTFT_METRIC
from tests.cdk.cdk_synth import Synth, flatten, logical_id

pytestmark = pytest.mark.cdk


def _item(items: list[LineItem], fragment: str) -> LineItem:
    [found] = [i for i in items if fragment in i.item]
    return found


def _alarms_by_metric(synth: Synth) -> tuple[list[dict[str, Any]], dict[str, int]]:
    alarms = [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]
    by_metric: dict[str, int] = {}
    for a in alarms:
        by_metric[a["MetricName"]] = by_metric.get(a["MetricName"], 0) + 1
    return alarms, by_metric


def test_default_keeps_only_the_essential_alarms_and_no_dashboard(default_synth: Synth) -> None:
    alarms, by_metric = _alarms_by_metric(default_synth)
    topic = logical_id(default_synth, default_synth.stack.monitoring.topic)
    assert all(a["AlarmActions"] == [{"Ref": topic}] for a in alarms)
    assert by_metric == {"ApproximateNumberOfMessagesVisible": 2, "5XXError": 1, "ExecutionsFailed": 2}
    dlq_alarms = [a for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    assert all(a["Threshold"] == 1 and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" for a in dlq_alarms)
    assert default_synth.resources("AWS::CloudWatch::Dashboard") == {}
    # what the template holds is what `quarry cost` charges for: <= $5/month idle
    est = estimate(default_synth.stack.config)
    assert _item(est.idle, "alarms").usd == pytest.approx(len(alarms) * PRICES["cw_alarm_month"])
    assert Estimate.total(est.idle) <= 5


def test_opted_in_function_alarms_and_dashboard(full_synth: Synth) -> None:
    _, by_metric = _alarms_by_metric(full_synth)
    assert by_metric["Errors"] == len(full_synth.stack.functions.functions)
    assert by_metric["ApproximateNumberOfMessagesVisible"] == 2 and by_metric["ExecutionsFailed"] == 2
    board = next(iter(full_synth.resources("AWS::CloudWatch::Dashboard").values()))
    body = flatten(board["Properties"]["DashboardBody"])
    for needle in (
        "p99",
        TTFT_METRIC,
        "ExecutionsSucceeded",
        "ApproximateNumberOfMessagesVisible",
        "InvocationLatency",
        INPUT_TOKENS,
        COST,
        FIRST_TOKEN_TIME,
        "SEARCH(",
    ):
        assert needle in body, needle
    est = estimate(full_synth.stack.config)
    assert _item(est.idle, "CloudWatch dashboard").usd == PRICES["cw_dashboard_month"]
    assert _item(est.idle, "alarms").usd == pytest.approx(sum(by_metric.values()) * PRICES["cw_alarm_month"])


def test_alarm_topic_is_encrypted_and_mailed_when_configured(default_synth: Synth, full_synth: Synth) -> None:
    full_synth.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    default_synth.template.has_resource_properties("AWS::SNS::Topic", {"TopicName": "quarry-alarms"})
    topics = default_synth.resources("AWS::SNS::Topic").values()
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics)
