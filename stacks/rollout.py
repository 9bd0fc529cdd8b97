"""Gradual rollout of the API and chat functions: versions behind a ``live`` alias, shifted by CodeDeploy.

Opt-in through ``rollout.strategy`` in the deploy configuration. With ``all_at_once`` (the default) nothing is
created and callers invoke the functions themselves, so a bad release reaches every user at once. With
``canary`` or ``linear`` each function of :data:`ROLLOUT_FUNCTIONS` is published as a new version whenever its
code or configuration changes, behind a ``live`` alias that every caller invokes (the API Gateway integrations
and the chat queue's event source, through :meth:`stacks.functions.Functions.entry`). The stack update then
hands the alias to CodeDeploy, which moves traffic from the old version to the new one in the configured steps
and rolls back (the alias returns to the old version) when the deployment fails, is stopped, or an alarm of the
group fires: the new version's own errors, and for ``rest_api`` the REST API's 5xx alarm (added by
:class:`stacks.monitoring.Monitoring`, which also sends these alarms to the alarm topic).

The previous version is deleted only when the stack update has completed; a rollback fails the update first,
so CloudFormation still has that version to return the alias to. CodeDeploy costs nothing for Lambda; the
rollback alarms are priced by ``quarry cost``.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from quarry.deployment.config import ROLLOUT_FUNCTIONS, RolloutConfig
from stacks.config import DeployConfig
from stacks.functions import Functions

__all__ = ["ALIAS", "ROLLOUT_FUNCTIONS", "Rollout", "traffic_routing"]

ALIAS = "live"
# A canary step lasts minutes: judge the new version minute by minute (still a standard-resolution alarm).
ALARM_PERIOD = Duration.minutes(1)


def traffic_routing(rollout: RolloutConfig) -> codedeploy.TrafficRouting:
    """CodeDeploy's custom time-based routing for the configured strategy, percentage and interval."""
    interval, percentage = Duration.minutes(rollout.interval_minutes), rollout.percent
    if rollout.strategy == "canary":
        return codedeploy.TrafficRouting.time_based_canary(interval=interval, percentage=percentage)
    if rollout.strategy == "linear":
        return codedeploy.TrafficRouting.time_based_linear(interval=interval, percentage=percentage)
    raise ValueError(f"rollout strategy {rollout.strategy!r} shifts no traffic gradually")


class Rollout(Construct):
    """Aliases, rollback alarms and one deployment group per rolled-out function (none unless gradual)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, functions: Functions) -> None:
        super().__init__(scope, construct_id)
        self.groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        self.alarms: dict[str, cw.Alarm] = {}
        if not config.rollout.gradual:
            return
        application = codedeploy.LambdaApplication(self, "Application", application_name=f"{config.prefix}-functions")
        shift = codedeploy.LambdaDeploymentConfig(self, "Shift", traffic_routing=traffic_routing(config.rollout))
        for name in ROLLOUT_FUNCTIONS:
            self._publish(name, functions, application, shift)

    def add_alarm(self, name: str, alarm: cw.IAlarm) -> None:
        """Also roll ``name`` back when ``alarm`` fires during a shift (no-op when ``name`` is not rolled out)."""
        if name in self.groups:
            self.groups[name].add_alarm(alarm)

    def _publish(
        self,
        name: str,
        functions: Functions,
        application: codedeploy.ILambdaApplication,
        shift: codedeploy.ILambdaDeploymentConfig,
    ) -> None:
        fn = functions.functions[name]
        cid = "".join(part.title() for part in name.split("_"))
        version = fn.current_version
        alias = lambda_.Alias(self, f"{cid}Live", alias_name=ALIAS, version=version)
        alarm = cw.Alarm(
            self,
            f"{cid}NewVersionErrors",
            alarm_description=f"{name}: errors of the version being rolled out behind the {ALIAS} alias",
            # Errors of invocations through the alias that ran the new version only: the old version's
            # errors during the shift say nothing about the release.
            metric=cw.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={
                    "FunctionName": fn.function_name,
                    "Resource": f"{fn.function_name}:{ALIAS}",
                    "ExecutedVersion": version.version,
                },
                statistic="Sum",
                period=ALARM_PERIOD,
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        # The alarm must watch the new version before CodeDeploy moves traffic onto it.
        alias.node.add_dependency(alarm)
        self.groups[name] = codedeploy.LambdaDeploymentGroup(
            self,
            f"{cid}Deployment",
            application=application,
            alias=alias,
            deployment_config=shift,
            alarms=[alarm],
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        self.alarms[name] = alarm
        functions.aliases[name] = alias
