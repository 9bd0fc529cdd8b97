"""The composition root: registries pick adapters from Settings; the Lambda path stays light."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from quarry import model_catalogue, wiring
from quarry import settings as quarry_settings
from quarry.adapters import local_workflow
from quarry.auth import TokenVerifier
from quarry.errors import InvalidInput
from quarry.models import Chunk, Document, DocumentSource, Role, Workspace
from quarry.ports import ChatTurn
from quarry.protocol import ChatAction, client_message_adapter
from quarry.services.chat import ChatRequest
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.summaries import SummarySpec
from quarry.settings import MissingSetting, Settings
from quarry.summary_models import SummaryStatus
from quarry.wiring import Adapters, Services, build_services
from tests.fakes import (
    FakeBlobStore,
    FakeCatalog,
    FakeChatHistory,
    FakeConnections,
    FakeSummarySchedules,
    FakeSummaryStore,
    FakeVectorIndex,
    HashEmbedder,
    RecordingWorkflow,
    ScriptedChatModel,
)

USER = "alice"

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


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("QUARRY_CATALOG", "cassandra", "'sql' or 'dynamodb'"),
        ("QUARRY_VECTOR_INDEX", "faiss", "'pgvector' or 'opensearch'"),
        ("QUARRY_EMBEDDER", "openai", "'minilm', 'sagemaker' or 'bedrock'"),
        ("QUARRY_RERANKER", "cohere", "'none', 'cross-encoder', 'sagemaker' or 'bedrock'"),
        ("QUARRY_WORKFLOW", "airflow", "'local' or 'stepfunctions'"),
    ],
)
def test_an_unknown_adapter_name_fails_settings_validation(
    variable: str, value: str, accepted: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A deployment with a typo in an adapter variable fails when its Settings are read, naming the field."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as failure:
        Settings(data_dir=tmp_path)
    message = str(failure.value)
    field = variable.removeprefix("QUARRY_").lower()
    assert f"{field}\n  Input should be {accepted}" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("literal", "registry"),
    [
        (quarry_settings.VectorIndexName, wiring.VECTOR_INDEXES),
        (quarry_settings.CatalogName, wiring.CATALOGS),
        (quarry_settings.ChatHistoryName, wiring.CHAT_HISTORIES),
        (quarry_settings.ChatHistoryName, wiring.USAGE_LEDGERS),
        (quarry_settings.ConnectionsName, wiring.CONNECTIONS),
        (quarry_settings.BlobStoreName, wiring.BLOB_STORES),
        (quarry_settings.BusName, wiring.BUSES),
        (quarry_settings.WorkflowEngineName, wiring.WORKFLOWS),
        (quarry_settings.NotifierName, wiring.NOTIFIERS),
        (quarry_settings.CancellationsName, wiring.CANCELLATIONS),
        (quarry_settings.ParserName, wiring.PARSERS),
        (quarry_settings.CatalogName, wiring.SUMMARY_STORES),
        (quarry_settings.SummarySchedulesName, wiring.SUMMARY_SCHEDULES),
        (quarry_settings.EmbedderName, model_catalogue.EMBEDDERS),
        (quarry_settings.ChatModelName, model_catalogue.CHAT_MODELS),
        (quarry_settings.RerankerName, model_catalogue.RERANKERS),
    ],
)
def test_every_name_settings_accept_has_a_factory_and_no_other(literal: Any, registry: dict[str, Any]) -> None:
    assert sorted(get_args(literal)) == sorted(registry)


def test_a_name_that_skipped_validation_is_still_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``model_copy(update=...)`` (the CLI's overrides) does not validate: the registry lookup still names it."""
    adapters = Adapters(Settings(data_dir=tmp_path).model_copy(update={"catalog": "cassandra"}))
    with pytest.raises(InvalidInput, match="unknown catalog adapter 'cassandra'"):
        adapters.catalog  # noqa: B018
    models = Adapters(Settings(data_dir=tmp_path).model_copy(update={"chat_model": "gpt"}))
    with pytest.raises(InvalidInput, match="unknown chat_model adapter 'gpt'"):
        models.models  # noqa: B018


def test_an_override_for_no_port_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="unknown adapter override\\(s\\): catlog"):
        Adapters(Settings(data_dir=tmp_path), overrides={"catlog": FakeCatalog()})  # type: ignore[arg-type]
    catalog = FakeCatalog()
    assert Adapters(Settings(data_dir=tmp_path), overrides={"catalog": catalog}).catalog is catalog


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


# ============================================================================ settings that reach their use


def _services_over_fakes(settings: Settings, chat: ScriptedChatModel) -> Services:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo(chat.name, chat.name, "test"), lambda: chat)
    return build_services(
        settings,
        overrides={
            "catalog": FakeCatalog(),
            "chat_history": FakeChatHistory(),
            "connections": FakeConnections(),
            "vector_index": FakeVectorIndex(),
            "blob_store": FakeBlobStore(),
            "workflow": RecordingWorkflow(),
            "models": models,
            "summaries": FakeSummaryStore(),
            "summary_schedules": FakeSummarySchedules(),
        },
    )


def _indexed_workspace(services: Services, passages: list[str]) -> Workspace:
    workspace = Workspace(id="ws", name="handbook", owner=USER, embedding_model="hash-16", dimensions=16)
    services.adapters.catalog.put_workspace(workspace)
    services.adapters.vector_index.ensure_workspace(workspace.id, dimensions=16)
    embedder = HashEmbedder()
    for n, text in enumerate(passages):
        document = Document(
            id=f"d{n}", workspace_id=workspace.id, name=f"part-{n}.txt", source=DocumentSource.TEXT, chunk_count=1
        )
        services.adapters.catalog.put_document(document)
        chunk = Chunk(workspace.id, document.id, 0, text, 0, len(text), embedding=tuple(embedder.embed_query(text)))
        services.adapters.vector_index.replace_document(workspace.id, document.id, [chunk])
    return workspace


def _sources_given(call: Any) -> list[str]:
    return re.findall(r"^\[(\d+)\] ", call.turns[-1].content, flags=re.MULTILINE)


@pytest.mark.parametrize("context_chunks", [2, 5, 7])
def test_context_chunks_is_how_many_sources_a_chat_gives_the_model(tmp_path: Path, context_chunks: int) -> None:
    chat = ScriptedChatModel("Employees get 27 days of annual leave [1].", "Again [1].")
    services = _services_over_fakes(Settings(data_dir=tmp_path, context_chunks=context_chunks), chat)
    passages = [f"Annual leave policy, part {n}: employees receive annual leave days." for n in range(9)]
    workspace = _indexed_workspace(services, passages)
    question = "How many annual leave days do employees receive?"

    services.chat.answer(ChatRequest(user=USER, text=question, workspace_id=workspace.id))
    services.chat.answer(ChatRequest(user=USER, text=question, workspace_id=workspace.id, top_k=1))

    unasked, asked = chat.calls
    assert _sources_given(unasked) == [str(n) for n in range(1, context_chunks + 1)]
    assert _sources_given(asked) == ["1"]  # a request that names its top_k gets what it asks for


def test_a_chat_message_without_top_k_leaves_it_to_the_deployment() -> None:
    chat_action = client_message_adapter.validate_python({"action": "chat", "text": "hi"})
    assert isinstance(chat_action, ChatAction)
    assert ChatRequest.of(USER, chat_action).top_k is None
    asked = ChatAction(action="chat", text="hi", top_k=3)
    assert ChatRequest.of(USER, asked).top_k == 3
    assert Settings().context_chunks == 5  # today's number of sources by default


def test_llm_max_tokens_caps_what_the_local_model_writes(tmp_path: Path) -> None:
    class Llama:  # llama-cpp-python's Llama, as far as the adapter uses it
        def __init__(self) -> None:
            self.max_tokens: list[int] = []

        def tokenize(self, data: bytes, *, add_bos: bool, special: bool) -> list[int]:
            return list(range(len(data.split())))

        def create_chat_completion(self, *, max_tokens: int, **_: Any) -> Iterator[dict[str, Any]]:
            self.max_tokens.append(max_tokens)
            yield {"choices": [{"delta": {"content": "ok"}}]}

    model = Adapters(Settings(data_dir=tmp_path, llm_max_tokens=7)).models.chat_models.get()
    llama = Llama()
    model._llm = llama  # type: ignore[attr-defined]  # no GGUF needed: the request is what is checked
    turns = [ChatTurn(Role.USER, "hello there")]
    for asked in (384, 5):
        list(model.stream(turns, max_tokens=asked))
    assert llama.max_tokens == [7, 5]
    default = Adapters(Settings(data_dir=tmp_path)).models.chat_models.get()
    assert default.max_tokens == Settings().llm_max_tokens == 384  # type: ignore[attr-defined]


def test_the_local_workflow_runs_the_services_use_cases(tmp_path: Path) -> None:
    """The steps reach the LocalWorkflow at construction: deleting a workspace purges it (inline here), its
    summary jobs, their schedules and their stored runs with it."""
    settings = Settings(data_dir=tmp_path, local_workflow_background=False)
    schedules = FakeSummarySchedules()
    models = ModelRegistry()
    chat = ScriptedChatModel()
    models.chat_models.register(ModelInfo(chat.name, chat.name, "test"), lambda: chat)  # a summary run names it
    services = build_services(
        settings,
        overrides={
            "catalog": FakeCatalog(),
            "chat_history": FakeChatHistory(),
            "connections": FakeConnections(),
            "vector_index": FakeVectorIndex(),
            "blob_store": FakeBlobStore(),
            "models": models,
            "summaries": FakeSummaryStore(),
            "summary_schedules": schedules,
        },
    )
    try:
        assert type(services.adapters.workflow).__name__ == "LocalWorkflow"
        workspace = Workspace(id="ws", name="w", owner=USER, embedding_model="hash-16", dimensions=16)
        services.adapters.catalog.put_workspace(workspace)
        services.adapters.vector_index.ensure_workspace("ws", dimensions=16)
        job = services.summaries.create(USER, "ws", SummarySpec(kind="themes", schedule="rate(1 day)"))
        assert services.summaries.get(USER, "ws", job.id).status is SummaryStatus.NO_DOCUMENTS  # it ran, inline
        blobs = services.adapters.blob_store
        assert [key for key in blobs.blobs if key.startswith("summaries/ws/")]  # type: ignore[attr-defined]
        assert schedules.schedules == {("ws", job.id): "rate(1 day)"}

        services.workspaces.delete(USER, "ws")

        assert services.adapters.catalog.get_workspace("ws") is None
        assert "ws" not in services.adapters.vector_index.workspaces  # type: ignore[attr-defined]
        assert services.adapters.summaries.list_jobs("ws").items == []
        assert schedules.schedules == {} and ("ws", job.id) in schedules.deleted
        assert not [key for key in blobs.blobs if key.startswith("summaries/ws/")]  # type: ignore[attr-defined]
    finally:
        services.close()


def test_local_workflow_does_not_know_the_composition_root() -> None:
    """The steps come in through the constructor: no import of quarry.wiring, not even for type checking."""
    source = Path(local_workflow.__file__).read_text()
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {name for name in imported if name and name.startswith("quarry.wiring")}
    assert not hasattr(local_workflow.LocalWorkflow, "bind")
    assert not hasattr(local_workflow.LocalWorkflow, "wait_idle")


def test_the_token_verifier_is_a_typed_service_built_once(tmp_path: Path) -> None:
    services = build_services(Settings(data_dir=tmp_path), overrides={"catalog": FakeCatalog()})
    assert isinstance(services.token_verifier, TokenVerifier)
    assert services.token_verifier is services.token_verifier
    assert not hasattr(services, "extras")
