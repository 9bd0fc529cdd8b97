"""The QUARRY_* environment built for Lambdas and Batch is exactly what quarry.settings.Settings reads."""

from __future__ import annotations

import pytest

from quarry.adapters.pgvector import PgVectorIndex
from quarry.adapters.rds_data import DataApiDatabase
from quarry.settings import Settings
from quarry.wiring import Adapters
from stacks.config import DeployConfig, load_config
from stacks.runtime_env import RuntimeResources, quarry_environment, workflow_environment

pytestmark = pytest.mark.cdk

RESOURCES = RuntimeResources(
    upload_bucket="up",
    processing_bucket="proc",
    chat_topic_arn="arn:aws:sns:us-east-1:1:bus",
    websocket_endpoint="https://ws.example/prod",
    cognito_user_pool_id="us-east-1_pool",
    cognito_client_id="client",
    pg_host="db.example",
    pg_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:db",
    pg_cluster_arn="arn:aws:rds:us-east-1:1:cluster:db",
    opensearch_endpoint="https://aoss.example",
    ingest_state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:ingest",
    delete_state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:delete",
)


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_every_variable_is_a_settings_field() -> None:
    fields = set(Settings.model_fields)
    for config in (DeployConfig(), load_config({"opensearch": {"enabled": True}, "aurora": {"access": "data_api"}})):
        for mode in ("psycopg", "data_api", "none"):
            env = quarry_environment(config, RESOURCES, postgres=mode)
            unknown = {k.removeprefix("QUARRY_").lower() for k in env} - fields
            assert not unknown, unknown


def test_settings_read_the_aws_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    env = quarry_environment(DeployConfig(), RESOURCES, postgres="psycopg")
    s = _settings(env, monkeypatch)
    assert s.runtime.value == "aws"
    assert (s.catalog, s.chat_history, s.connections, s.blob_store) == ("dynamodb", "dynamodb", "dynamodb", "s3")
    assert (s.bus, s.workflow, s.notifier) == ("sns", "stepfunctions", "apigw")
    assert (s.vector_index, s.embedder, s.chat_model) == ("pgvector", "bedrock", "bedrock")
    assert s.pg_dsn.startswith("host=db.example port=5432 dbname=quarry sslmode=require")
    assert s.pg_secret_arn == RESOURCES.pg_secret_arn
    assert s.upload_bucket == "up" and s.table_prefix == "quarry"
    assert s.ingest_state_machine_arn.endswith(":ingest") and s.delete_state_machine_arn.endswith(":delete")
    assert str(s.data_dir) == "/tmp/quarry"


def test_consumers_without_postgres_get_no_credentials() -> None:
    env = quarry_environment(DeployConfig(), RESOURCES, postgres="none")
    assert "QUARRY_PG_DSN" not in env and "QUARRY_PG_SECRET_ARN" not in env


def test_data_api_consumers_get_the_cluster_not_a_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    env = quarry_environment(DeployConfig(), RESOURCES, postgres="data_api")
    assert env["QUARRY_PG_CLUSTER_ARN"] == RESOURCES.pg_cluster_arn
    assert "QUARRY_PG_DSN" not in env
    # ... and the composition root turns them into a pgvector index over the Data API (no psycopg pool).
    adapters = Adapters(_settings(env, monkeypatch))
    try:
        index = adapters.vector_index
        assert isinstance(index, PgVectorIndex) and isinstance(index.database, DataApiDatabase)
        assert index.database.resource_arn == RESOURCES.pg_cluster_arn
        assert index.database.secret_arn == RESOURCES.pg_secret_arn
        assert index.database.database == "quarry"
        assert "pg_pool" not in vars(adapters)  # the cached_property was never built
    finally:
        adapters.close()


def test_models_follow_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(
        {
            "opensearch": {"enabled": True},
            "default_vector_index": "opensearch",
            "sagemaker": {"embedding_endpoint": True},
            "bedrock": {"rerank_model_id": "cohere.rerank-v3-5:0"},
        }
    )
    res = RuntimeResources(**{**RESOURCES.__dict__, "sagemaker_embedding_endpoint": "quarry-embedding"})
    s = _settings(quarry_environment(config, res, postgres="none"), monkeypatch)
    assert (s.vector_index, s.embedder, s.reranker) == ("opensearch", "sagemaker", "sagemaker")
    assert s.opensearch_endpoint == "https://aoss.example" and s.opensearch_serverless
    assert s.sagemaker_embedding_endpoint == "quarry-embedding"


def test_workflow_environment_skips_missing_machines() -> None:
    assert workflow_environment("arn:ingest", "") == {"QUARRY_INGEST_STATE_MACHINE_ARN": "arn:ingest"}
