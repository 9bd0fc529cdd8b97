"""Monitoring: alarms on DLQs, Lambda errors, API 5xx and failed executions, all to the alarm topic; a dashboard."""

from __future__ import annotations

import pytest

from stacks.monitoring import TTFT_METRIC
from tests.cdk.cdk_synth import Synth, flatten, logical_id

pytestmark = pytest.mark.cdk


def test_alarms_cover_dlqs_functions_api_and_workflows(default_synth: Synth) -> None:
    alarms = [a["Properties"] for a in default_synth.resources("AWS::CloudWatch::Alarm").values()]
    topic = logical_id(default_synth, default_synth.stack.monitoring.topic)
    assert all(a["AlarmActions"] == [{"Ref": topic}] for a in alarms)
    by_metric: dict[str, int] = {}
    for a in alarms:
        by_metric[a["MetricName"]] = by_metric.get(a["MetricName"], 0) + 1
    assert by_metric["ApproximateNumberOfMessagesVisible"] == 2
    assert by_metric["Errors"] == len(default_synth.stack.functions.functions)
    assert by_metric["5XXError"] == 1
    assert by_metric["ExecutionsFailed"] == 2
    dlq_alarms = [a for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    assert all(a["Threshold"] == 1 and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" for a in dlq_alarms)


def test_dashboard_shows_latency_ttft_ingestion_dlqs_and_models(default_synth: Synth) -> None:
    board = next(iter(default_synth.resources("AWS::CloudWatch::Dashboard").values()))
    body = flatten(board["Properties"]["DashboardBody"])
    for needle in (
        "p99",
        TTFT_METRIC,
        "ExecutionsSucceeded",
        "ApproximateNumberOfMessagesVisible",
        "InvocationLatency",
    ):
        assert needle in body, needle


def test_alarm_topic_is_encrypted_and_mailed_when_configured(default_synth: Synth, full_synth: Synth) -> None:
    full_synth.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    default_synth.template.has_resource_properties("AWS::SNS::Topic", {"TopicName": "quarry-alarms"})
    topics = default_synth.resources("AWS::SNS::Topic").values()
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics)
