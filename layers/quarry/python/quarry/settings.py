"""The one typed settings object. Read from the environment (prefix ``QUARRY_``) when built, never at import."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "BlobStoreName",
    "BusName",
    "CancellationsName",
    "CatalogName",
    "ChatHistoryName",
    "ChatModelName",
    "ConnectionsName",
    "EmbedderName",
    "MissingSetting",
    "NotifierName",
    "ParserName",
    "RerankerName",
    "Runtime",
    "Settings",
    "SummarySchedulesName",
    "VectorIndexName",
    "WorkflowEngineName",
]

# The adapter names each port accepts: the keys of its registry in ``quarry.wiring`` (the chat history's also
# picks the usage ledger beside it) or of the model catalogue (``quarry.model_catalogue``). A name outside them
# fails Settings validation, naming the variable and the names it accepts.
VectorIndexName = Literal["pgvector", "opensearch"]
CatalogName = Literal["sql", "dynamodb"]
ChatHistoryName = Literal["sql", "dynamodb"]
ConnectionsName = Literal["sql", "dynamodb"]
BlobStoreName = Literal["localfs", "s3"]
BusName = Literal["local", "sns"]
WorkflowEngineName = Literal["local", "stepfunctions"]
NotifierName = Literal["local", "apigw"]
CancellationsName = Literal["memory", "dynamodb"]  # memory: one process; dynamodb: ws_message and chat_worker
EmbedderName = Literal["minilm", "sagemaker", "bedrock"]
ChatModelName = Literal["llamacpp", "bedrock", "sagemaker"]
RerankerName = Literal["none", "cross-encoder", "sagemaker", "bedrock"]
ParserName = Literal["unstructured"]
SummarySchedulesName = Literal["local", "eventbridge"]  # local: `quarry serve`'s timer; eventbridge: Scheduler


class MissingSetting(RuntimeError):
    """A setting the chosen adapter needs is empty: a deployment (environment) error, not a user's."""


class Runtime(StrEnum):
    LOCAL = "local"
    AWS = "aws"


class Settings(BaseSettings):
    """Which adapter serves each port, and their knobs.

    Adapter names are keys of the registries in ``quarry.wiring`` (the ``*Name`` literals above); the defaults are
    the embedded local stack, so ``Settings()`` on a laptop needs nothing set.
    """

    model_config = SettingsConfigDict(env_prefix="QUARRY_", env_nested_delimiter="__", extra="ignore")

    runtime: Runtime = Runtime.LOCAL
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".quarry")
    # The built UI `quarry serve` serves at / (QUARRY_FRONTEND_DIR); None: the checkout's frontend/dist.
    frontend_dir: Path | None = None

    # --- adapters (registry keys) -------------------------------------------------
    vector_index: VectorIndexName = "pgvector"
    catalog: CatalogName = "sql"
    chat_history: ChatHistoryName = "sql"
    connections: ConnectionsName = "sql"
    blob_store: BlobStoreName = "localfs"
    bus: BusName = "local"
    workflow: WorkflowEngineName = "local"
    notifier: NotifierName = "local"
    cancellations: CancellationsName = "memory"
    embedder: EmbedderName = "minilm"
    chat_model: ChatModelName = "llamacpp"
    reranker: RerankerName = "none"
    parser: ParserName = "unstructured"
    summary_schedules: SummarySchedulesName = "local"

    # --- Postgres -----------------------------------------------------------------
    # Empty: start the embedded server under data_dir. Otherwise a libpq DSN (Aurora, any Postgres).
    pg_dsn: str = ""
    pg_secret_arn: str = ""  # Aurora: credentials from Secrets Manager
    pg_pool_max: int = 8
    # Aurora through the RDS Data API (SQL over HTTPS, no VPC needed): the cluster ARN and database name,
    # with pg_secret_arn. When set, the pgvector index uses it instead of pg_dsn.
    pg_cluster_arn: str = ""
    pg_database: str = ""
    # How long one Data API call waits for a paused cluster to resume before answering 503 "database_waking".
    # rest_api: well under API Gateway's 29 s integration timeout; background functions can wait longer.
    pg_resume_wait_seconds: float = 20.0

    # --- models -------------------------------------------------------------------
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_batch_size: int = 64
    embedding_precision: str = "auto"  # auto (bf16 where the CPU supports it) | fp32 | bf16
    cross_encoder_path: str = ""  # any sentence-transformers CrossEncoder folder
    llm_model_path: str = ""  # empty: the packaged Qwen2.5 0.5B GGUF, assembled and verified
    llm_context_tokens: int = 4096
    llm_threads: int = 0  # 0: all cores
    llm_max_tokens: int = Field(default=384, ge=1)  # the longest answer llama.cpp writes; longer asks are capped
    # Requests llama.cpp decodes together in batch work (summary jobs): one token of eight sequences costs
    # little more than one of one on a CPU.
    llm_batch_sequences: int = Field(default=8, ge=1, le=64)
    bedrock_chat_model_id: str = "amazon.nova-lite-v1:0"  # the default; on demand, no use-case form
    bedrock_chat_model_ids: list[str] = Field(default_factory=list)  # more to offer; env: a JSON array
    bedrock_embedding_model_id: str = "amazon.titan-embed-text-v2:0"
    bedrock_embedding_dimensions: int = 1024
    bedrock_rerank_model_arn: str = ""
    sagemaker_embedding_endpoint: str = ""
    sagemaker_embedding_dimensions: int = 384  # what the endpoint's embedding model returns
    sagemaker_llm_endpoint: str = ""
    aws_region: str = "us-east-1"

    # --- retrieval ----------------------------------------------------------------
    rrf_k: int = 60
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    candidates: int = 50  # per ranker before fusion / rerank
    context_chunks: int = Field(default=5, ge=1, le=20)  # sources given to the LLM when a chat does not say
    min_relevance: float = 0.3  # dense cosine below which a passage does not ground an answer

    # --- spend ----------------------------------------------------------------------
    # Input + output tokens one user's answers may spend per UTC day, across workspaces; past it a new chat is
    # refused (429 "budget_exhausted") until 00:00 UTC. None: no allowance (the local default). AWS: the deploy
    # configuration's spend.daily_token_budget_per_user.
    daily_token_budget: int | None = Field(default=None, ge=1)

    # --- ingestion ----------------------------------------------------------------
    max_upload_bytes: int = 50 * 1024 * 1024
    upload_url_ttl_seconds: int = 900
    # AWS: the Batch job's timeout x attempts + a start-up margin (stacks/config.py IngestionConfig).
    processing_timeout_seconds: int = 1800
    crawler_enabled: bool = True  # website sources; AWS: the deployment's `ingestion.crawler`
    crawler_allowed_hosts: list[str] = Field(default_factory=list)  # exempt from the private-address refusal
    # Zip-based documents (DOCX, PPTX, XLSX) are refused ("archive expands beyond N MB") before parsing when their
    # members would inflate beyond this total, or beyond this multiple of the file's size (past 1 MiB inflated).
    archive_max_expanded_mb: int = Field(default=100, ge=1)
    archive_max_ratio: float = Field(default=200.0, gt=1)

    # --- local runtime ------------------------------------------------------------
    local_upload_url: str = "http://127.0.0.1:8000/uploads"  # set by `quarry serve` to its own address
    local_workflow_background: bool = True  # False: workflow runs inline (CLI ingest)
    local_rate_limit_per_second: float = 50.0  # per user, like API Gateway's throttling in AWS
    local_rate_limit_burst: int = 100
    # The one name besides localhost / 127.0.0.1 / [::1] the local server answers for (another Host: 421),
    # e.g. "quarry.lan" behind `quarry serve --allow-remote`; browsers' Origin must name one of them too.
    local_public_host: str = ""

    # --- AWS resource names (set by the CDK stacks as Lambda environment) ----------
    upload_bucket: str = ""
    processing_bucket: str = ""
    table_prefix: str = "quarry"
    # DynamoDB table names as deployed (CloudFormation names them); empty: ``{table_prefix}-{suffix}``.
    catalog_table: str = ""
    chat_table: str = ""
    connections_table: str = ""
    chat_topic_arn: str = ""
    ingest_state_machine_arn: str = ""
    delete_state_machine_arn: str = ""
    summaries_state_machine_arn: str = ""
    # Scheduled summary jobs (EventBridge Scheduler): the deployment's schedule group, and the role its
    # schedules start the summaries state machine with (rest_api passes it: iam:PassRole).
    summary_schedule_group: str = "quarry-summaries"
    summary_scheduler_role_arn: str = ""
    websocket_endpoint: str = ""
    opensearch_endpoint: str = ""
    opensearch_serverless: bool = False

    # --- identity -----------------------------------------------------------------
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    dev_token_secret: str = ""  # local runtime: HMAC key for the dev identity (generated when empty)
    dev_token_ttl_seconds: int = 12 * 3600  # the UI renews it from /config.json before it expires

    @field_validator("daily_token_budget", mode="before")
    @classmethod
    def _empty_is_no_budget(cls, value: object) -> object:
        """An empty ``QUARRY_DAILY_TOKEN_BUDGET`` (a template rendering "no budget" as "") means no budget."""
        return None if isinstance(value, str) and not value.strip() else value

    def require(self, name: str, needed_by: str) -> str:
        """The value of a string setting an adapter cannot work without, or a clear error naming its variable
        (a deployment that forgot to set it fails on first use with this message, not deep inside a client)."""
        value = getattr(self, name)
        if not value:
            raise MissingSetting(f"QUARRY_{name.upper()} is not set; the {needed_by} needs it")
        return str(value)

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"
