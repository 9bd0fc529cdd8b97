"""Ingestion: the Batch worker on Fargate, the ingestion and deletion state machines, the sweeper schedule.

Ingestion (input ``{"workflow": "ingest", "workspace_id", "document_id", ...}`` from ``ingest_trigger``)::

    SetProcessing -> SubmitBatchJob (.sync, retried with backoff) -> SetProcessed -> Done
          any failure (caught into $.error) -> SetError -> IngestionFailed

Deletion (input ``{"workflow": "delete_document" | "delete_workspace", "workspace_id"[, "document_id"]}``,
as ``quarry.adapters.stepfunctions`` starts it)::

    WhatToDelete -> PurgeDocument | PurgeWorkspace (chunks, files, catalog entries; retried) -> Deleted
          any failure -> DeletionFailed

Every step is the ``ingest_status`` Lambda with ``{"action": ..., "workspace_id", "document_id"}`` (SetError
adds ``"error": {"Error", "Cause"}``); the actions are :data:`STATUS_ACTIONS`. Each step is safe to repeat.
The Batch job reads its document from :data:`JOB_ENV_WORKSPACE` / :data:`JOB_ENV_DOCUMENT`.

Uploads and website crawls share this one job queue, but every document is its own Fargate job: a slow
crawl holds one job's vCPUs, never another document's worker (locally, ``LocalWorkflow`` gives crawls a
pool of their own for the same reason). A crawl ends within its time budget (``CrawlerPageSource``,
300 s; body reads included), far inside ``job_timeout_minutes``. Uploads wait behind crawls only when
``max_vcpus / vcpu`` crawls (8 by default) run at once; a deployment expecting that many raises
``max_vcpus``.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from quarry.errors import InvalidInput
from stacks.config import DeployConfig
from stacks.functions import retention
from stacks.network import Network
from stacks.runtime_env import powertools_environment

__all__ = [
    "JOB_ENV_DOCUMENT",
    "JOB_ENV_WORKSPACE",
    "STATUS_ACTIONS",
    "TRANSIENT_BATCH_ERRORS",
    "BatchWorker",
    "Workflows",
]

JOB_ENV_WORKSPACE = "QUARRY_JOB_WORKSPACE_ID"  # read by batch_ingest/main.py
JOB_ENV_DOCUMENT = "QUARRY_JOB_DOCUMENT_ID"
STATUS_ACTIONS = ("set_processing", "set_processed", "set_error", "purge_document", "purge_workspace")
# Batch API errors worth retrying; a job that ran and failed is retried by the job definition instead.
TRANSIENT_BATCH_ERRORS = ["Batch.AWSBatchException", "Batch.ServerException"]


class BatchWorker(Construct):
    """Fargate compute environment, job queue and the job definition built from ``batch_ingest/Dockerfile``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        root: Path,
        network: Network,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        ing = config.ingestion
        image_dir = config.resolve(ing.image_dir, root)
        if not (image_dir / "Dockerfile").is_file():
            raise InvalidInput(f"Batch worker image {image_dir / 'Dockerfile'} not found")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/batch/{config.prefix}-ingest",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.job_role = iam.Role(
            self, "JobRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"), description="Ingestion job"
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Pulls the ingestion image and writes its logs",
        )
        self.compute = batch.FargateComputeEnvironment(
            self,
            "Compute",
            vpc=network.vpc,
            vpc_subnets=network.batch_subnets,
            security_groups=[network.batch_sg],
            spot=ing.spot,
            maxv_cpus=ing.max_vcpus,
        )
        self.queue = batch.JobQueue(
            self,
            "Queue",
            job_queue_name=f"{config.prefix}-ingest",
            compute_environments=[batch.OrderedComputeEnvironment(compute_environment=self.compute, order=1)],
        )
        container = batch.EcsFargateContainerDefinition(
            self,
            "Container",
            # Build context: the repository root (the Dockerfile copies pyproject.toml, README.md and the quarry
            # package), trimmed by the root .dockerignore to what the image copies, so the staged asset is small.
            image=ecs.ContainerImage.from_asset(
                str(root),
                file=(image_dir / "Dockerfile").relative_to(root).as_posix(),  # image_dir must be inside root
                ignore_mode=IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            cpu=ing.vcpu,
            memory=Size.mebibytes(ing.memory_mib),
            environment={**environment, **powertools_environment(f"{config.prefix}-batch-ingest")},
            job_role=self.job_role,
            execution_role=self.execution_role,
            assign_public_ip=True,  # public subnet: reach ECR, S3, Bedrock (and the web) without a NAT
            fargate_cpu_architecture=ecs.CpuArchitecture.X86_64,
            fargate_operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ephemeral_storage_size=Size.gibibytes(30),
            logging=ecs.LogDriver.aws_logs(stream_prefix="ingest", log_group=self.log_group),
            readonly_root_filesystem=False,
        )
        self.job_definition = batch.EcsJobDefinition(
            self,
            "JobDefinition",
            job_definition_name=f"{config.prefix}-ingest",
            container=container,
            timeout=Duration.minutes(ing.job_timeout_minutes),
            retry_attempts=ing.job_attempts,
            retry_strategies=[
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.CANNOT_PULL_CONTAINER),
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(
                    batch.Action.RETRY, batch.Reason.custom(on_status_reason="ResourceInitializationError*")
                ),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*")),
            ],
            propagate_tags=True,
        )


def _status_payload(action: str, *, document: bool = True) -> sfn.TaskInput:
    body: dict[str, object] = {"action": action, "workspace_id": sfn.JsonPath.string_at("$.workspace_id")}
    if document:
        body["document_id"] = sfn.JsonPath.string_at("$.document_id")
    return sfn.TaskInput.from_object(body)


class Workflows(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        status_fn: lambda_.IFunction,
        worker: BatchWorker,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.status_fn = status_fn
        self.ingest = self._machine("Ingest", "ingest", self._ingest_definition(worker))
        self.delete = self._machine("Delete", "delete", self._delete_definition())

    def _machine(self, construct_id: str, name: str, definition: sfn.IChainable) -> sfn.StateMachine:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            log_group_name=f"/aws/vendedlogs/states/{self.config.prefix}-{name}",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        return sfn.StateMachine(
            self,
            construct_id,
            state_machine_name=f"{self.config.prefix}-{name}",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.hours(6),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )

    def _status(self, state_id: str, payload: sfn.TaskInput) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self.status_fn,
            payload=payload,
            result_path=sfn.JsonPath.DISCARD,
            retry_on_service_exceptions=True,
        )

    def _ingest_definition(self, worker: BatchWorker) -> sfn.IChainable:
        set_processing = self._status("SetProcessing", _status_payload("set_processing"))
        submit = tasks.BatchSubmitJob(
            self,
            "SubmitBatchJob",
            job_name=sfn.JsonPath.format("ingest-{}", sfn.JsonPath.string_at("$.document_id")),
            job_queue_arn=worker.queue.job_queue_arn,
            job_definition_arn=worker.job_definition.job_definition_arn,
            container_overrides=tasks.BatchContainerOverrides(
                environment={
                    JOB_ENV_WORKSPACE: sfn.JsonPath.string_at("$.workspace_id"),
                    JOB_ENV_DOCUMENT: sfn.JsonPath.string_at("$.document_id"),
                }
            ),
            result_selector={"job_id": sfn.JsonPath.string_at("$.JobId")},
            result_path="$.job",
        )
        submit.add_retry(
            errors=TRANSIENT_BATCH_ERRORS,
            interval=Duration.seconds(10),
            backoff_rate=2,
            max_attempts=4,
            jitter_strategy=sfn.JitterType.FULL,
        )
        set_processed = self._status("SetProcessed", _status_payload("set_processed"))
        set_error = self._status(
            "SetError",
            sfn.TaskInput.from_object(
                {
                    "action": "set_error",
                    "workspace_id": sfn.JsonPath.string_at("$.workspace_id"),
                    "document_id": sfn.JsonPath.string_at("$.document_id"),
                    "error": sfn.JsonPath.object_at("$.error"),  # {"Error", "Cause"} from the Catch
                }
            ),
        )
        failed = sfn.Fail(
            self,
            "IngestionFailed",
            error_path=sfn.JsonPath.string_at("$.error.Error"),
            cause_path=sfn.JsonPath.string_at("$.error.Cause"),
        )
        set_error.next(failed)
        for step in (set_processing, submit, set_processed):
            step.add_catch(set_error, errors=["States.ALL"], result_path="$.error")
        return set_processing.next(submit).next(set_processed).next(sfn.Succeed(self, "Done"))

    def _delete_definition(self) -> sfn.IChainable:
        failed = sfn.Fail(self, "DeletionFailed", error="DeletionFailed", cause="the purge step kept failing")
        deleted = sfn.Succeed(self, "Deleted")

        def purge(scope: str, *, document: bool) -> sfn.IChainable:
            step = self._status(f"Purge{scope}", _status_payload(f"purge_{scope.lower()}", document=document))
            step.add_retry(
                errors=["States.TaskFailed"],
                interval=Duration.seconds(5),
                backoff_rate=2,
                max_attempts=3,
                jitter_strategy=sfn.JitterType.FULL,
            )
            step.add_catch(failed, errors=["States.ALL"], result_path="$.error")
            return step.next(deleted)

        return (
            sfn.Choice(self, "WhatToDelete")
            .when(sfn.Condition.string_equals("$.workflow", "delete_document"), purge("Document", document=True))
            .when(sfn.Condition.string_equals("$.workflow", "delete_workspace"), purge("Workspace", document=False))
            .otherwise(sfn.Fail(self, "UnknownWorkflow", error="UnknownWorkflow", cause="unexpected $.workflow"))
        )


def schedule_sweeper(scope: Construct, config: DeployConfig, sweeper: lambda_.IFunction) -> events.Rule:
    """Documents stuck in ``processing`` beyond their timeout are set to ``error`` by the sweeper."""
    return events.Rule(
        scope,
        "SweepSchedule",
        description="Quarry: time out documents stuck in processing",
        schedule=events.Schedule.rate(Duration.minutes(config.ingestion.sweep_every_minutes)),
        targets=[targets.LambdaFunction(sweeper, retry_attempts=2)],
    )
