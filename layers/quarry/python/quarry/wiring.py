"""Composition root: Settings -> adapters -> services. One place, explicit, cached per process.

Each port has a registry of named factories (``Settings.<port>`` picks one).
Factories import their technology lazily, so a Lambda that runs on DynamoDB,
S3 and Bedrock never imports torch, llama.cpp or unstructured.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from quarry.errors import Forbidden, InvalidInput
from quarry.models import ChunkingConfig, Document
from quarry.ports import (
    BlobStore,
    Bus,
    Cancellations,
    Catalog,
    ChatHistory,
    Connections,
    DocumentParser,
    Notifier,
    UsageLedger,
    VectorIndex,
    Workflow,
)
from quarry.services.access import WorkspaceAccess
from quarry.services.chat import ChatService
from quarry.services.chat_stream import ChatStreamService
from quarry.services.documents import DocumentService
from quarry.services.feedback import FeedbackService
from quarry.services.ingestion import Chunker, IngestionService, PageSource
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.search import RetrievalConfig, SearchService
from quarry.services.sessions import SessionService
from quarry.services.status import DocumentStatusPublisher
from quarry.services.usage import UsageService
from quarry.services.workspaces import WorkspaceService
from quarry.settings import Runtime, Settings

__all__ = ["Adapters", "Services", "build_services", "get_services", "install_services", "reset_services"]


class Adapters:
    """Builds each adapter once, from Settings, through the registries below."""

    def __init__(self, settings: Settings, *, overrides: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self._overrides = overrides or {}
        self._closers: list[Callable[[], object]] = []
        self._lock = threading.RLock()

    def on_close(self, fn: Callable[[], object]) -> None:
        self._closers.append(fn)

    def close(self) -> None:
        while self._closers:
            with contextlib.suppress(Exception):  # best effort: one failing closer must not stop the rest
                self._closers.pop()()

    def _pick(self, port: str, registry: dict[str, Callable[[Adapters], Any]]) -> Any:
        if port in self._overrides:
            return self._overrides[port]
        name = getattr(self.settings, port)
        factory = registry.get(name)
        if factory is None:
            raise InvalidInput(f"unknown {port} adapter {name!r} (known: {', '.join(sorted(registry))})")
        return factory(self)

    # ------------------------------------------------------------------ shared infrastructure
    @cached_property
    def pg_dsn(self) -> str:
        if self.settings.pg_dsn:
            return self.settings.pg_dsn
        if self.settings.runtime == Runtime.AWS:  # never start an embedded server inside Lambda or Batch
            return self.settings.require("pg_dsn", "Postgres connection (or QUARRY_PG_CLUSTER_ARN for the Data API)")
        from quarry.adapters.embedded_pg import EmbeddedPostgres

        server = EmbeddedPostgres.from_settings(self.settings)
        dsn = server.start()
        self.on_close(server.stop)
        return dsn

    @cached_property
    def pg_pool(self) -> Any:
        from quarry.adapters.pg import pool_from_settings

        settings = self.settings
        if not settings.pg_dsn:
            settings = settings.model_copy(update={"pg_dsn": self.pg_dsn})
        pool = pool_from_settings(settings)
        self.on_close(pool.close)
        return pool

    @cached_property
    def local_secret(self) -> bytes:
        """HMAC key of the local runtime (upload policies, dev tokens): kept under data_dir."""
        if self.settings.dev_token_secret:
            return self.settings.dev_token_secret.encode()
        path = self.settings.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    # ------------------------------------------------------------------ ports
    @cached_property
    def catalog(self) -> Catalog:
        return self._pick("catalog", CATALOGS)

    @cached_property
    def chat_history(self) -> ChatHistory:
        return self._pick("chat_history", CHAT_HISTORIES)

    @cached_property
    def connections(self) -> Connections:
        return self._pick("connections", CONNECTIONS)

    @cached_property
    def usage(self) -> UsageLedger:
        """Usage counters live beside the chat history: same database, or the same DynamoDB table."""
        if "usage" in self._overrides:
            return self._overrides["usage"]
        if "chat_history" in self._overrides:  # an injected history (tests, tools) has no counters of its own
            from quarry.adapters.memory_usage import InMemoryUsageLedger

            return InMemoryUsageLedger()
        factory = USAGE_LEDGERS.get(self.settings.chat_history)
        if factory is None:
            raise InvalidInput(f"no usage ledger beside chat history {self.settings.chat_history!r}")
        return factory(self)

    @cached_property
    def blob_store(self) -> BlobStore:
        return self._pick("blob_store", BLOB_STORES)

    @cached_property
    def vector_index(self) -> VectorIndex:
        return self._pick("vector_index", VECTOR_INDEXES)

    @cached_property
    def bus(self) -> Bus:
        return self._pick("bus", BUSES)

    @cached_property
    def workflow(self) -> Workflow:
        return self._pick("workflow", WORKFLOWS)

    @cached_property
    def cancellations(self) -> Cancellations:
        return self._pick("cancellations", CANCELLATIONS)

    @cached_property
    def notifier(self) -> Notifier:
        return self._pick("notifier", NOTIFIERS)

    @cached_property
    def parser(self) -> DocumentParser:
        return self._pick("parser", PARSERS)

    @cached_property
    def models(self) -> ModelRegistry:
        if "models" in self._overrides:
            return self._overrides["models"]
        registry = ModelRegistry()
        for port, table in (("embedder", EMBEDDERS), ("chat_model", CHAT_MODELS), ("reranker", RERANKERS)):
            name = getattr(self.settings, port)
            if name not in table:
                raise InvalidInput(f"unknown {port} adapter {name!r} (known: {', '.join(sorted(table))})")
            table[name](self, registry)
        return registry

    @cached_property
    def tokenizer(self) -> Any:
        from quarry.text.tokens import HFTokenizer

        return HFTokenizer()

    def chunker_for(self, config: ChunkingConfig) -> Chunker:
        from quarry.text.chunking import RecursiveChunker

        return RecursiveChunker(self.tokenizer, config)

    @cached_property
    def crawler(self) -> PageSource | None:
        if "crawler" in self._overrides:
            return self._overrides["crawler"]
        if not self.settings.crawler_enabled:
            return None
        from quarry.text.website_source import CrawlerPageSource

        return CrawlerPageSource(allowed_hosts=self.settings.crawler_allowed_hosts)


# ============================================================================ registries
# Each factory takes the Adapters context; imports stay inside the factory.


def _sql_catalog(a: Adapters) -> Any:
    from quarry.adapters.sql_catalog import SqlCatalog

    return SqlCatalog(a.pg_pool)


def _sql_history(a: Adapters) -> Any:
    from quarry.adapters.sql_catalog import SqlChatHistory

    return SqlChatHistory(a.pg_pool)


def _sql_connections(a: Adapters) -> Any:
    from quarry.adapters.sql_catalog import SqlConnections

    return SqlConnections(a.pg_pool)


def _sql_usage(a: Adapters) -> Any:
    from quarry.adapters.sql_usage import SqlUsageLedger

    return SqlUsageLedger(a.pg_pool)


def _dynamo_usage(a: Adapters) -> Any:
    from quarry.adapters.dynamodb_usage import DynamoUsageLedger

    s = a.settings
    return _named(DynamoUsageLedger(s.table_prefix, region=s.aws_region), s.chat_table)


def _dynamo(kind: str) -> Callable[[Adapters], Any]:
    def build(a: Adapters) -> Any:
        from quarry.adapters import dynamodb

        s = a.settings
        cls, table = {
            "catalog": (dynamodb.DynamoCatalog, s.catalog_table),
            "history": (dynamodb.DynamoChatHistory, s.chat_table),
            "connections": (dynamodb.DynamoConnections, s.connections_table),
        }[kind]
        return _named(cls(s.table_prefix, region=s.aws_region), table)

    return build


def _named(adapter: Any, table: str) -> Any:
    """Point a DynamoDB adapter at the deployed table (CloudFormation's name) instead of ``{prefix}-{suffix}``."""
    if table:
        adapter.table = table
    return adapter


def _localfs(a: Adapters) -> Any:
    from quarry.adapters.localfs import LocalBlobStore

    return LocalBlobStore(a.settings.blob_dir, upload_url=a.settings.local_upload_url, secret=a.local_secret)


def _s3(a: Adapters) -> Any:
    from quarry.adapters.s3 import S3BlobStore

    return S3BlobStore(bucket=a.settings.require("upload_bucket", "s3 blob store"), region=a.settings.aws_region)


def _pgvector(a: Adapters) -> Any:
    from quarry.adapters.pgvector import PgVectorIndex

    settings = a.settings
    if settings.pg_cluster_arn:  # Lambdas outside the VPC: no psycopg, no pool
        from quarry.adapters.rds_data import DataApiDatabase

        return PgVectorIndex(
            DataApiDatabase(
                resource_arn=settings.pg_cluster_arn,
                secret_arn=settings.require("pg_secret_arn", "RDS Data API driver"),
                database=settings.require("pg_database", "RDS Data API driver"),
                region=settings.aws_region,
                resume_wait_seconds=settings.pg_resume_wait_seconds,
            )
        )
    from quarry.adapters.psycopg_database import PsycopgDatabase

    return PgVectorIndex(PsycopgDatabase(a.pg_pool))


def _opensearch(a: Adapters) -> Any:
    from quarry.adapters.opensearch import OpenSearchIndex

    return OpenSearchIndex.from_settings(a.settings)


def _local_bus(a: Adapters) -> Any:
    from quarry.local.bus import LocalBus

    bus = LocalBus(dead_letter_dir=a.settings.data_dir / "dead-letters")
    a.on_close(bus.close)
    return bus


def _sns(a: Adapters) -> Any:
    from quarry.adapters.sns_sqs import SnsBus

    return SnsBus(topic_arn=a.settings.require("chat_topic_arn", "sns bus"), region=a.settings.aws_region)


def _local_workflow(a: Adapters) -> Any:
    from quarry.adapters.local_workflow import LocalWorkflow

    workflow = LocalWorkflow(background=a.settings.local_workflow_background)
    a.on_close(workflow.close)
    return workflow


def _stepfunctions(a: Adapters) -> Any:
    from quarry.adapters.stepfunctions import StepFunctionsWorkflow

    return StepFunctionsWorkflow.from_settings(a.settings)


def _memory_cancellations(a: Adapters) -> Any:
    from quarry.local.cancellations import InMemoryCancellations

    return InMemoryCancellations()


def _dynamo_cancellations(a: Adapters) -> Any:
    from quarry.adapters.dynamodb import DynamoCancellations

    return _named(
        DynamoCancellations(a.settings.table_prefix, region=a.settings.aws_region), a.settings.connections_table
    )


def _local_notifier(a: Adapters) -> Any:
    from quarry.local.notifier import LocalNotifier

    return LocalNotifier()


def _apigw_notifier(a: Adapters) -> Any:
    from quarry.adapters.apigw_ws import ApiGatewayNotifier

    endpoint = a.settings.require("websocket_endpoint", "apigw notifier")
    return ApiGatewayNotifier(endpoint, connections=a.connections, region=a.settings.aws_region)


def _unstructured(a: Adapters) -> Any:
    from quarry.text.parsing import ArchiveLimits, UnstructuredParser

    limits = ArchiveLimits(
        max_expanded_bytes=a.settings.archive_max_expanded_mb * 1024 * 1024, max_ratio=a.settings.archive_max_ratio
    )
    return UnstructuredParser(max_bytes=a.settings.max_upload_bytes, archive_limits=limits)


def _minilm(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.st_models import SentenceTransformerEmbedder

    info = ModelInfo(
        id="all-MiniLM-L6-v2", name="all-MiniLM-L6-v2 (local)", provider="sentence-transformers", dimensions=384
    )
    registry.embedders.register(
        info,
        lambda: SentenceTransformerEmbedder(
            dimensions=384, batch_size=a.settings.embedding_batch_size, precision=a.settings.embedding_precision
        ),
        default=True,
    )


def _bedrock_embedder(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.bedrock import BedrockEmbedder

    s = a.settings
    info = ModelInfo(
        id=s.bedrock_embedding_model_id,
        name="Titan Text Embeddings v2",
        provider="bedrock",
        dimensions=s.bedrock_embedding_dimensions,
    )
    registry.embedders.register(info, lambda: BedrockEmbedder.from_settings(s), default=True)


def _sagemaker_embedder(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.sagemaker import SageMakerEmbedder

    s = a.settings
    dimensions = s.sagemaker_embedding_dimensions
    info = ModelInfo(
        id=s.embedding_model, name=f"{s.embedding_model} (SageMaker)", provider="sagemaker", dimensions=dimensions
    )

    def make() -> SageMakerEmbedder:
        embedder = SageMakerEmbedder.from_settings(s)
        embedder.dimensions = dimensions  # vectors of another size are refused as an upstream error
        return embedder

    registry.embedders.register(info, make, default=True)


def _llamacpp(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.llamacpp import LlamaCppChatModel

    s = a.settings
    info = ModelInfo(
        id="qwen2.5-coder-0.5b-instruct", name="Qwen2.5-Coder 0.5B Instruct (llama.cpp)", provider="llama.cpp"
    )
    registry.chat_models.register(
        info,
        lambda: LlamaCppChatModel(
            model_path=Path(s.llm_model_path) if s.llm_model_path else None,
            model_dir=s.model_dir,
            context_tokens=s.llm_context_tokens,
            threads=s.llm_threads,
        ),
        default=True,
    )


def _bedrock_chat(a: Adapters, registry: ModelRegistry) -> None:
    _register_bedrock_chat(a.settings, registry, default=True)


def _register_bedrock_chat(s: Settings, registry: ModelRegistry, *, default: bool) -> None:
    from quarry.adapters.bedrock import BedrockChatModel

    for model_id in dict.fromkeys([s.bedrock_chat_model_id, *s.bedrock_chat_model_ids]):
        info = ModelInfo(id=model_id, name=model_id, provider="bedrock")
        registry.chat_models.register(
            info,
            lambda m=model_id: BedrockChatModel(m, region=s.aws_region),  # type: ignore[misc]
            default=default and model_id == s.bedrock_chat_model_id,
        )


def _sagemaker_chat(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.sagemaker import SageMakerChatModel

    s = a.settings
    info = ModelInfo(id=s.sagemaker_llm_endpoint, name=f"{s.sagemaker_llm_endpoint} (SageMaker)", provider="sagemaker")
    registry.chat_models.register(info, lambda: SageMakerChatModel.from_settings(s), default=True)
    if "bedrock_chat_model_id" in s.model_fields_set:  # the deployment enables Bedrock too: offer its models
        _register_bedrock_chat(s, registry, default=False)


def _no_reranker(a: Adapters, registry: ModelRegistry) -> None:
    return None


def _cross_encoder(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.st_models import CrossEncoderReranker

    path = Path(a.settings.cross_encoder_path)
    if not a.settings.cross_encoder_path:
        raise InvalidInput("reranker 'cross-encoder' needs QUARRY_CROSS_ENCODER_PATH (a local CrossEncoder folder)")
    info = ModelInfo(id=path.name, name=f"{path.name} (cross-encoder)", provider="sentence-transformers")
    registry.rerankers.register(info, lambda: CrossEncoderReranker(path), default=True)


def _sagemaker_reranker(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.sagemaker import SageMakerReranker

    s = a.settings
    info = ModelInfo(id="cross-encoder", name="cross-encoder (SageMaker)", provider="sagemaker")
    registry.rerankers.register(info, lambda: SageMakerReranker.from_settings(s), default=True)


def _bedrock_reranker(a: Adapters, registry: ModelRegistry) -> None:
    from quarry.adapters.bedrock import BedrockReranker

    s = a.settings
    info = ModelInfo(id=s.bedrock_rerank_model_arn or "bedrock-rerank", name="Bedrock rerank", provider="bedrock")
    registry.rerankers.register(info, lambda: BedrockReranker.from_settings(s), default=True)


CATALOGS: dict[str, Callable[[Adapters], Any]] = {"sql": _sql_catalog, "dynamodb": _dynamo("catalog")}
CHAT_HISTORIES: dict[str, Callable[[Adapters], Any]] = {"sql": _sql_history, "dynamodb": _dynamo("history")}
USAGE_LEDGERS: dict[str, Callable[[Adapters], Any]] = {"sql": _sql_usage, "dynamodb": _dynamo_usage}
CONNECTIONS: dict[str, Callable[[Adapters], Any]] = {"sql": _sql_connections, "dynamodb": _dynamo("connections")}
BLOB_STORES: dict[str, Callable[[Adapters], Any]] = {"localfs": _localfs, "s3": _s3}
VECTOR_INDEXES: dict[str, Callable[[Adapters], Any]] = {"pgvector": _pgvector, "opensearch": _opensearch}
BUSES: dict[str, Callable[[Adapters], Any]] = {"local": _local_bus, "sns": _sns}
WORKFLOWS: dict[str, Callable[[Adapters], Any]] = {"local": _local_workflow, "stepfunctions": _stepfunctions}
CANCELLATIONS: dict[str, Callable[[Adapters], Any]] = {
    "memory": _memory_cancellations,
    "dynamodb": _dynamo_cancellations,
}
NOTIFIERS: dict[str, Callable[[Adapters], Any]] = {"local": _local_notifier, "apigw": _apigw_notifier}
PARSERS: dict[str, Callable[[Adapters], Any]] = {"unstructured": _unstructured}
EMBEDDERS: dict[str, Callable[[Adapters, ModelRegistry], None]] = {
    "minilm": _minilm,
    "bedrock": _bedrock_embedder,
    "sagemaker": _sagemaker_embedder,
}
CHAT_MODELS: dict[str, Callable[[Adapters, ModelRegistry], None]] = {
    "llamacpp": _llamacpp,
    "bedrock": _bedrock_chat,
    "sagemaker": _sagemaker_chat,
}
RERANKERS: dict[str, Callable[[Adapters, ModelRegistry], None]] = {
    "none": _no_reranker,
    "cross-encoder": _cross_encoder,
    "sagemaker": _sagemaker_reranker,
    "bedrock": _bedrock_reranker,
}


# ============================================================================ services


@dataclass
class Services:
    adapters: Adapters
    access: WorkspaceAccess
    status: DocumentStatusPublisher
    workspaces: WorkspaceService
    documents: DocumentService
    ingestion: IngestionService
    search: SearchService
    chat: ChatService
    sessions: SessionService
    feedback: FeedbackService
    chat_stream: ChatStreamService
    usage: UsageService
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.adapters.settings

    @property
    def models(self) -> ModelRegistry:
        return self.adapters.models

    def close(self) -> None:
        self.adapters.close()


def build_services(settings: Settings | None = None, *, overrides: dict[str, Any] | None = None) -> Services:
    s = settings or Settings()
    a = Adapters(s, overrides=overrides)
    access = WorkspaceAccess(a.catalog)
    # Built on first use: the functions that never touch chunks (the WebSocket authorizer, $connect,
    # ws_message, ingest_trigger, the sweeper) have no Postgres settings and must not try to reach one.
    index = cast(VectorIndex, _Lazy(lambda: a.vector_index))
    status = DocumentStatusPublisher(catalog=a.catalog, connections=a.connections, notifier=a.notifier)
    search = SearchService(
        index=index,
        catalog=a.catalog,
        models=a.models,
        access=access,
        config=RetrievalConfig(
            rrf_k=s.rrf_k, dense_weight=s.dense_weight, keyword_weight=s.keyword_weight, candidates=s.candidates
        ),
    )
    workspaces = WorkspaceService(
        catalog=a.catalog,
        index=index,
        blobs=a.blob_store,
        workflow=a.workflow,
        models=a.models,
        access=access,
    )
    documents = (DocumentService if s.crawler_enabled else _DocumentsWithoutWebsites)(
        catalog=a.catalog,
        blobs=a.blob_store,
        index=index,
        workflow=a.workflow,
        access=access,
        max_upload_bytes=s.max_upload_bytes,
        upload_ttl_seconds=s.upload_url_ttl_seconds,
    )
    ingestion = IngestionService(
        catalog=a.catalog,
        blobs=a.blob_store,
        index=index,
        parser=_Lazy(lambda: a.parser),
        chunker_for=a.chunker_for,
        models=a.models,
        status=status,
        crawler=_LazyCrawler(a),
        embed_batch_size=s.embedding_batch_size,
        audit_blobs=_audit_store(s),
    )
    ledger = cast(UsageLedger, _Lazy(lambda: a.usage))  # built on first answer or view, like the index
    chat = ChatService(
        history=a.chat_history,
        search=search,
        models=a.models,
        access=access,
        min_relevance=s.min_relevance,
        usage=ledger,
    )
    chat_stream = ChatStreamService(
        chat=chat, bus=a.bus, notifier=a.notifier, cancellations=a.cancellations, connections=a.connections
    )
    services = Services(
        adapters=a,
        chat_stream=chat_stream,
        access=access,
        status=status,
        workspaces=workspaces,
        documents=documents,
        ingestion=ingestion,
        search=search,
        chat=chat,
        sessions=SessionService(history=a.chat_history),
        feedback=FeedbackService(catalog=a.catalog, history=a.chat_history),
        usage=UsageService(ledger=ledger, access=access),
    )
    bind = getattr(a.workflow, "bind", None)
    if bind is not None:  # the local workflow runs the same steps the state machines run in AWS
        bind(services)
    return services


def _audit_store(s: Settings) -> BlobStore | None:
    """In AWS the chunk text of every document is also written to the processing bucket, for audit."""
    if s.blob_store != "s3" or not s.processing_bucket:
        return None
    from quarry.adapters.s3 import S3BlobStore

    return S3BlobStore(bucket=s.processing_bucket, region=s.aws_region)


class _Lazy:
    """Defers building an adapter until first use.

    The parser's and crawler's modules need packages (filetype, charset-normalizer, httpx) that only the
    Batch image and the local install carry; Lambdas build IngestionService for its status steps and must
    import neither.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._obj: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._obj is None:
            self._obj = self._make()
        return getattr(self._obj, name)


CRAWLING_DISABLED = "website crawling is not enabled in this deployment"


class _DocumentsWithoutWebsites(DocumentService):
    """``Settings.crawler_enabled`` off (in AWS the deployment's ``ingestion.crawler``): a website source is
    refused with 403 before anything is stored or a workflow started."""

    def add_website(self, user: str, workspace_id: str, options: dict[str, Any]) -> Document:
        raise Forbidden(CRAWLING_DISABLED)


class _LazyCrawler:
    def __init__(self, adapters: Adapters) -> None:
        self._adapters = adapters

    def crawl(self, options: dict[str, Any]) -> Any:
        crawler = self._adapters.crawler
        if crawler is None:  # a crawl registered before the switch was turned off
            raise InvalidInput(CRAWLING_DISABLED)
        return crawler.crawl(options)


_cache: dict[str, Services] = {}
_cache_lock = threading.Lock()


def get_services(settings: Settings | None = None) -> Services:
    """The process-wide services (Lambda containers and ``quarry serve`` build them once)."""
    with _cache_lock:
        if "default" not in _cache:
            _cache["default"] = build_services(settings)
        return _cache["default"]


def install_services(services: Services) -> None:
    """Make ``services`` the process-wide ones (the local runtime and tests hand theirs to the handlers)."""
    with _cache_lock:
        _cache["default"] = services


def reset_services() -> None:
    with _cache_lock:
        services = _cache.pop("default", None)
    if services is not None:
        services.close()
