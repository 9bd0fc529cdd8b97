"""The one place that turns deployed resources into the ``QUARRY_*`` environment of Lambdas and Batch jobs.

Every key is a field of :class:`quarry.settings.Settings` (checked by ``tests/cdk``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from stacks.config import DeployConfig

__all__ = [
    "PG_PORT",
    "RuntimeResources",
    "powertools_environment",
    "quarry_environment",
    "workflow_environment",
]

PG_PORT = 5432
METRICS_NAMESPACE = "Quarry"

PostgresMode = Literal["psycopg", "data_api", "none"]


@dataclass(frozen=True)
class RuntimeResources:
    """Names and ARNs (CDK tokens) of what the runtime talks to. Empty string: not deployed."""

    upload_bucket: str
    processing_bucket: str
    chat_topic_arn: str
    websocket_endpoint: str
    cognito_user_pool_id: str
    cognito_client_id: str
    pg_host: str = ""
    pg_port: str = str(PG_PORT)  # the cluster endpoint's port token, so the DSN follows the cluster
    pg_secret_arn: str = ""
    pg_cluster_arn: str = ""
    opensearch_endpoint: str = ""
    sagemaker_embedding_endpoint: str = ""
    sagemaker_llm_endpoint: str = ""
    ingest_state_machine_arn: str = ""
    delete_state_machine_arn: str = ""
    # DynamoDB table names (CloudFormation-generated in AWS; empty: ``{table_prefix}-{suffix}``).
    catalog_table: str = ""
    chat_table: str = ""
    connections_table: str = ""


def _adapters(config: DeployConfig) -> dict[str, str]:
    return {
        "runtime": "aws",
        "vector_index": config.vector_index,
        "catalog": "dynamodb",
        "chat_history": "dynamodb",
        "connections": "dynamodb",
        "cancellations": "dynamodb",
        "blob_store": "s3",
        "bus": "sns",
        "workflow": "stepfunctions",
        "notifier": "apigw",
        "embedder": config.embedder,
        "chat_model": config.chat_model,
        "reranker": config.reranker,
        "summary_schedules": "eventbridge",
    }


def _models(config: DeployConfig, res: RuntimeResources) -> dict[str, str]:
    out: dict[str, str] = {}
    if config.bedrock.enabled:
        default, *more = config.bedrock.chat_model_ids
        out["bedrock_chat_model_id"] = default
        if more:  # a JSON array, as pydantic-settings reads list fields from the environment
            out["bedrock_chat_model_ids"] = json.dumps(more)
        out["bedrock_embedding_model_id"] = config.bedrock.embedding_model_id
        out["bedrock_embedding_dimensions"] = str(config.bedrock.embedding_dimensions)
        if config.bedrock.rerank_model_id:
            out["bedrock_rerank_model_arn"] = (
                f"arn:aws:bedrock:{config.region}::foundation-model/{config.bedrock.rerank_model_id}"
            )
    if res.sagemaker_embedding_endpoint:
        out["sagemaker_embedding_endpoint"] = res.sagemaker_embedding_endpoint
        out["sagemaker_embedding_dimensions"] = str(config.sagemaker.embedding_dimensions)
    if res.sagemaker_llm_endpoint:
        out["sagemaker_llm_endpoint"] = res.sagemaker_llm_endpoint
    return out


def _postgres(config: DeployConfig, res: RuntimeResources, mode: PostgresMode, resume_wait_s: int) -> dict[str, str]:
    if mode == "none" or not config.aurora.enabled:
        return {}
    if mode == "data_api":
        return {
            "pg_cluster_arn": res.pg_cluster_arn,
            "pg_secret_arn": res.pg_secret_arn,
            "pg_database": config.aurora.database_name,
            # How long a call waits for a paused cluster before answering 503 + Retry-After (DatabaseWaking).
            "pg_resume_wait_seconds": str(resume_wait_s),
        }
    dsn = (
        f"host={res.pg_host} port={res.pg_port} dbname={config.aurora.database_name} sslmode=require connect_timeout=30"
    )
    return {"pg_dsn": dsn, "pg_secret_arn": res.pg_secret_arn, "pg_pool_max": "2"}


def _spend(config: DeployConfig) -> dict[str, str]:
    """The per-user daily token budget; absent when the configuration sets none (no budget)."""
    budget = config.spend.daily_token_budget_per_user
    return {} if budget is None else {"daily_token_budget": str(budget)}


def quarry_environment(
    config: DeployConfig,
    res: RuntimeResources,
    *,
    postgres: PostgresMode,
    pg_resume_wait_s: int = 20,
    token_budget: bool = False,
) -> dict[str, str]:
    """``QUARRY_*`` variables for one consumer; ``postgres`` says how it reaches Aurora, if at all,
    ``pg_resume_wait_s`` how long it may wait for a paused cluster to wake (keep it inside its own deadline),
    and ``token_budget`` whether it admits or answers chats, and so enforces each user's daily token budget."""
    values: dict[str, str] = {
        **_adapters(config),
        "aws_region": config.region,
        "data_dir": "/tmp/quarry",  # the only writable place in Lambda
        "table_prefix": config.prefix,  # still the OpenSearch index prefix
        "catalog_table": res.catalog_table,
        "chat_table": res.chat_table,
        "connections_table": res.connections_table,
        "upload_bucket": res.upload_bucket,
        "processing_bucket": res.processing_bucket,
        "chat_topic_arn": res.chat_topic_arn,
        "websocket_endpoint": res.websocket_endpoint,
        "cognito_user_pool_id": res.cognito_user_pool_id,
        "cognito_client_id": res.cognito_client_id,
        # One source for both sides of the ingestion deadline: the Batch job's run time and the sweeper.
        "processing_timeout_seconds": str(config.ingestion.processing_timeout_seconds),
        "crawler_enabled": "true" if config.ingestion.crawler else "false",
        **_models(config, res),
        **_postgres(config, res, postgres, pg_resume_wait_s),
        **(_spend(config) if token_budget else {}),
    }
    if config.opensearch.enabled:
        values["opensearch_endpoint"] = res.opensearch_endpoint
        values["opensearch_serverless"] = "true"
    return {
        **{f"QUARRY_{key.upper()}": value for key, value in values.items() if value != ""},
        **workflow_environment(res.ingest_state_machine_arn, res.delete_state_machine_arn),
    }


def workflow_environment(ingest_arn: str, delete_arn: str) -> dict[str, str]:
    """The state machine ARNs, for consumers created before the machines (see ``Functions``)."""
    values = {"ingest_state_machine_arn": ingest_arn, "delete_state_machine_arn": delete_arn}
    return {f"QUARRY_{key.upper()}": value for key, value in values.items() if value}


def powertools_environment(service: str, *, log_level: str = "INFO") -> dict[str, str]:
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": log_level,
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",  # responses may hold user documents
        "POWERTOOLS_TRACER_CAPTURE_ERROR": "true",
    }
