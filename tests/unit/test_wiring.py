"""The composition root: registries pick adapters from Settings; the Lambda path stays light."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from quarry.errors import InvalidInput
from quarry.settings import MissingSetting, Settings
from quarry.wiring import Adapters

AWS_ENV = {
    "QUARRY_RUNTIME": "aws",
    "QUARRY_CATALOG": "dynamodb",
    "QUARRY_CHAT_HISTORY": "dynamodb",
    "QUARRY_CONNECTIONS": "dynamodb",
    "QUARRY_BLOB_STORE": "s3",
    "QUARRY_BUS": "sns",
    "QUARRY_WORKFLOW": "stepfunctions",
    "QUARRY_NOTIFIER": "apigw",
    "QUARRY_EMBEDDER": "bedrock",
    "QUARRY_CHAT_MODEL": "bedrock",
    "QUARRY_VECTOR_INDEX": "opensearch",
    "QUARRY_UPLOAD_BUCKET": "uploads",
    "QUARRY_PROCESSING_BUCKET": "processing",
    "QUARRY_CHAT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:chat",
    "QUARRY_INGEST_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:ingest",
    "QUARRY_DELETE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:delete",
    "QUARRY_WEBSOCKET_ENDPOINT": "https://abc.execute-api.us-east-1.amazonaws.com/prod",
    "QUARRY_OPENSEARCH_ENDPOINT": "https://search-quarry.us-east-1.es.amazonaws.com",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


DATA_API_ENV = {
    "QUARRY_VECTOR_INDEX": "pgvector",
    "QUARRY_PG_CLUSTER_ARN": "arn:aws:rds:us-east-1:123456789012:cluster:quarry",
    "QUARRY_PG_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:quarry-db",
    "QUARRY_PG_DATABASE": "quarry",
}


@pytest.mark.parametrize(
    ("extra", "index"), [({}, "OpenSearchIndex"), (DATA_API_ENV, "PgVectorIndex")], ids=["opensearch", "data-api"]
)
def test_aws_configuration_builds_every_service_without_heavy_imports(extra: dict[str, str], index: str) -> None:
    """What a Lambda cold start does: build all services from env, import no torch/llama.cpp/unstructured.

    With pgvector over the RDS Data API not even psycopg is loaded (nor a connection opened: no server here).
    """
    script = textwrap.dedent(
        """
        import json, sys
        from quarry.wiring import build_services
        services = build_services()
        a = services.adapters
        ports = ["catalog", "chat_history", "connections", "blob_store", "vector_index", "bus", "workflow",
                 "notifier"]
        kinds = {port: type(getattr(a, port)).__name__ for port in ports}
        kinds["embedder"] = type(services.models.embedders.get()).__name__
        kinds["chat_model"] = type(services.models.chat_models.get()).__name__
        heavy = sorted(m for m in ("torch", "llama_cpp", "unstructured", "sentence_transformers", "transformers",
                                   "psycopg") if m in sys.modules)
        print(json.dumps({"kinds": kinds, "heavy": heavy}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**AWS_ENV, **extra, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["kinds"] == {
        "catalog": "DynamoCatalog",
        "chat_history": "DynamoChatHistory",
        "connections": "DynamoConnections",
        "blob_store": "S3BlobStore",
        "vector_index": index,
        "bus": "SnsBus",
        "workflow": "StepFunctionsWorkflow",
        "notifier": "ApiGatewayNotifier",
        "embedder": "BedrockEmbedder",
        "chat_model": "BedrockChatModel",
    }


def test_unknown_adapter_name_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    adapters = Adapters(Settings(data_dir=tmp_path, catalog="cassandra"))
    with pytest.raises(InvalidInput, match="unknown catalog adapter 'cassandra'"):
        adapters.catalog  # noqa: B018


def test_models_registry_describes_the_local_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    described = Adapters(Settings(data_dir=tmp_path)).models.describe()
    assert [m["id"] for m in described["embeddings"]] == ["all-MiniLM-L6-v2"]
    assert described["embeddings"][0]["dimensions"] == 384
    assert [m["provider"] for m in described["llms"]] == ["llama.cpp"]
    assert described["rerankers"] == []


@pytest.mark.parametrize(
    ("bedrock", "offered"),
    [
        ({}, ["quarry-llm"]),
        (
            {
                "QUARRY_BEDROCK_CHAT_MODEL_ID": "amazon.nova-lite-v1:0",
                "QUARRY_BEDROCK_CHAT_MODEL_IDS": '["amazon.nova-pro-v1:0"]',
            },
            ["quarry-llm", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"],
        ),
    ],
)
def test_a_sagemaker_llm_is_the_default_and_bedrock_models_the_deployment_enables_are_offered(
    bedrock: dict[str, str], offered: list[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "QUARRY_CHAT_MODEL": "sagemaker",
        "QUARRY_SAGEMAKER_LLM_ENDPOINT": "quarry-llm",
        **bedrock,
    }.items():
        monkeypatch.setenv(name, value)
    llms = Adapters(Settings(data_dir=tmp_path)).models.describe()["llms"]
    assert [m["id"] for m in llms] == offered
    assert [m["id"] for m in llms if m.get("default")] == ["quarry-llm"]


def test_dynamodb_tables_default_to_the_prefix_and_follow_deployed_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    aws: dict[str, Any] = {port: "dynamodb" for port in ("catalog", "chat_history", "connections", "cancellations")}
    local = Adapters(Settings(data_dir=tmp_path, table_prefix="demo", **aws))  # create_tables' names
    assert [local.catalog.table, local.chat_history.table, local.connections.table, local.cancellations.table] == [  # type: ignore[attr-defined]
        "demo-catalog",
        "demo-chat",
        "demo-connections",
        "demo-connections",
    ]
    deployed = Adapters(
        Settings(
            data_dir=tmp_path, catalog_table="Q-Catalog-X", chat_table="Q-Chat-Y", connections_table="Q-Conn-Z", **aws
        )
    )
    assert [deployed.catalog.table, deployed.chat_history.table, deployed.connections.table] == [  # type: ignore[attr-defined]
        "Q-Catalog-X",
        "Q-Chat-Y",
        "Q-Conn-Z",
    ]
    assert deployed.cancellations.table == "Q-Conn-Z"  # type: ignore[attr-defined]


def test_sagemaker_embedder_dimensions_are_a_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for dimensions in (384, 1024):
        settings = Settings(
            data_dir=tmp_path,
            embedder="sagemaker",
            sagemaker_embedding_endpoint="e",
            sagemaker_embedding_dimensions=dimensions,
        )
        models = Adapters(settings).models
        assert models.describe()["embeddings"][0]["dimensions"] == dimensions
        assert models.embedders.get().dimensions == dimensions  # no `info` request to the endpoint needed
    assert Settings(data_dir=tmp_path).sagemaker_embedding_dimensions == 384


def test_a_function_without_postgres_settings_never_builds_the_vector_index() -> None:
    """ws_authorizer, ws_connect, ws_message, ingest_trigger and the sweeper get no Postgres variables: building
    their services must not reach for a database (it used to try to start an embedded PostgreSQL in Lambda)."""
    script = textwrap.dedent(
        """
        import json
        from quarry.wiring import build_services
        services = build_services()
        services.documents, services.ingestion, services.search, services.workspaces, services.chat_stream
        print(json.dumps({"built": "vector_index" in services.adapters.__dict__}))
        """
    )
    env = {
        **AWS_ENV,
        "QUARRY_VECTOR_INDEX": "pgvector",
        "QUARRY_DATA_DIR": "/nonexistent/quarry",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"built": False}


@pytest.mark.parametrize(
    ("missing", "port"),
    [
        ("QUARRY_UPLOAD_BUCKET", "blob_store"),
        ("QUARRY_CHAT_TOPIC_ARN", "bus"),
        ("QUARRY_WEBSOCKET_ENDPOINT", "notifier"),
    ],
)
def test_a_deployment_that_forgot_a_setting_says_which(
    missing: str, port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(missing)
    adapters = Adapters(Settings())
    with pytest.raises(MissingSetting, match=f"{missing} is not set"):
        getattr(adapters, port)


def test_aws_never_starts_an_embedded_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("QUARRY_VECTOR_INDEX", "pgvector")
    monkeypatch.setenv("QUARRY_DATA_DIR", "/nonexistent/quarry")
    with pytest.raises(MissingSetting, match="QUARRY_PG_DSN is not set"):
        Adapters(Settings()).vector_index  # noqa: B018
    monkeypatch.setenv("QUARRY_PG_CLUSTER_ARN", "arn:aws:rds:us-east-1:123456789012:cluster:db")
    with pytest.raises(MissingSetting, match="QUARRY_PG_SECRET_ARN is not set"):
        Adapters(Settings()).vector_index  # noqa: B018
