"""Alarms that notify an encrypted SNS alarm topic (optionally an e-mail subscription), and a dashboard.

Always on (the essential alarms): messages in a dead-letter queue, failed state-machine executions, REST
5xx. Opt-in (``monitoring.function_alarms``, ``monitoring.dashboard``; off by default to keep the idle
cost under $5/month): one error alarm per Lambda, and the CloudWatch dashboard.

Under a gradual rollout (``rollout.strategy``) the rollback alarms of :class:`stacks.rollout.Rollout` notify the
same topic, and the REST 5xx alarm also rolls back a ``rest_api`` release.

Custom metrics come from Powertools in namespace ``Quarry`` (:data:`stacks.runtime_env.METRICS_NAMESPACE`):
:data:`TTFT_METRIC` from ``chat_worker`` and :data:`DOCS_PROCESSED` / :data:`DOCS_FAILED` from ingestion.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from quarry.adapters.cloudwatch_metrics import (
    COST,
    FIRST_TOKEN_TIME,
    INPUT_TOKENS,
    MODEL_DIMENSION,
    OUTPUT_TOKENS,
    RETRIEVAL_TIME,
    TOTAL_TIME,
)
from stacks.api import Api
from stacks.config import DeployConfig
from stacks.functions import Functions
from stacks.ingestion import Workflows
from stacks.messaging import Messaging
from stacks.models import Models
from stacks.rollout import Rollout
from stacks.runtime_env import METRICS_NAMESPACE
from stacks.storage import Storage

__all__ = ["DOCS_FAILED", "DOCS_PROCESSED", "TTFT_METRIC", "Monitoring"]

TTFT_METRIC = "TimeToFirstToken"  # milliseconds, from chat_worker (Powertools service "chat")
CHAT_SERVICE = "chat"
INGESTION_SERVICE = "ingestion"  # ingest_status: DocumentsProcessed / DocumentsFailed
DOCS_PROCESSED = "DocumentsProcessed"
DOCS_FAILED = "DocumentsFailed"
PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        storage: Storage,
        messaging: Messaging,
        functions: Functions,
        api: Api,
        workflows: Workflows,
        models: Models,
        rollout: Rollout,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.topic = sns.Topic(
            self, "Alarms", topic_name=f"{config.prefix}-alarms", master_key=storage.key, enforce_ssl=True
        )
        if config.monitoring.alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(config.monitoring.alarm_email))
        self.alarms: list[cw.Alarm] = []
        action = cw_actions.SnsAction(self.topic)

        for name, dlq in messaging.dlqs.items():
            self._alarm(
                f"Dlq{name.title()}",
                dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=1,
                description=f"Messages in the {name} dead-letter queue",
                action=action,
            )
        for name, fn in functions.functions.items() if config.monitoring.function_alarms else ():
            self._alarm(
                f"Errors{''.join(p.title() for p in name.split('_'))}",
                fn.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                description=f"{name} Lambda errors",
                action=action,
            )
        rest = api.rest
        assert rest is not None
        api_5xx = self._alarm(
            "Api5xx",
            rest.api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=5,
            description="REST API 5xx responses",
            action=action,
        )
        rollout.add_alarm("rest_api", api_5xx)
        for alarm in rollout.alarms.values():  # a rollback is news: tell the same people
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)
        for name, machine in (("Ingest", workflows.ingest), ("Delete", workflows.delete)):
            self._alarm(
                f"{name}Failed",
                machine.metric_failed(period=PERIOD, statistic="Sum"),
                threshold=1,
                description=f"{name} state machine executions failed",
                action=action,
            )
        if config.monitoring.dashboard:
            self.dashboard = self._dashboard(messaging, functions, api, workflows, models)

    def _alarm(
        self, construct_id: str, metric: cw.Metric, *, threshold: float, description: str, action: cw_actions.SnsAction
    ) -> cw.Alarm:
        alarm = metric.create_alarm(
            self,
            construct_id,
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)
        return alarm

    def _custom(self, name: str, service: str, statistic: str) -> cw.Metric:
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": service},
            statistic=statistic,
            period=PERIOD,
        )

    def _dashboard(
        self, messaging: Messaging, functions: Functions, api: Api, workflows: Workflows, models: Models
    ) -> cw.Dashboard:
        rest = api.rest
        assert rest is not None
        board = cw.Dashboard(self, "Dashboard", dashboard_name=f"{self.config.prefix}-overview")
        board.add_widgets(
            cw.GraphWidget(
                title="REST latency (ms)",
                left=[
                    rest.api.metric_latency(statistic="p50", period=PERIOD, label="p50"),
                    rest.api.metric_latency(statistic="p99", period=PERIOD, label="p99"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="REST errors",
                left=[
                    rest.api.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
                    rest.api.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Chat time to first token (ms)",
                left=[
                    self._custom(TTFT_METRIC, CHAT_SERVICE, "p50").with_(label="p50"),
                    self._custom(TTFT_METRIC, CHAT_SERVICE, "p99").with_(label="p99"),
                ],
                width=8,
            ),
        )
        board.add_widgets(
            cw.GraphWidget(
                title="Ingestion",
                left=[
                    workflows.ingest.metric_succeeded(period=PERIOD, statistic="Sum", label="succeeded"),
                    workflows.ingest.metric_failed(period=PERIOD, statistic="Sum", label="failed"),
                ],
                right=[
                    self._custom(DOCS_PROCESSED, INGESTION_SERVICE, "Sum").with_(label="documents processed"),
                    self._custom(DOCS_FAILED, INGESTION_SERVICE, "Sum").with_(label="documents failed"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Dead-letter queues",
                left=[
                    dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum", label=name)
                    for name, dlq in messaging.dlqs.items()
                ],
                width=8,
            ),
            cw.GraphWidget(title="Model latency (ms)", left=self._model_latency(models), width=8),
        )
        board.add_widgets(
            cw.GraphWidget(
                title="Chat tokens by model",
                left=[self._by_model(INPUT_TOKENS, "Sum", "in"), self._by_model(OUTPUT_TOKENS, "Sum", "out")],
                width=8,
            ),
            cw.GraphWidget(
                title="Estimated chat cost by model (USD)", left=[self._by_model(COST, "Sum", "USD")], width=8
            ),
            cw.GraphWidget(
                title="Chat p50 by model (ms): retrieval, first token, total",
                left=[
                    self._by_model(RETRIEVAL_TIME, "p50", "retrieval"),
                    self._by_model(FIRST_TOKEN_TIME, "p50", "first token"),
                    self._by_model(TOTAL_TIME, "p50", "total"),
                ],
                width=8,
            ),
        )
        board.add_widgets(
            cw.GraphWidget(
                title="Lambda errors",
                left=[
                    fn.metric_errors(period=PERIOD, statistic="Sum", label=name)
                    for name, fn in functions.functions.items()
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Lambda p99 duration (ms)",
                left=[
                    fn.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in functions.functions.items()
                ],
                width=12,
            ),
        )
        return board

    def _by_model(self, name: str, statistic: str, label: str) -> cw.MathExpression:
        """Every model's series of one per-answer metric (``quarry.adapters.cloudwatch_metrics``)."""
        search = f'{{{METRICS_NAMESPACE},{MODEL_DIMENSION},service}} MetricName="{name}"'
        return cw.MathExpression(
            expression=f"SEARCH('{search}', '{statistic}', {int(PERIOD.to_seconds())})",
            using_metrics={},
            label=label,
            period=PERIOD,
        )

    def _model_latency(self, models: Models) -> list[cw.IMetric]:
        out: list[cw.IMetric] = []
        for model_id in models.bedrock_model_ids:
            out.append(
                cw.Metric(
                    namespace="AWS/Bedrock",
                    metric_name="InvocationLatency",
                    dimensions_map={"ModelId": model_id},
                    statistic="p50",
                    period=PERIOD,
                    label=f"bedrock {model_id} p50",
                )
            )
        for endpoint in models.endpoints:
            out.append(
                cw.Metric(
                    namespace="AWS/SageMaker",
                    metric_name="ModelLatency",  # microseconds
                    dimensions_map={"EndpointName": endpoint.name, "VariantName": "AllTraffic"},
                    statistic="p50",
                    period=PERIOD,
                    label=f"{endpoint.name} p50 (us)",
                )
            )
        return out
