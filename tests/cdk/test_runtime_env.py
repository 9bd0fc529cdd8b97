"""The QUARRY_* environment built for Lambdas and Batch is exactly what quarry.settings.Settings reads."""

from __future__ import annotations

import pytest

from quarry.adapters.pgvector import PgVectorIndex
from quarry.adapters.rds_data import DataApiDatabase
from quarry.settings import Settings
from quarry.wiring import Adapters
from stacks.config import DeployConfig, load_config
from stacks.runtime_env import RuntimeResources, quarry_environment, workflow_environment
from tests.cdk.cdk_synth import Synth, function, logical_id

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
            "sagemaker": {"embedding_endpoint": True, "cross_encoder": True},
        }
    )
    res = RuntimeResources(**{**RESOURCES.__dict__, "sagemaker_embedding_endpoint": "quarry-embedding"})
    s = _settings(quarry_environment(config, res, postgres="none"), monkeypatch)
    assert (s.vector_index, s.embedder, s.reranker) == ("opensearch", "sagemaker", "sagemaker")
    assert s.opensearch_endpoint == "https://aoss.example" and s.opensearch_serverless
    assert s.sagemaker_embedding_endpoint == "quarry-embedding"


def test_workflow_environment_skips_missing_machines() -> None:
    assert workflow_environment("arn:ingest", "") == {"QUARRY_INGEST_STATE_MACHINE_ARN": "arn:ingest"}


def _plain_env(synth: Synth, name: str) -> dict[str, str]:
    """A synthesized function's variables that are literal strings (names and ARNs are CloudFormation tokens)."""
    env = function(synth, name)["Properties"]["Environment"]["Variables"]
    return {k: v for k, v in env.items() if isinstance(v, str)}


def test_every_configured_chat_model_is_offered(vpc_synth: Synth, monkeypatch: pytest.MonkeyPatch) -> None:
    """All of bedrock.chat_model_ids (granted in IAM) reach the runtime's model registry, the first the default."""
    configured = list(vpc_synth.config.bedrock.chat_model_ids)
    assert len(configured) == 3
    for name in ("rest_api", "chat_worker"):  # GET /models and the chat itself
        adapters = Adapters(_settings(_plain_env(vpc_synth, name), monkeypatch))
        llms = adapters.models.describe()["llms"]
        assert [m["id"] for m in llms] == configured, name
        assert [m["default"] for m in llms] == [True, False, False]
        assert adapters.models.chat_models.get(configured[2]).name == configured[2]


def test_one_chat_model_sets_no_list(default_synth: Synth) -> None:
    env = _plain_env(default_synth, "chat_worker")
    assert env["QUARRY_BEDROCK_CHAT_MODEL_ID"] == "amazon.nova-lite-v1:0"
    assert "QUARRY_BEDROCK_CHAT_MODEL_IDS" not in env


def test_sagemaker_embedding_dimensions_come_from_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config({"sagemaker": {"embedding_endpoint": True, "embedding_dimensions": 768}})
    res = RuntimeResources(**{**RESOURCES.__dict__, "sagemaker_embedding_endpoint": "quarry-embedding"})
    env = quarry_environment(config, res, postgres="none")
    assert env["QUARRY_SAGEMAKER_EMBEDDING_DIMENSIONS"] == "768"
    models = Adapters(_settings(env, monkeypatch)).models
    assert [m["dimensions"] for m in models.describe()["embeddings"]] == [768]  # new workspaces' vector size
    assert models.embedders.get().dimensions == 768  # known without asking the endpoint


def test_full_deployment_passes_the_endpoint_dimensions(full_synth: Synth) -> None:
    env = _plain_env(full_synth, "rest_api")
    assert env["QUARRY_SAGEMAKER_EMBEDDING_DIMENSIONS"] == str(full_synth.config.sagemaker.embedding_dimensions)


def test_the_crawler_switch_reaches_the_runtime(default_synth: Synth, full_synth: Synth) -> None:
    for synth, enabled in ((default_synth, "false"), (full_synth, "true")):
        assert synth.config.ingestion.crawler is (enabled == "true")
        for name in ("rest_api", "ingest_status"):
            assert _plain_env(synth, name)["QUARRY_CRAWLER_ENABLED"] == enabled
        job = next(iter(synth.resources("AWS::Batch::JobDefinition").values()))["Properties"]
        assert {"Name": "QUARRY_CRAWLER_ENABLED", "Value": enabled} in job["ContainerProperties"]["Environment"]


def test_the_runtime_uses_the_tables_cloudformation_named(
    default_synth: Synth, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = function(default_synth, "rest_api")["Properties"]["Environment"]["Variables"]
    for key, table in default_synth.stack.storage.tables.items():
        assert env[f"QUARRY_{key.upper()}_TABLE"] == {"Ref": logical_id(default_synth, table)}
    # ... and the composition root points every DynamoDB adapter at them
    names = {"QUARRY_CATALOG_TABLE": "Quarry-Catalog-1A", "QUARRY_CHAT_TABLE": "Quarry-Chat-2B"}
    names["QUARRY_CONNECTIONS_TABLE"] = "Quarry-Connections-3C"
    adapters = Adapters(_settings(quarry_environment(DeployConfig(), RESOURCES, postgres="none") | names, monkeypatch))
    assert adapters.catalog.table == "Quarry-Catalog-1A"  # type: ignore[attr-defined]
    assert adapters.chat_history.table == "Quarry-Chat-2B"  # type: ignore[attr-defined]
    assert adapters.connections.table == "Quarry-Connections-3C"  # type: ignore[attr-defined]
    assert adapters.cancellations.table == "Quarry-Connections-3C"  # type: ignore[attr-defined]


def test_each_function_waits_for_a_paused_cluster_within_its_own_deadline(default_synth: Synth) -> None:
    """The REST API gives up inside API Gateway's 29 s (503 + Retry-After); background work waits longer."""
    assert default_synth.config.aurora.access == "data_api"
    waits = {}
    for name in ("rest_api", "chat_worker", "ingest_status", "workspace_setup"):
        fn = function(default_synth, name)["Properties"]
        waits[name] = int(fn["Environment"]["Variables"]["QUARRY_PG_RESUME_WAIT_SECONDS"])
        assert waits[name] < fn["Timeout"], name
    assert waits["rest_api"] < 29
    assert waits["ingest_status"] > waits["rest_api"] and waits["chat_worker"] > waits["rest_api"]
    assert "QUARRY_PG_RESUME_WAIT_SECONDS" not in function(default_synth, "ws_connect")["Properties"].get(
        "Environment", {}
    ).get("Variables", {})
