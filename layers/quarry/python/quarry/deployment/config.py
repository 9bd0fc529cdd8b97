"""``DeployConfig``: the one typed description of what a deployment contains.

Loaded by ``app.py`` from the ``quarry`` key of the CDK context (``cdk.json`` or ``-c quarry=...``) merged
with an optional file named by ``-c config=FILE`` (JSON, TOML or YAML), and by ``quarry cost --config FILE``.
Pure pydantic (no CDK), so the CDK stacks (``stacks/``, which re-export it as ``stacks.config``) and
``quarry cost`` share this one definition. Every always-on, billed-by-the-hour piece (OpenSearch, SageMaker
endpoints, NAT, interface endpoints) is off by default; :mod:`quarry.deployment.cost` prices whatever is
switched on.

Postgres access (``aurora.access``):

* ``"data_api"`` (default): the RDS Data API (SQL over HTTPS) is enabled on the cluster and the Lambdas
  that touch the vector index (``rest_api``, ``chat_worker``, ``ingest_status``, ``workspace_setup``)
  reach Aurora through it (``QUARRY_PG_CLUSTER_ARN``; ``quarry.adapters.rds_data``). No Lambda is in the
  VPC, so nothing private needs the internet: no NAT and no interface endpoint. The Data API bills
  $0.35 per million calls; a search is one call per retrieval mode.
* ``"vpc"``: the Lambdas speak the Postgres wire protocol (psycopg, credentials from Secrets Manager)
  from private subnets. They also push to WebSocket connections through the API Gateway management
  API, which no VPC endpoint serves for a public API, so this mode needs a NAT: a ``t4g.nano`` NAT
  *instance* by default (about $7 a month with its public IPv4 and disk) rather than a NAT gateway
  (about $36). Choose it for the lowest search latency (a pooled connection instead of an HTTPS call).

The Batch worker keeps psycopg in both modes (binary ``COPY`` for bulk writes). It runs on Fargate in the
*public* subnets with a public IP and a security group with no ingress: it reaches ECR, S3, Bedrock and
(when enabled) the web for the crawler without a NAT.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quarry.errors import InvalidInput

__all__ = [
    "ApiConfig",
    "AuroraConfig",
    "AuthConfig",
    "BedrockConfig",
    "DeployConfig",
    "EndpointConfig",
    "FrontendConfig",
    "IngestionConfig",
    "MonitoringConfig",
    "NetworkConfig",
    "OpenSearchConfig",
    "RolloutConfig",
    "SageMakerConfig",
    "SpendConfig",
    "WafConfig",
    "load_config",
]

NatKind = Literal["none", "instance", "gateway"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Section):
    max_azs: int = Field(default=2, ge=2, le=3)  # Aurora needs subnets in two AZs
    # None: decided from what needs egress (see DeployConfig.nat_kind); set to force a choice.
    nat: NatKind | None = None
    nat_instance_type: str = "t4g.nano"
    # Interface endpoints for the AWS APIs the private code calls. With a NAT they are an option
    # (private path, lower per-GB price); each costs about $7.30 a month per AZ.
    interface_endpoints: bool = False


class AuroraConfig(_Section):
    enabled: bool = True
    access: Literal["vpc", "data_api"] = "data_api"
    engine_version: str = "17.7"  # min capacity 0 needs 16.3+ (or 15.7+, 14.12+)
    min_capacity: float = Field(default=0, ge=0, le=256)
    max_capacity: float = Field(default=4, ge=1, le=256)
    auto_pause_minutes: int = Field(default=10, ge=5, le=1440)
    database_name: str = Field(default="quarry", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    backup_days: int = Field(default=7, ge=1, le=35)
    storage_gb_estimate: float = Field(default=2, ge=0)  # only for `quarry cost`


class OpenSearchConfig(_Section):
    enabled: bool = False
    # Serverless bills at least 1 OCU (standby off) or 2 OCUs (standby on) around the clock.
    standby_replicas: bool = False
    collection_name: str = Field(default="", max_length=28)  # default: "<prefix>-vectors"
    storage_gb_estimate: float = Field(default=1, ge=0)


class BedrockConfig(_Section):
    enabled: bool = True
    # The first is the default; every one is offered in the UI's model picker (QUARRY_BEDROCK_CHAT_MODEL_IDS).
    # Amazon Nova Lite: on demand, Converse + ConverseStream, no Anthropic use-case form to file first.
    chat_model_ids: tuple[str, ...] = ("amazon.nova-lite-v1:0",)
    embedding_model_id: str = "amazon.titan-embed-text-v2:0"
    embedding_dimensions: int = 1024
    rerank_model_id: str | None = None  # e.g. "cohere.rerank-v3-5:0"


class EndpointConfig(_Section):
    """A SageMaker real-time endpoint: always on, billed per instance-hour."""

    instance_type: str
    instance_count: int = Field(default=1, ge=1, le=10)
    image_uri: str  # may contain "{region}"
    # The model artefact: an s3:// URI, or a local model.tar.gz uploaded as a CDK asset.
    model_data: str = ""
    environment: dict[str, str] = Field(default_factory=dict)


def _default_embedding_endpoint() -> EndpointConfig:
    return EndpointConfig(
        instance_type="ml.m5.large",
        image_uri="763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04",
        model_data="sagemaker_models/build/model.tar.gz",
    )


def _default_llm_endpoint() -> EndpointConfig:
    return EndpointConfig(
        instance_type="ml.g5.xlarge",
        image_uri="763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04",
    )


class SageMakerConfig(_Section):
    embedding_endpoint: bool = False  # the embedding + cross-encoder endpoint from sagemaker_models/
    llm_endpoint: bool = False
    embedding: EndpointConfig = Field(default_factory=_default_embedding_endpoint)
    # Whether the embedding endpoint's archive also serves a cross-encoder (package.py --model
    # NAME=cross-encoder=PATH): rerank on it. The default archive has none. bedrock.rerank_model_id wins.
    cross_encoder: bool = False
    # Vector size of the model the embedding endpoint serves (all-MiniLM-L6-v2: 384); new workspaces'
    # vector columns / k-NN fields are created with it (QUARRY_SAGEMAKER_EMBEDDING_DIMENSIONS).
    embedding_dimensions: int = Field(default=384, ge=1, le=16000)
    llm: EndpointConfig = Field(default_factory=_default_llm_endpoint)
    # sagemaker_models.llm_config.LlmEndpointConfig fields: what the LLM container serves and its limits.
    llm_serving: dict[str, Any] = Field(
        default_factory=lambda: {
            "model_id": "Qwen/Qwen2.5-1.5B-Instruct",
            "max_total_tokens": 8192,
            "max_input_tokens": 6144,
        }
    )


class IngestionConfig(_Section):
    crawler: bool = False  # website sources; the Batch task already has internet egress (public IP)
    image_dir: str = "batch_ingest"  # folder holding the worker's Dockerfile, built by `cdk deploy`
    vcpu: float = 2
    memory_mib: int = 4096
    max_vcpus: int = Field(default=16, ge=1, le=256)
    spot: bool = False
    job_timeout_minutes: int = Field(default=60, ge=5, le=720)
    job_attempts: int = Field(default=2, ge=1, le=10)
    # Time a job may spend queued and starting (waiting for vCPUs under max_vcpus, pulling the image),
    # per document, on top of its run time; see processing_timeout_seconds.
    start_margin_minutes: int = Field(default=30, ge=0, le=1440)
    sweep_every_minutes: int = Field(default=15, ge=1, le=1440)
    seconds_per_document_estimate: float = 120  # only for `quarry cost`

    @property
    def processing_timeout_seconds(self) -> int:
        """How long a document may stay ``processing`` before the sweeper fails it (``timed out``).

        Longer than the job definition allows a job to run (every attempt at its full timeout) plus the
        margin for queueing and start-up, so the sweeper never fails a document whose job may still finish.
        """
        return (self.job_timeout_minutes * self.job_attempts + self.start_margin_minutes) * 60


class ApiConfig(_Section):
    throttle_rate: float = 50  # requests per second, REST stage
    throttle_burst: int = 100
    ws_throttle_rate: float = 20
    ws_throttle_burst: int = 50
    stage_name: str = "prod"


class AuthConfig(_Section):
    self_sign_up: bool = False
    mfa: Literal["off", "optional", "required"] = "optional"
    password_min_length: int = Field(default=12, ge=8, le=64)


class FrontendConfig(_Section):
    dist_dir: str = "frontend/dist"  # deployed when it exists; config.json is always deployed
    price_class: Literal["100", "200", "all"] = "100"
    extra_cors_origins: tuple[str, ...] = ()  # e.g. "http://localhost:5173" for a local UI against AWS


class MonitoringConfig(_Section):
    """Essential alarms (dead-letter queues, failed executions, REST 5xx) are always on; the rest is opt-in.

    The dashboard ($3/month beyond three per account) and one error alarm per Lambda ($0.10 each) are off
    by default so an idle deployment stays under $5/month (``quarry cost``).
    """

    alarm_email: str | None = None
    dashboard: bool = False
    function_alarms: bool = False


# The functions a gradual rollout shifts traffic on: the API and the chat path (stacks/rollout.py, `quarry cost`).
ROLLOUT_FUNCTIONS = ("rest_api", "ws_message", "chat_worker")


class RolloutConfig(_Section):
    """How a new version of the API and chat functions reaches users (CodeDeploy on Lambda aliases).

    ``all_at_once`` (default) updates the functions in place. ``canary`` sends ``percent`` of the traffic to the
    new version for ``interval_minutes``, then the rest; ``linear`` adds ``percent`` every ``interval_minutes``.
    Either rolls back automatically when an error alarm of those functions fires during the shift.
    """

    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    percent: int = Field(default=10, ge=1, le=99)
    interval_minutes: int = Field(default=5, ge=1, le=60)

    @property
    def gradual(self) -> bool:
        """Traffic shifts through CodeDeploy onto a ``live`` alias, rather than the functions updating in place."""
        return self.strategy != "all_at_once"


class WafConfig(_Section):
    """An opt-in AWS WAF web ACL: AWS managed common rules, IP reputation and a per-IP rate-based rule.

    Attached to the REST API's stage and, with ``cloudfront``, to the UI's distribution (a CloudFront web ACL
    lives in us-east-1). API Gateway WebSocket APIs cannot carry a web ACL; their own throttling applies.
    """

    enabled: bool = False
    rate_limit_per_5_minutes: int = Field(default=1000, ge=10, le=2_000_000_000)  # requests per client IP
    cloudfront: bool = True


class SpendConfig(_Section):
    """What bounds chat's model spend: concurrent chat workers and each user's daily tokens."""

    # The chat queue's event source runs at most this many chat workers at once (SQS maximum concurrency).
    chat_max_concurrency: int = Field(default=10, ge=2, le=1000)
    # Input + output tokens one user may spend per UTC day across all workspaces; None: no budget.
    daily_token_budget_per_user: int | None = Field(default=500_000, ge=1000)


class DeployConfig(_Section):
    """What to deploy. The defaults are the cheap-at-idle configuration."""

    prefix: str = Field(default="quarry", pattern=r"^[a-z][a-z0-9-]{1,20}$")
    stack_name: str = "Quarry"
    account: str | None = None
    region: str = "us-east-1"
    removal: Literal["retain", "destroy"] = "retain"  # data: buckets, tables, database, user pool
    log_retention_days: int = 30

    network: NetworkConfig = Field(default_factory=NetworkConfig)
    aurora: AuroraConfig = Field(default_factory=AuroraConfig)
    opensearch: OpenSearchConfig = Field(default_factory=OpenSearchConfig)
    bedrock: BedrockConfig = Field(default_factory=BedrockConfig)
    sagemaker: SageMakerConfig = Field(default_factory=SageMakerConfig)
    ingestion: IngestionConfig = Field(default_factory=IngestionConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    frontend: FrontendConfig = Field(default_factory=FrontendConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    waf: WafConfig = Field(default_factory=WafConfig)
    spend: SpendConfig = Field(default_factory=SpendConfig)

    # Which vector store the runtime uses when both are deployed.
    default_vector_index: Literal["pgvector", "opensearch"] | None = None

    # Where the code comes from (relative paths are relative to the project root).
    lambdas_dir: str = "lambdas"
    layer_asset_dir: str = "build/layer"  # built by scripts/build_layer.py; holds python/quarry/...

    @model_validator(mode="after")
    def _consistent(self) -> DeployConfig:
        if not (self.aurora.enabled or self.opensearch.enabled):
            raise ValueError("at least one vector store must be enabled (aurora or opensearch)")
        if self.aurora.min_capacity > self.aurora.max_capacity:
            raise ValueError("aurora.min_capacity must not exceed aurora.max_capacity")
        if self.default_vector_index == "pgvector" and not self.aurora.enabled:
            raise ValueError("default_vector_index is pgvector but aurora is disabled")
        if self.default_vector_index == "opensearch" and not self.opensearch.enabled:
            raise ValueError("default_vector_index is opensearch but opensearch is disabled")
        if self.bedrock.enabled and not self.bedrock.chat_model_ids:
            raise ValueError("bedrock.chat_model_ids needs at least one model id (the first is the default)")
        if not self.bedrock.enabled and not (self.sagemaker.embedding_endpoint and self.sagemaker.llm_endpoint):
            raise ValueError("with bedrock disabled both SageMaker endpoints (embedding and llm) are needed")
        if self.network.nat == "none" and self.lambdas_in_vpc:
            raise ValueError("aurora.access 'vpc' needs a NAT (WebSocket pushes from VPC Lambdas); use nat 'instance'")
        return self

    # ------------------------------------------------------------------ derived choices

    @property
    def vector_index(self) -> str:
        if self.default_vector_index:
            return self.default_vector_index
        return "pgvector" if self.aurora.enabled else "opensearch"

    @property
    def embedder(self) -> str:
        return "sagemaker" if self.sagemaker.embedding_endpoint else "bedrock"

    @property
    def chat_model(self) -> str:
        return "sagemaker" if self.sagemaker.llm_endpoint else "bedrock"

    @property
    def reranker(self) -> str:
        if self.bedrock.enabled and self.bedrock.rerank_model_id:
            return "bedrock"  # named explicitly
        if self.sagemaker.embedding_endpoint and self.sagemaker.cross_encoder:
            return "sagemaker"
        return "none"

    @property
    def lambdas_in_vpc(self) -> bool:
        """Whether the Postgres-using Lambdas are attached to the VPC (psycopg to Aurora)."""
        return self.aurora.enabled and self.aurora.access == "vpc"

    @property
    def nat_kind(self) -> NatKind:
        if self.network.nat is not None:
            return self.network.nat
        return "instance" if self.lambdas_in_vpc else "none"

    @property
    def opensearch_collection(self) -> str:
        return self.opensearch.collection_name or f"{self.prefix}-vectors"[:28]

    @property
    def is_destroy(self) -> bool:
        return self.removal == "destroy"

    def resolve(self, path: str, root: Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else root / p


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read deploy config {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml  # optional: only for YAML config files

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, ImportError) as exc:
        raise InvalidInput(f"deploy config {path} is not valid {path.suffix.lstrip('.') or 'json'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"deploy config {path} must hold a mapping at the top level")
    return data


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(context: Mapping[str, Any] | None = None, config_file: str | Path | None = None) -> DeployConfig:
    """Build the config from CDK context values (a mapping or JSON string) overlaid by a config file."""
    data: dict[str, Any] = {}
    if context:
        data = _merge(data, context)
    if config_file:
        data = _merge(data, _read_file(Path(config_file)))
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid deploy config: {problems}") from exc
