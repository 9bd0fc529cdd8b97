"""The ingestion use cases wired on the in-memory fakes, as the composition root wires them.

The parser is the real one (plain text and Markdown need no heavy package), the chunker the real one
counting words, the embedder the deterministic hashing fake; status changes go out through a recording
notifier to the connections of the workspace's readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from quarry.models import ChunkingConfig, Document, Workspace
from quarry.services.access import WorkspaceAccess
from quarry.services.document_pipeline import DocumentPipeline
from quarry.services.documents import DocumentService
from quarry.services.ingestion import IngestionService
from quarry.services.ingestion_steps import IngestionSteps
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.status import DocumentStatusPublisher
from quarry.services.website_ingestion import PageSource, WebsiteIngestion
from quarry.text.chunking import RecursiveChunker
from quarry.text.parsing import UnstructuredParser
from tests.fakes import (
    FakeBlobStore,
    FakeCatalog,
    FakeConnections,
    FakeVectorIndex,
    HashEmbedder,
    RecordingNotifier,
    RecordingWorkflow,
    WordTokenizer,
)

OWNER, READER, STRANGER = "ada", "bob", "eve"
CHUNK_WORDS = 16  # the smallest chunk size a workspace accepts


@dataclass(frozen=True)
class Page:
    """A crawled page (``CrawledPage``)."""

    url: str
    data: bytes
    content_type: str = "text/plain"
    title: str = ""


@dataclass
class StaticSite:
    """A ``PageSource`` serving fixed pages; ``after_page`` runs after each page is handed out."""

    pages: list[Page]
    options_seen: list[dict[str, Any]] = field(default_factory=list)
    served: int = 0
    after_page: Any = None

    def crawl(self, options: dict[str, Any]) -> Iterable[Page]:
        self.options_seen.append(options)
        return self._pages()

    def _pages(self) -> Iterator[Page]:
        for page in self.pages:
            self.served += 1
            yield page
            if self.after_page is not None:
                self.after_page(page)


@dataclass
class IngestionRig:
    catalog: FakeCatalog
    blobs: FakeBlobStore
    audit: FakeBlobStore
    index: FakeVectorIndex
    connections: FakeConnections
    notifier: RecordingNotifier
    workflow: RecordingWorkflow
    embedder: HashEmbedder
    documents: DocumentService
    steps: IngestionSteps
    pipeline: DocumentPipeline
    website: WebsiteIngestion
    ingestion: IngestionService
    workspace: Workspace

    def add_text(self, title: str, text: str) -> Document:
        return self.documents.add_text(OWNER, self.workspace.id, title=title, text=text)

    def statuses(self, connection_id: str) -> list[tuple[str, str, str | None, int]]:
        """The ``document_status`` events a connection received: (document, status, reason, chunks)."""
        return [
            (e["document_id"], e["status"], e["reason"], e["chunk_count"])
            for e in self.notifier.to(connection_id)
            if e["type"] == "document_status"
        ]


def build_rig(*, crawler: PageSource | None = None, embed_batch_size: int = 64) -> IngestionRig:
    catalog, blobs, audit, index = FakeCatalog(), FakeBlobStore(), FakeBlobStore(), FakeVectorIndex()
    connections, notifier, workflow = FakeConnections(), RecordingNotifier(), RecordingWorkflow()
    embedder = HashEmbedder()
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), lambda: embedder)
    status = DocumentStatusPublisher(catalog=catalog, connections=connections, notifier=notifier)
    pipeline = DocumentPipeline(
        catalog=catalog,
        blobs=blobs,
        index=index,
        parser=UnstructuredParser(),
        chunker_for=lambda config: RecursiveChunker(WordTokenizer(), config),
        models=models,
        embed_batch_size=embed_batch_size,
        audit_blobs=audit,
    )
    steps = IngestionSteps(catalog=catalog, index=index, status=status)
    website = WebsiteIngestion(catalog=catalog, blobs=blobs, pipeline=pipeline, status=status, crawler=crawler)
    workspace = Workspace(
        "ws", "docs", OWNER, "hash-16", 16, chunking=ChunkingConfig(size=CHUNK_WORDS, overlap=0), shared_with=(READER,)
    )
    catalog.put_workspace(workspace)
    index.ensure_workspace(workspace.id, dimensions=16)
    return IngestionRig(
        catalog=catalog,
        blobs=blobs,
        audit=audit,
        index=index,
        connections=connections,
        notifier=notifier,
        workflow=workflow,
        embedder=embedder,
        documents=DocumentService(
            catalog=catalog,
            blobs=blobs,
            index=index,
            workflow=workflow,
            access=WorkspaceAccess(catalog),
            max_upload_bytes=100_000,
        ),
        steps=steps,
        pipeline=pipeline,
        website=website,
        ingestion=IngestionService(catalog=catalog, steps=steps, pipeline=pipeline, website=website),
        workspace=workspace,
    )
