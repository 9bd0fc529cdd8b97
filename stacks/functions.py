"""The Lambda functions: one spec per handler under ``lambdas/<name>/handler.py``, built the same way.

Every function gets its own role (logs to its own log group, X-Ray, plus what its module grants), its
own log group with retention, the shared ``quarry`` layer, Powertools settings, python3.12 on x86_64.
The functions that reach Aurora through psycopg are attached to the VPC when ``aurora.access == "vpc"``;
all others stay out of it (no ENI cold starts, no NAT traffic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from quarry.errors import InvalidInput
from stacks.config import DeployConfig
from stacks.network import Network
from stacks.runtime_env import (
    PostgresMode,
    RuntimeResources,
    powertools_environment,
    quarry_environment,
    workflow_environment,
)

__all__ = ["FUNCTIONS", "FunctionSpec", "Functions", "retention"]


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 30
    postgres: bool = False  # touches the vector index / schema through Postgres
    # How long a Data API call waits for a paused Aurora to resume before giving up with 503 + Retry-After:
    # inside API Gateway's 29 s for the REST API, longer where nobody waits on an HTTP answer.
    pg_resume_wait_s: int = 20
    # Admits or answers chats, so it enforces each user's daily token budget (QUARRY_DAILY_TOKEN_BUDGET).
    token_budget: bool = False
    # No function reserves concurrency: a new account's quota is 10 and Lambda keeps 10 unreserved, so any
    # reservation fails the deploy. Overlapping sweeper runs are harmless (see lambdas/sweeper).


FUNCTIONS: dict[str, FunctionSpec] = {
    s.name: s
    for s in (
        FunctionSpec(
            "rest_api",
            "REST API (API Gateway proxy)",
            memory_mb=1024,
            timeout_s=29,
            postgres=True,
            token_budget=True,
        ),
        FunctionSpec("ws_authorizer", "WebSocket $connect authorizer (Cognito JWT)", memory_mb=256, timeout_s=10),
        FunctionSpec("ws_connect", "WebSocket $connect", memory_mb=256, timeout_s=10),
        FunctionSpec("ws_disconnect", "WebSocket $disconnect", memory_mb=256, timeout_s=10),
        FunctionSpec(
            "ws_message", "WebSocket $default: validate and publish chat requests", memory_mb=512, token_budget=True
        ),
        FunctionSpec(
            "chat_worker",
            "Chat: retrieve, generate, stream tokens",
            memory_mb=1024,
            timeout_s=300,
            postgres=True,
            pg_resume_wait_s=60,
            token_budget=True,
        ),
        FunctionSpec("ingest_trigger", "S3 events -> register document, start ingestion", timeout_s=60),
        FunctionSpec(
            "ingest_status",
            "Workflow steps: document status and deletion",
            timeout_s=300,
            postgres=True,
            pg_resume_wait_s=120,
        ),
        FunctionSpec(
            "workspace_setup",
            "Vector schema setup (custom resource)",
            timeout_s=300,
            postgres=True,
            pg_resume_wait_s=120,
        ),
        FunctionSpec("sweeper", "Documents stuck in processing -> error", timeout_s=120),
        # One model call per batch (and a repair), or the reduce's merges and rewrite: up to Lambda's 15 min.
        FunctionSpec(
            "summary_worker",
            "Summary jobs: plan, summarise a batch, record a failed one, reduce",
            memory_mb=1024,
            timeout_s=900,
            token_budget=True,  # a run stops when its owner's daily allowance is spent
        ),
    )
}

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def retention(days: int) -> logs.RetentionDays:
    """The closest CloudWatch retention not shorter than ``days`` (capped at a year)."""
    for allowed, value in sorted(_RETENTION.items()):
        if days <= allowed:
            return value
    return logs.RetentionDays.ONE_YEAR


class Functions(Construct):
    """All handlers. ``env`` is filled from :func:`stacks.runtime_env.quarry_environment` only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        root: Path,
        network: Network,
        resources: RuntimeResources,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.network = network
        self.lambdas_dir = config.resolve(config.lambdas_dir, root)
        self.layer = lambda_.LayerVersion(
            self,
            "QuarryLayer",
            code=lambda_.Code.from_asset(str(_layer_dir(config.resolve(config.layer_asset_dir, root)))),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="quarry package and its Lambda dependencies (manylinux2014_x86_64, cp312)",
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        # The ``live`` alias of each function under a gradual rollout (set by stacks.rollout.Rollout).
        self.aliases: dict[str, lambda_.Alias] = {}
        for spec in FUNCTIONS.values():
            if spec.name == "workspace_setup" and not config.aurora.enabled:
                continue
            self._create(spec, resources)

    def postgres_mode(self, spec: FunctionSpec) -> PostgresMode:
        if not spec.postgres or not self.config.aurora.enabled:
            return "none"
        return "data_api" if self.config.aurora.access == "data_api" else "psycopg"

    def in_vpc(self, name: str) -> bool:
        return self.postgres_mode(FUNCTIONS[name]) == "psycopg"

    def _create(self, spec: FunctionSpec, resources: RuntimeResources) -> None:
        handler_dir = self.lambdas_dir / spec.name
        if not (handler_dir / "handler.py").is_file():
            raise InvalidInput(f"Lambda handler {handler_dir / 'handler.py'} not found")
        cid = "".join(part.title() for part in spec.name.split("_"))
        function_name = f"{self.config.prefix}-{spec.name.replace('_', '-')}"
        log_group = logs.LogGroup(
            self,
            f"{cid}Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self, f"{cid}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=spec.description
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{log_group.log_group_arn}"]
            )
        )
        in_vpc = self.postgres_mode(spec) == "psycopg"
        if in_vpc:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    # ENI management for VPC Lambdas supports no narrower resource.
                    resources=["*"],
                )
            )
        env = {
            **quarry_environment(
                self.config,
                resources,
                postgres=self.postgres_mode(spec),
                pg_resume_wait_s=spec.pg_resume_wait_s,
                token_budget=spec.token_budget,
            ),
            **powertools_environment(f"{self.config.prefix}-{spec.name}"),
        }
        fn = lambda_.Function(
            self,
            cid,
            function_name=function_name,
            description=spec.description,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(handler_dir), exclude=["__pycache__", "*.pyc", "tests"]),
            layers=[self.layer],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_s),
            environment=env,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            vpc=self.network.vpc if in_vpc else None,
            vpc_subnets=self.network.lambda_subnets if in_vpc else None,
            security_groups=[self.network.app_sg] if in_vpc else None,
        )
        self.functions[spec.name] = fn
        self.roles[spec.name] = role

    def entry(self, name: str) -> lambda_.IFunction:
        """What callers invoke (API integrations, event sources): the ``live`` alias when a gradual rollout
        publishes the function, so CodeDeploy can shift their traffic; otherwise the function itself."""
        return self.aliases.get(name) or self.functions[name]

    def grant(self, name: str, statements: list[iam.PolicyStatement]) -> None:
        for statement in statements:
            self.roles[name].add_to_policy(statement)

    def grant_manage_connections(self, names: list[str], api_id: str, stage: str) -> None:
        """Post to / drop WebSocket connections (API Gateway management API) on one stage."""
        arn = f"arn:{Aws.PARTITION}:execute-api:{Aws.REGION}:{Aws.ACCOUNT_ID}:{api_id}/{stage}/*/@connections/*"
        for name in names:
            self.grant(name, [iam.PolicyStatement(actions=["execute-api:ManageConnections"], resources=[arn])])

    def add_workflow_environment(self, names: list[str], ingest_arn: str, delete_arn: str) -> None:
        """State machine ARNs for the functions that start workflows (set after the machines exist)."""
        for name in names:
            for key, value in workflow_environment(ingest_arn, delete_arn).items():
                self.functions[name].add_environment(key, value)


def _layer_dir(path: Path) -> Path:
    if not (path / "python" / "quarry" / "__init__.py").is_file():
        raise InvalidInput(
            f"Lambda layer not built at {path}: run `python scripts/build_layer.py` "
            "(or set layer_asset_dir to a folder holding python/quarry/...)"
        )
    return path
