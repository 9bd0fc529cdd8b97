"""Summary jobs in AWS: the ``Summaries`` state machine over the ``summary_worker`` Lambda, and the schedule group
whose schedules re-run scheduled jobs.

Input ``{"workspace_id", "job_id"[, "run_id"]}`` (``rest_api`` through ``quarry.adapters.stepfunctions`` adds
``run_id`` and ``"workflow"``; a schedule sends only the two ids and ``plan`` gives the run a fresh
``run_id``)::

    Plan -> Skipped? -- yes --> Skipped (a scheduled start while a run is in flight, a cancelled run...)
              | no
              v
    MapBatches (Distributed Map over the plan's JSON array in the processing bucket, <= MAX_CONCURRENCY
                at once, ToleratedFailurePercentage 100)
        per batch: MapBatch (retried: exponential, BATCH_ATTEMPTS) --any failure--> RecordFailedBatch -> BatchFailed
    -> Reduce -> Summarised
    Plan, MapBatches or Reduce failing (after their retries) --> FailRun -> SummaryFailed

Every step is the ``summary_worker`` Lambda with ``{"step": <name>, "payload": {...}}`` (the steps of
``quarry.services.summaries``), safe to repeat. A batch that still fails after its retries is recorded
(counted and reported with the result) and fails its child execution, which the 100 % tolerance keeps
from failing the run: the reduce always runs over what the other batches produced (and ends the job
``failed`` when none did). A run with no documents still reduces: that ends the job ``no_documents``.
A run that cannot finish ends its job ``failed`` with the reason (``fail_run``), so a scheduled job is
never left ``running``, which would make it skip every later run.

Scheduled jobs: an EventBridge Scheduler schedule per job in the group :func:`schedule_group_name`, created
by ``rest_api`` (``quarry.adapters.eventbridge_schedules``) and run as the scheduler role, which may only
start this state machine.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import DeployConfig
from stacks.functions import retention
from stacks.iam import bucket_statements

__all__ = [
    "BATCH_ATTEMPTS",
    "BLOB_PREFIX",
    "MAX_CONCURRENCY",
    "SCHEDULE_ACTIONS",
    "SUMMARY_STEPS",
    "Summaries",
    "schedule_group_name",
]

SUMMARY_STEPS = ("plan", "map_batch", "record_failed_batch", "reduce", "fail_run")
# Batches summarised at once: bounds concurrent model calls (and their spend) per run.
MAX_CONCURRENCY = 4
# Retries of a failed step (model throttled or failing) before the batch is recorded as failed, or the run.
BATCH_ATTEMPTS = 3
# What rest_api may do with the group's schedules (quarry.adapters.eventbridge_schedules).
SCHEDULE_ACTIONS = (
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
)


# Where the runs' plans, batch results and cancellation markers live (quarry.services.summaries.job_prefix).
BLOB_PREFIX = "summaries/"


def schedule_group_name(config: DeployConfig) -> str:
    return f"{config.prefix}-summaries"


def _step(step: str, payload: object) -> sfn.TaskInput:
    """``{"step", "payload"}``: ``payload`` is a mapping of fields, or a JsonPath (``JsonPath.object_at``)."""
    return sfn.TaskInput.from_object({"step": step, "payload": payload})


_RUN = {
    "workspace_id": sfn.JsonPath.string_at("$.workspace_id"),
    "job_id": sfn.JsonPath.string_at("$.job_id"),
    "run_id": sfn.JsonPath.string_at("$.run_id"),
}


def _retry(step: tasks.LambdaInvoke) -> None:
    """The step's own failures (a model throttled or failing, a store briefly unavailable): exponential
    backoff with full jitter, :data:`BATCH_ATTEMPTS` retries."""
    step.add_retry(
        errors=["States.ALL"],
        interval=Duration.seconds(10),
        backoff_rate=2,
        max_attempts=BATCH_ATTEMPTS,
        jitter_strategy=sfn.JitterType.FULL,
    )


class Summaries(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        worker: lambda_.IFunction,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.worker = worker
        self.bucket = bucket
        self.map: sfn.DistributedMap | None = None
        self.state_machine = self._machine()
        self.schedule_group = scheduler.ScheduleGroup(
            self,
            "ScheduleGroup",
            schedule_group_name=schedule_group_name(config),
            removal_policy=RemovalPolicy.DESTROY,  # its schedules belong to the stack's jobs
        )
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            # Only schedules of this account may assume it (confused-deputy protection).
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="EventBridge Scheduler: start scheduled summary runs",
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn])
        )

    # ------------------------------------------------------------------ grants for the callers

    @property
    def schedules_arn(self) -> str:
        """Every schedule of the group (their names are made from job ids at run time)."""
        group = schedule_group_name(self.config)
        return f"arn:{Aws.PARTITION}:scheduler:{Aws.REGION}:{Aws.ACCOUNT_ID}:schedule/{group}/*"

    def manager_statements(self) -> list[iam.PolicyStatement]:
        """What ``rest_api`` needs to manage jobs: start runs; cancel one (a marker blob beside the run, which
        every step checks: finished batches are kept) and delete a job's stored runs, under ``summaries/``
        in the processing bucket; keep each scheduled job's schedule, passing the scheduler role to it."""
        return [
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn]),
            *bucket_statements(self.bucket, "write", "delete", "list", prefix=f"{BLOB_PREFIX}*"),
            iam.PolicyStatement(actions=list(SCHEDULE_ACTIONS), resources=[self.schedules_arn]),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            ),
        ]

    def purger_statements(self) -> list[iam.PolicyStatement]:
        """What the workspace purge (``ingest_status``'s ``purge_workspace``) needs beyond the catalog table and
        the processing bucket it already reaches: deleting the workspace's jobs' schedules."""
        return [iam.PolicyStatement(actions=["scheduler:DeleteSchedule"], resources=[self.schedules_arn])]

    def purger_environment(self) -> dict[str, str]:
        """``QUARRY_*`` for the workspace purge: the group its jobs' schedules are in."""
        return {"QUARRY_SUMMARY_SCHEDULE_GROUP": schedule_group_name(self.config)}

    def environment(self) -> dict[str, str]:
        """``QUARRY_*`` for the functions that start runs and keep schedules."""
        return {
            "QUARRY_SUMMARIES_STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
            "QUARRY_SUMMARY_SCHEDULE_GROUP": schedule_group_name(self.config),
            "QUARRY_SUMMARY_SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
        }

    # ------------------------------------------------------------------ the state machine

    def _invoke(
        self, state_id: str, payload: sfn.TaskInput, *, output_path: str | None = None, result_path: str | None = None
    ) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self.worker,
            payload=payload,
            retry_on_service_exceptions=True,
            output_path=output_path,
            result_path=result_path,
        )

    def _definition(self) -> sfn.IChainable:
        fail_run = self._invoke(
            "FailRun",
            # the run's ids as far as they are known (a scheduled start that failed to plan has no run_id)
            _step("fail_run", sfn.JsonPath.object_at("$")),
            result_path=sfn.JsonPath.DISCARD,
        ).next(
            sfn.Fail(
                self,
                "SummaryFailed",
                error_path=sfn.JsonPath.string_at("$.error.Error"),
                cause_path=sfn.JsonPath.string_at("$.error.Cause"),
            )
        )
        plan = self._invoke(
            "Plan",
            # the run's ids; a scheduled start has no run_id yet ($.run_id absent: the whole input is passed)
            _step("plan", sfn.JsonPath.object_at("$")),
            output_path="$.Payload",
        )
        map_batch = self._invoke(
            "MapBatch",
            _step("map_batch", sfn.JsonPath.object_at("$")),
            result_path=sfn.JsonPath.DISCARD,  # the batch's points are in its result blob, not in the state
        )
        record_failed = self._invoke(
            "RecordFailedBatch",
            _step(
                "record_failed_batch",
                {
                    **_RUN,
                    "index": sfn.JsonPath.number_at("$.index"),
                    "error": sfn.JsonPath.object_at("$.error"),  # {"Error", "Cause"} from the Catch
                },
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        batch_failed = sfn.Fail(
            self,
            "BatchFailed",
            error_path=sfn.JsonPath.string_at("$.error.Error"),
            cause_path=sfn.JsonPath.string_at("$.error.Cause"),
        )
        map_batch.add_catch(record_failed.next(batch_failed), errors=["States.ALL"], result_path="$.error")

        self.map = sfn.DistributedMap(
            self,
            "MapBatches",
            item_reader=sfn.S3JsonItemReader(bucket=self.bucket, key=sfn.JsonPath.string_at("$.plan_key")),
            max_concurrency=MAX_CONCURRENCY,
            tolerated_failure_percentage=100,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_path=sfn.JsonPath.DISCARD,
        )
        self.map.item_processor(map_batch)
        reduce = self._invoke("Reduce", _step("reduce", _RUN), output_path="$.Payload")
        reduce.next(sfn.Succeed(self, "Summarised"))
        for task in (plan, map_batch, reduce):
            _retry(task)
        for state in (plan, self.map, reduce):
            state.add_catch(fail_run, errors=["States.ALL"], result_path="$.error")
        skipped = sfn.Condition.and_(
            sfn.Condition.is_present("$.skipped"), sfn.Condition.boolean_equals("$.skipped", True)
        )
        return plan.next(
            sfn.Choice(self, "Skipped?").when(skipped, sfn.Succeed(self, "Skipped")).otherwise(self.map.next(reduce))
        )

    def _machine(self) -> sfn.StateMachine:
        name = f"{self.config.prefix}-summaries"
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        return sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(12),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
