"""Composition root: Settings -> adapters -> services. One place, explicit, cached per process.

Each port has a registry of named factories typed by the port they build (``Settings.<port>``, one of the
names its ``Literal`` allows, picks one); the models come from ``quarry.model_catalogue``. Factories import
their technology lazily, so a Lambda that runs on DynamoDB, S3 and Bedrock never imports torch, llama.cpp or
unstructured.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar, cast

from quarry.errors import Forbidden, InvalidInput
from quarry.model_catalogue import register_models
from quarry.models import ChunkingConfig, Document, DocumentSource
from quarry.ports import (
    BlobStore,
    Bus,
    Cancellations,
    Catalog,
    ChatHistory,
    Connections,
    DocumentParser,
    Notifier,
    SummarySchedules,
    SummaryStore,
    UsageLedger,
    VectorIndex,
    Workflow,
    WorkflowName,
)
from quarry.services.access import WorkspaceAccess
from quarry.services.budget import TokenBudget
from quarry.services.chat import ChatService
from quarry.services.chat_stream import ChatStreamService
from quarry.services.document_pipeline import Chunker, DocumentPipeline
from quarry.services.documents import DocumentService
from quarry.services.feedback import FeedbackService
from quarry.services.ingestion import IngestionService
from quarry.services.ingestion_steps import IngestionSteps
from quarry.services.model_calls import ModelCallService
from quarry.services.models_registry import ModelRegistry
from quarry.services.search import RetrievalConfig, SearchService
from quarry.services.sessions import SessionService
from quarry.services.status import DocumentStatusPublisher
from quarry.services.summaries import RunJournal, SummaryService
from quarry.services.usage import UsageService
from quarry.services.website_ingestion import PageSource, WebsiteIngestion
from quarry.services.workspaces import WorkspaceService
from quarry.settings import (
    BlobStoreName,
    BusName,
    CancellationsName,
    CatalogName,
    ChatHistoryName,
    ConnectionsName,
    NotifierName,
    ParserName,
    Runtime,
    Settings,
    SummarySchedulesName,
    VectorIndexName,
    WorkflowEngineName,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from quarry.auth import TokenVerifier
    from quarry.text.tokens import HFTokenizer

__all__ = [
    "AdapterOverrides",
    "Adapters",
    "Services",
    "WorkflowSteps",
    "build_services",
    "get_services",
    "install_services",
    "reset_services",
]


class AdapterOverrides(TypedDict, total=False):
    """Adapters handed in instead of built from Settings (tests, tools): at most one per port, each typed.

    A TypedDict rather than a dataclass so the many ``overrides={"catalog": FakeCatalog(), ...}`` call sites stay
    as they are while mypy checks every entry written inline; an unknown key is refused when Adapters is built.
    """

    catalog: Catalog
    chat_history: ChatHistory
    connections: Connections
    usage: UsageLedger
    blob_store: BlobStore
    vector_index: VectorIndex
    bus: Bus
    workflow: Workflow
    cancellations: Cancellations
    notifier: Notifier
    parser: DocumentParser
    models: ModelRegistry
    crawler: PageSource | None
    summaries: SummaryStore
    summary_schedules: SummarySchedules


WorkflowSteps = Mapping[WorkflowName, Callable[[dict[str, Any]], object]]
"""What the local workflow runs for each state machine (``build_services`` gives the services' use cases)."""

P = TypeVar("P")
N = TypeVar("N", bound=str)


class Adapters:
    """Builds each adapter once, from Settings, through the registries below."""

    def __init__(
        self,
        settings: Settings,
        *,
        overrides: AdapterOverrides | None = None,
        workflow_steps: WorkflowSteps | None = None,
    ) -> None:
        unknown = set(overrides or {}) - AdapterOverrides.__optional_keys__
        if unknown:
            raise TypeError(f"unknown adapter override(s): {', '.join(sorted(unknown))}")
        self.settings = settings
        self._overrides: AdapterOverrides = overrides or {}
        self._workflow_steps: WorkflowSteps = workflow_steps or {}
        self._closers: list[Callable[[], object]] = []
        self._lock = threading.RLock()

    def on_close(self, fn: Callable[[], object]) -> None:
        self._closers.append(fn)

    def close(self) -> None:
        while self._closers:
            with contextlib.suppress(Exception):  # best effort: one failing closer must not stop the rest
                self._closers.pop()()

    def _pick(self, port: str, name: N, registry: Mapping[N, Callable[[Adapters], P]], override: P | None) -> P:
        if override is not None:
            return override
        factory = registry.get(name)
        if factory is None:  # only Settings that skipped validation (``model_copy(update=...)``) get here
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
    def pg_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
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
        return self._pick("catalog", self.settings.catalog, CATALOGS, self._overrides.get("catalog"))

    @cached_property
    def chat_history(self) -> ChatHistory:
        s = self.settings
        return self._pick("chat_history", s.chat_history, CHAT_HISTORIES, self._overrides.get("chat_history"))

    @cached_property
    def connections(self) -> Connections:
        s = self.settings
        return self._pick("connections", s.connections, CONNECTIONS, self._overrides.get("connections"))

    @cached_property
    def usage(self) -> UsageLedger:
        """Usage counters live beside the chat history: same database, or the same DynamoDB table."""
        override = self._overrides.get("usage")
        if override is None and "chat_history" in self._overrides:  # an injected history has no counters
            from quarry.adapters.memory_usage import InMemoryUsageLedger

            override = InMemoryUsageLedger()
        return self._pick("usage ledger beside chat history", self.settings.chat_history, USAGE_LEDGERS, override)

    @cached_property
    def blob_store(self) -> BlobStore:
        return self._pick("blob_store", self.settings.blob_store, BLOB_STORES, self._overrides.get("blob_store"))

    @cached_property
    def vector_index(self) -> VectorIndex:
        s = self.settings
        return self._pick("vector_index", s.vector_index, VECTOR_INDEXES, self._overrides.get("vector_index"))

    @cached_property
    def bus(self) -> Bus:
        return self._pick("bus", self.settings.bus, BUSES, self._overrides.get("bus"))

    @cached_property
    def workflow(self) -> Workflow:
        return self._pick("workflow", self.settings.workflow, WORKFLOWS, self._overrides.get("workflow"))

    @property
    def workflow_steps(self) -> WorkflowSteps:
        return self._workflow_steps

    @cached_property
    def summaries(self) -> SummaryStore:
        """Summary jobs live beside the catalog: same database, or the same DynamoDB table."""
        s = self.settings
        return self._pick("summary store beside catalog", s.catalog, SUMMARY_STORES, self._overrides.get("summaries"))

    @cached_property
    def summary_schedules(self) -> SummarySchedules:
        s = self.settings
        override = self._overrides.get("summary_schedules")
        return self._pick("summary_schedules", s.summary_schedules, SUMMARY_SCHEDULES, override)

    @cached_property
    def cancellations(self) -> Cancellations:
        s = self.settings
        return self._pick("cancellations", s.cancellations, CANCELLATIONS, self._overrides.get("cancellations"))

    @cached_property
    def notifier(self) -> Notifier:
        return self._pick("notifier", self.settings.notifier, NOTIFIERS, self._overrides.get("notifier"))

    @cached_property
    def parser(self) -> DocumentParser:
        return self._pick("parser", self.settings.parser, PARSERS, self._overrides.get("parser"))

    @cached_property
    def models(self) -> ModelRegistry:
        """The models the settings name, from the model catalogue."""
        override = self._overrides.get("models")
        return override if override is not None else register_models(self.settings, ModelRegistry())

    @cached_property
    def tokenizer(self) -> HFTokenizer:
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
# Each factory takes the Adapters context and returns its port; imports stay inside the factory.
# The models (embedders, chat models, rerankers) are in ``quarry.model_catalogue``.


def _sql_catalog(a: Adapters) -> Catalog:
    from quarry.adapters.sql_catalog import SqlCatalog

    return SqlCatalog(a.pg_pool)


def _sql_history(a: Adapters) -> ChatHistory:
    from quarry.adapters.sql_catalog import SqlChatHistory

    return SqlChatHistory(a.pg_pool)


def _sql_connections(a: Adapters) -> Connections:
    from quarry.adapters.sql_catalog import SqlConnections

    return SqlConnections(a.pg_pool)


def _sql_usage(a: Adapters) -> UsageLedger:
    from quarry.adapters.sql_usage import SqlUsageLedger

    return SqlUsageLedger(a.pg_pool)


def _dynamo_catalog(a: Adapters) -> Catalog:
    from quarry.adapters import dynamodb

    s = a.settings
    return _named(dynamodb.DynamoCatalog(s.table_prefix, region=s.aws_region), s.catalog_table)


def _dynamo_history(a: Adapters) -> ChatHistory:
    from quarry.adapters import dynamodb

    s = a.settings
    return _named(dynamodb.DynamoChatHistory(s.table_prefix, region=s.aws_region), s.chat_table)


def _dynamo_connections(a: Adapters) -> Connections:
    from quarry.adapters import dynamodb

    s = a.settings
    return _named(dynamodb.DynamoConnections(s.table_prefix, region=s.aws_region), s.connections_table)


def _dynamo_usage(a: Adapters) -> UsageLedger:
    from quarry.adapters.dynamodb import DynamoUsageLedger

    s = a.settings
    return _named(DynamoUsageLedger(s.table_prefix, region=s.aws_region), s.chat_table)


def _sql_summaries(a: Adapters) -> SummaryStore:
    from quarry.adapters.sql_summaries import SqlSummaryStore

    return SqlSummaryStore(a.pg_pool)


def _dynamo_summaries(a: Adapters) -> SummaryStore:
    from quarry.adapters.dynamodb import DynamoSummaryStore

    s = a.settings
    return _named(DynamoSummaryStore(s.table_prefix, region=s.aws_region), s.catalog_table)


def _local_schedules(a: Adapters) -> SummarySchedules:
    from quarry.adapters.local_schedules import LocalSchedules

    schedules = LocalSchedules()
    a.on_close(schedules.close)
    return schedules


def _eventbridge_schedules(a: Adapters) -> SummarySchedules:
    from quarry.adapters.eventbridge_schedules import EventBridgeSummarySchedules

    return EventBridgeSummarySchedules.from_settings(a.settings)


def _dynamo_cancellations(a: Adapters) -> Cancellations:
    from quarry.adapters import dynamodb

    s = a.settings
    return _named(dynamodb.DynamoCancellations(s.table_prefix, region=s.aws_region), s.connections_table)


class _DynamoTable(Protocol):
    table: str


T = TypeVar("T", bound=_DynamoTable)


def _named(adapter: T, table: str) -> T:
    """Point a DynamoDB adapter at the deployed table (CloudFormation's name) instead of ``{prefix}-{suffix}``."""
    if table:
        adapter.table = table
    return adapter


def _localfs(a: Adapters) -> BlobStore:
    from quarry.adapters.localfs import LocalBlobStore

    return LocalBlobStore(a.settings.blob_dir, upload_url=a.settings.local_upload_url, secret=a.local_secret)


def _s3(a: Adapters) -> BlobStore:
    from quarry.adapters.s3 import S3BlobStore

    return S3BlobStore(bucket=a.settings.require("upload_bucket", "s3 blob store"), region=a.settings.aws_region)


def _pgvector(a: Adapters) -> VectorIndex:
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


def _opensearch(a: Adapters) -> VectorIndex:
    from quarry.adapters.opensearch import OpenSearchIndex

    return OpenSearchIndex.from_settings(a.settings)


def _local_bus(a: Adapters) -> Bus:
    from quarry.local.bus import LocalBus

    bus = LocalBus(dead_letter_dir=a.settings.data_dir / "dead-letters")
    a.on_close(bus.close)
    return bus


def _sns(a: Adapters) -> Bus:
    from quarry.adapters.sns_sqs import SnsBus

    return SnsBus(topic_arn=a.settings.require("chat_topic_arn", "sns bus"), region=a.settings.aws_region)


def _local_workflow(a: Adapters) -> Workflow:
    from quarry.adapters.local_workflow import LocalWorkflow

    workflow = LocalWorkflow(
        a.workflow_steps,
        background=a.settings.local_workflow_background,
        is_crawl=lambda payload: _is_website(a.catalog, payload),
    )
    a.on_close(workflow.close)
    return workflow


def _is_website(catalog: Catalog, payload: Mapping[str, Any]) -> bool:
    document = catalog.get_document(payload["workspace_id"], payload["document_id"])
    return document is not None and document.source is DocumentSource.WEBSITE


def _stepfunctions(a: Adapters) -> Workflow:
    from quarry.adapters.stepfunctions import StepFunctionsWorkflow

    return StepFunctionsWorkflow.from_settings(a.settings)


def _memory_cancellations(a: Adapters) -> Cancellations:
    from quarry.local.cancellations import InMemoryCancellations

    return InMemoryCancellations()


def _local_notifier(a: Adapters) -> Notifier:
    from quarry.local.notifier import LocalNotifier

    return LocalNotifier()


def _apigw_notifier(a: Adapters) -> Notifier:
    from quarry.adapters.apigw_ws import ApiGatewayNotifier

    endpoint = a.settings.require("websocket_endpoint", "apigw notifier")
    return ApiGatewayNotifier(endpoint, connections=a.connections, region=a.settings.aws_region)


def _unstructured(a: Adapters) -> DocumentParser:
    from quarry.text.parsing import ArchiveLimits, UnstructuredParser

    limits = ArchiveLimits(
        max_expanded_bytes=a.settings.archive_max_expanded_mb * 1024 * 1024, max_ratio=a.settings.archive_max_ratio
    )
    return UnstructuredParser(max_bytes=a.settings.max_upload_bytes, archive_limits=limits)


CATALOGS: dict[CatalogName, Callable[[Adapters], Catalog]] = {"sql": _sql_catalog, "dynamodb": _dynamo_catalog}
CHAT_HISTORIES: dict[ChatHistoryName, Callable[[Adapters], ChatHistory]] = {
    "sql": _sql_history,
    "dynamodb": _dynamo_history,
}
USAGE_LEDGERS: dict[ChatHistoryName, Callable[[Adapters], UsageLedger]] = {
    "sql": _sql_usage,
    "dynamodb": _dynamo_usage,
}
CONNECTIONS: dict[ConnectionsName, Callable[[Adapters], Connections]] = {
    "sql": _sql_connections,
    "dynamodb": _dynamo_connections,
}
BLOB_STORES: dict[BlobStoreName, Callable[[Adapters], BlobStore]] = {"localfs": _localfs, "s3": _s3}
VECTOR_INDEXES: dict[VectorIndexName, Callable[[Adapters], VectorIndex]] = {
    "pgvector": _pgvector,
    "opensearch": _opensearch,
}
BUSES: dict[BusName, Callable[[Adapters], Bus]] = {"local": _local_bus, "sns": _sns}
WORKFLOWS: dict[WorkflowEngineName, Callable[[Adapters], Workflow]] = {
    "local": _local_workflow,
    "stepfunctions": _stepfunctions,
}
CANCELLATIONS: dict[CancellationsName, Callable[[Adapters], Cancellations]] = {
    "memory": _memory_cancellations,
    "dynamodb": _dynamo_cancellations,
}
NOTIFIERS: dict[NotifierName, Callable[[Adapters], Notifier]] = {"local": _local_notifier, "apigw": _apigw_notifier}
PARSERS: dict[ParserName, Callable[[Adapters], DocumentParser]] = {"unstructured": _unstructured}
SUMMARY_STORES: dict[CatalogName, Callable[[Adapters], SummaryStore]] = {
    "sql": _sql_summaries,
    "dynamodb": _dynamo_summaries,
}
SUMMARY_SCHEDULES: dict[SummarySchedulesName, Callable[[Adapters], SummarySchedules]] = {
    "local": _local_schedules,
    "eventbridge": _eventbridge_schedules,
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
    ingestion_steps: IngestionSteps
    document_pipeline: DocumentPipeline
    search: SearchService
    chat: ChatService
    sessions: SessionService
    feedback: FeedbackService
    chat_stream: ChatStreamService
    usage: UsageService
    model_calls: ModelCallService
    budget: TokenBudget
    summaries: SummaryService

    @property
    def settings(self) -> Settings:
        return self.adapters.settings

    @property
    def models(self) -> ModelRegistry:
        return self.adapters.models

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """Verifies bearer tokens: Cognito's JWTs by default (the WebSocket authorizer); ``quarry serve`` sets
        its dev-token verifier here, so the local gateway and the authorizer handler it runs agree."""
        from quarry.auth import TokenVerifier

        return TokenVerifier(self.settings)

    def close(self) -> None:
        self.summaries.stop()  # a local summary run pauses after its batch (resumed at the next start)
        self.adapters.close()


def build_services(settings: Settings | None = None, *, overrides: AdapterOverrides | None = None) -> Services:
    s = settings or Settings()
    # The services start workflow runs, and the local workflow's runs call the services: the workflow gets
    # this step table when it is built, and each step finds the services (built below) when a run starts.
    services: Services | None = None

    def built() -> Services:
        if services is None:
            raise RuntimeError("a workflow run started before build_services returned")
        return services

    a = Adapters(s, overrides=overrides, workflow_steps=_workflow_steps(built))
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
    ledger = cast(UsageLedger, _Lazy(lambda: a.usage))  # built on first answer or view, like the index
    budget = TokenBudget(ledger=ledger, daily_tokens=s.daily_token_budget)
    summary_blobs = _audit_store(s) or a.blob_store  # AWS: the processing bucket (the state machine reads plans there)
    summaries = SummaryService(
        catalog=a.catalog,
        store=cast(SummaryStore, _Lazy(lambda: a.summaries)),
        blobs=summary_blobs,
        previews=summary_blobs,
        models=a.models,
        access=access,
        workflow=a.workflow,
        schedules=cast(SummarySchedules, _Lazy(lambda: a.summary_schedules)),
        journal=_summary_journal(s),
        usage=ledger,  # a run's tokens count as the owner's, as chat's do, and the daily allowance bounds them
        budget=budget,
    )
    workspaces = WorkspaceService(
        catalog=a.catalog,
        index=index,
        blobs=a.blob_store,
        workflow=a.workflow,
        models=a.models,
        access=access,
        jobs=summaries,  # the purge removes the workspace's summary jobs, schedules and stored runs too
    )
    documents = (DocumentService if s.crawler_enabled else _DocumentsWithoutWebsites)(
        catalog=a.catalog,
        blobs=a.blob_store,
        index=index,
        workflow=a.workflow,
        access=access,
        max_upload_bytes=s.max_upload_bytes,
        upload_ttl_seconds=s.upload_url_ttl_seconds,
        preview_blobs=_audit_store(s),  # AWS: the processing bucket (a write to uploads is an upload event)
    )
    document_pipeline = DocumentPipeline(
        catalog=a.catalog,
        blobs=a.blob_store,
        index=index,
        parser=_Lazy(lambda: a.parser),
        chunker_for=a.chunker_for,
        models=a.models,
        embed_batch_size=s.embedding_batch_size,
        audit_blobs=_audit_store(s),
        preview_blobs=_audit_store(s),
    )
    ingestion_steps = IngestionSteps(catalog=a.catalog, index=index, status=status)
    ingestion = IngestionService(
        catalog=a.catalog,
        steps=ingestion_steps,
        pipeline=document_pipeline,
        website=WebsiteIngestion(
            catalog=a.catalog,
            blobs=a.blob_store,
            pipeline=document_pipeline,
            status=status,
            crawler=_LazyCrawler(a),
        ),
    )
    chat = ChatService(
        history=a.chat_history,
        search=search,
        models=a.models,
        access=access,
        min_relevance=s.min_relevance,
        context_chunks=s.context_chunks,
        usage=ledger,
        budget=budget,
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
        ingestion_steps=ingestion_steps,
        document_pipeline=document_pipeline,
        search=search,
        chat=chat,
        sessions=SessionService(history=a.chat_history),
        feedback=FeedbackService(catalog=a.catalog, history=a.chat_history),
        usage=UsageService(ledger=ledger, access=access),
        model_calls=ModelCallService(a.models),
        budget=budget,
        summaries=summaries,
    )
    return services


def _workflow_steps(services: Callable[[], Services]) -> WorkflowSteps:
    """The local workflow's state machines, each one use case (``stacks/ingestion.py`` defines AWS's)."""
    return {
        WorkflowName.INGEST: lambda p: services().ingestion.process(p["workspace_id"], p["document_id"]),
        WorkflowName.DELETE_DOCUMENT: lambda p: services().documents.purge(p["workspace_id"], p["document_id"]),
        WorkflowName.DELETE_WORKSPACE: lambda p: services().workspaces.purge(p["workspace_id"]),
        WorkflowName.SUMMARIZE: lambda p: services().summaries.run(p),
    }


def _summary_journal(s: Settings) -> RunJournal | None:
    """The local workflow remembers summary runs across restarts (Step Functions does in AWS)."""
    if s.workflow != "local":
        return None
    from quarry.adapters.local_schedules import LocalRunJournal

    return LocalRunJournal(s.data_dir / "summary-runs.json")


def _audit_store(s: Settings) -> BlobStore | None:
    """In AWS the chunk text of every document is also written to the processing bucket, for audit."""
    if s.blob_store != "s3" or not s.processing_bucket:
        return None
    from quarry.adapters.s3 import S3BlobStore

    return S3BlobStore(bucket=s.processing_bucket, region=s.aws_region)


class _Lazy:
    """Defers building an adapter until first use.

    The parser's and crawler's modules need packages (filetype, charset-normalizer, httpx) that only the
    Batch image and the local install carry; Lambdas build the ingestion services for their status steps and must
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

    def add_website(
        self, user: str, workspace_id: str, options: dict[str, Any], *, metadata: Mapping[str, Any] | None = None
    ) -> Document:
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
