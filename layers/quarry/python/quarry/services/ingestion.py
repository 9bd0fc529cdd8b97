"""Ingestion steps, the same in the Batch job and the local workflow.

The state machine (and ``LocalWorkflow``) runs: ``set_processing`` → ``run`` →
``set_processed``; any failure → ``set_error(reason)``. ``run`` parses, chunks,
embeds in batches and replaces the document's chunks in one transaction, so a
retried job leaves exactly one set of chunks.

A document deleted while it is being ingested stays deleted: after writing its
chunks, ingestion asks the catalog whether the document still exists and, if
not, deletes the chunks again and ends quietly (``_discard_deleted`` has the
interleavings). Search, besides, never returns chunks of a document the
catalog does not hold.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from quarry.errors import NotFound, QuarryError, UnreadableDocument
from quarry.models import Chunk, ChunkingConfig, Document, DocumentSource, DocumentStatus, Workspace, utcnow
from quarry.ports import BlobStore, Catalog, DocumentParser, ParsedDocument, VectorIndex
from quarry.services.documents import document_id_for, document_prefix
from quarry.services.models_registry import ModelRegistry
from quarry.services.status import DocumentStatusPublisher

__all__ = ["Chunker", "DocumentDeleted", "IngestionReport", "IngestionService", "PageSource"]

log = logging.getLogger(__name__)


class DocumentDeleted(NotFound):
    """The document was deleted while it was being ingested; what was written for it has been removed."""


class Chunker(Protocol):
    def split(
        self, document_id: str, workspace_id: str, parsed: ParsedDocument, *, base_metadata: dict[str, Any]
    ) -> list[Chunk]: ...


class CrawledPage(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def title(self) -> str: ...


class PageSource(Protocol):
    """A website crawl (``quarry.text.crawler``), as the ingestion step needs it."""

    def crawl(self, options: dict[str, Any]) -> Iterable[CrawledPage]: ...


@dataclass(frozen=True, slots=True)
class IngestionReport:
    document_id: str
    chunks: int
    seconds: float
    pages: int = 0


class IngestionService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        blobs: BlobStore,
        index: VectorIndex,
        parser: DocumentParser,
        chunker_for: Callable[[ChunkingConfig], Chunker],
        models: ModelRegistry,
        status: DocumentStatusPublisher,
        crawler: PageSource | None = None,
        embed_batch_size: int = 64,
        audit_blobs: BlobStore | None = None,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._index = index
        self._parser = parser
        self._chunker_for = chunker_for
        self._models = models
        self._status = status
        self._crawler = crawler
        self._batch = embed_batch_size
        self._audit = audit_blobs

    # ------------------------------------------------------------------ state machine steps
    def set_processing(self, workspace_id: str, document_id: str) -> Document:
        return self._set(workspace_id, document_id, DocumentStatus.PROCESSING)

    def set_processed(self, workspace_id: str, document_id: str, chunk_count: int | None = None) -> Document:
        """``chunk_count`` None: count what the job wrote (the Batch job cannot hand a value to the next state)."""
        if chunk_count is None:
            chunk_count = self._index.count(workspace_id, document_id=document_id)
        return self._set(workspace_id, document_id, DocumentStatus.PROCESSED, chunk_count=chunk_count)

    def set_error(
        self, workspace_id: str, document_id: str, reason: str, *, keep_recorded: bool = False
    ) -> Document | None:
        """``keep_recorded``: the state machine's SetError after the job already wrote the specific reason."""
        if keep_recorded:
            current = self._catalog.get_document(workspace_id, document_id)
            if current is not None and current.status is DocumentStatus.ERROR and current.status_reason:
                return current
        return self._status.set(workspace_id, document_id, DocumentStatus.ERROR, reason=reason[:1000])

    def _set(self, workspace_id: str, document_id: str, status: DocumentStatus, **kw: Any) -> Document:
        document = self._status.set(workspace_id, document_id, status, **kw)
        if document is None:
            raise NotFound(f"document {document_id} not found")
        return document

    def run(self, workspace_id: str, document_id: str) -> IngestionReport:
        """Parse, chunk, embed, index. Raises a QuarryError with a user-facing reason on failure."""
        started = time.perf_counter()
        workspace, document = self._load(workspace_id, document_id)
        if document.source is DocumentSource.WEBSITE:
            pages, chunks = self._crawl(workspace, document)
            return IngestionReport(document.id, chunks=chunks, seconds=time.perf_counter() - started, pages=pages)
        if not document.blob_key:
            raise UnreadableDocument(f"{document.name}: the document has no stored content")
        data = self._blobs.get(document.blob_key)
        parsed = self._parser.parse(data, filename=document.name, content_type=document.content_type)
        count = self.index_parsed(workspace, document, parsed)
        return IngestionReport(document.id, chunks=count, seconds=time.perf_counter() - started)

    def process(self, workspace_id: str, document_id: str) -> IngestionReport | None:
        """All steps in order with the state machine's error handling (local workflow, CLI)."""
        try:
            self.set_processing(workspace_id, document_id)
            report = self.run(workspace_id, document_id)
            self.set_processed(workspace_id, document_id, report.chunks)
            return report
        except DocumentDeleted as exc:  # nothing to report on: the document is gone, and so are its chunks
            log.info("ingestion of %s stopped: %s", document_id, exc.message)
        except QuarryError as exc:
            self.set_error(workspace_id, document_id, exc.message)
        except Exception as exc:  # an unexpected failure still ends in a visible status
            log.exception("ingestion of %s failed", document_id)
            self.set_error(workspace_id, document_id, f"internal error: {type(exc).__name__}: {exc}")
        return None

    def sweep_stale(self, timeout: timedelta) -> list[Document]:
        """Documents stuck in ``processing`` beyond the timeout end in ``error: timed out``."""
        swept = []
        for document in self._catalog.stale_documents(DocumentStatus.PROCESSING, utcnow() - timeout):
            updated = self.set_error(document.workspace_id, document.id, "timed out")
            if updated is not None:
                swept.append(updated)
        return swept

    # ------------------------------------------------------------------ pieces
    def index_parsed(self, workspace: Workspace, document: Document, parsed: ParsedDocument) -> int:
        chunker = self._chunker_for(workspace.chunking)
        base = {**document.metadata, "source": document.source.value, "document_name": document.name}
        chunks = chunker.split(document.id, workspace.id, parsed, base_metadata=base)
        if not chunks:
            raise UnreadableDocument(f"{document.name}: no text to index")
        embedded = self.embed_chunks(workspace, chunks)
        self._index.replace_document(workspace.id, document.id, embedded)
        if self._audit is not None:
            lines = "\n".join(
                json.dumps({"ordinal": c.ordinal, "start": c.start, "end": c.end, "text": c.text}) for c in chunks
            )
            self._audit.put(_audit_key(workspace.id, document.id), lines.encode(), content_type="application/x-ndjson")
        if self._discard_deleted(workspace.id, [document.id]):
            raise DocumentDeleted(f"{document.name} was deleted while it was being indexed")
        return len(embedded)

    def index_batch(
        self,
        workspace: Workspace,
        items: Sequence[tuple[Document, ParsedDocument]],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Index many parsed documents with full embedding batches across documents.

        The embedder sees batches as large as for one long document, and each
        finished document is written by a second thread while the next batch is
        embedded, so the pipeline runs close to the embedder's own throughput.
        The documents are registered in the catalog (if absent) before their
        chunks are written and marked processed after, so search serves them;
        one deleted meanwhile loses its chunks again.
        """
        chunker = self._chunker_for(workspace.chunking)
        split_many = getattr(chunker, "split_many", None)
        pairs = [(d.id, p) for d, p in items]
        meta = {"source": DocumentSource.TEXT.value}
        if split_many is not None:
            per_doc: list[list[Chunk]] = split_many(workspace.id, pairs, base_metadata=meta)
        else:
            per_doc = [chunker.split(d, workspace.id, p, base_metadata=meta) for d, p in pairs]
        flat = [c for chunks in per_doc for c in chunks]
        owners = [i for i, chunks in enumerate(per_doc) for _ in chunks]
        pending = [len(chunks) for chunks in per_doc]
        done: list[list[Chunk]] = [[] for _ in per_doc]
        embedder = self._models.embedders.get(workspace.embedding_model)
        finished: dict[str, list[Chunk]] = {}
        documents: dict[str, Document] = {}
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer") as writer:
            futures = []
            # Groups of several batches: the embedder sorts a call's texts by length, so less padding.
            group = self._batch * 8
            for start in range(0, len(flat), group):
                batch = flat[start : start + group]
                vectors = embedder.embed_documents([_embedding_text(c) for c in batch])
                for offset, (chunk, vector) in enumerate(zip(batch, vectors, strict=True)):
                    i = owners[start + offset]
                    done[i].append(replace(chunk, embedding=tuple(vector)))
                    pending[i] -= 1
                    if pending[i] == 0:
                        finished[items[i][0].id] = done[i]
                        documents[items[i][0].id] = items[i][0]
                # Finished documents are written together while the next group is embedded.
                if finished:
                    futures.append(writer.submit(self._write_batch, workspace.id, documents, finished))
                    finished, documents = {}, {}
                if on_progress:
                    on_progress(len(batch))
            for f in futures:
                f.result()
        self._index.optimize(workspace.id)
        return len(flat)

    def _write_batch(self, workspace_id: str, documents: dict[str, Document], chunks: dict[str, list[Chunk]]) -> None:
        for document in documents.values():
            self._catalog.register_document(replace(document, status=DocumentStatus.PROCESSING))
        self._index.replace_documents(workspace_id, chunks)
        gone = self._discard_deleted(workspace_id, chunks)
        for document_id, written in chunks.items():
            if document_id not in gone:
                self._catalog.set_document_status(
                    workspace_id, document_id, DocumentStatus.PROCESSED, chunk_count=len(written)
                )

    def _discard_deleted(self, workspace_id: str, document_ids: Collection[str]) -> set[str]:
        """After chunks were written: delete them again for every document the catalog no longer holds.

        Returns those documents' ids. This is the commit check that keeps a deletion final. The deletion
        (``DocumentService.purge``) removes the catalog record C first, then the chunks I, then the blobs;
        ingestion writes the chunks W, then checks the catalog K, then (if gone) deletes the chunks D.
        C and K are reads and writes of one record, so one of them comes first:

        - C before K: K finds no record and D deletes whatever W wrote, whether W committed before or
          after I. Nothing survives.
        - K before C: then W < K < C < I, so the purge's own I deletes what W wrote. Nothing survives.

        A crawl's pages are sub-documents, checked this way and then against their site
        (``_stop_if_site_deleted``). The only window left: a new document of the same name registered
        between K and D whose own ingestion also finishes in that window would lose its chunks and show
        ``processed`` with none until uploaded again.
        """
        wanted = set(document_ids)
        gone = wanted - self._catalog.existing_document_ids(workspace_id, wanted)
        for document_id in sorted(gone):
            removed = self._index.delete_document(workspace_id, document_id)
            if self._audit is not None:
                self._audit.delete(_audit_key(workspace_id, document_id))
            log.info("document %s was deleted during ingestion: %d chunks removed again", document_id, removed)
        return gone

    def _stop_if_site_deleted(self, site: Document, page: Document) -> None:
        """After each page: if the crawl's site is gone, the page just written goes too, and the crawl stops.

        The purge deletes the site's record before listing its pages, so a page written before a check
        that still finds the site is listed and purged; one written after it is removed here.
        """
        if self._catalog.existing_document_ids(site.workspace_id, [site.id]):
            return
        self._catalog.delete_document(page.workspace_id, page.id)
        self._discard_deleted(page.workspace_id, [page.id])
        raise DocumentDeleted(f"{site.name} was deleted while it was being crawled")

    def embed_chunks(self, workspace: Workspace, chunks: Sequence[Chunk]) -> list[Chunk]:
        embedder = self._models.embedders.get(workspace.embedding_model)
        out: list[Chunk] = []
        for batch in _batches(chunks, self._batch):
            texts = [_embedding_text(c) for c in batch]
            vectors = embedder.embed_documents(texts)
            out.extend(replace(c, embedding=tuple(v)) for c, v in zip(batch, vectors, strict=True))
        return out

    def _load(self, workspace_id: str, document_id: str) -> tuple[Workspace, Document]:
        workspace = self._catalog.get_workspace(workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {workspace_id} not found")
        document = self._catalog.get_document(workspace_id, document_id)
        if document is None:
            raise NotFound(f"document {document_id} not found")
        return workspace, document

    def _crawl(self, workspace: Workspace, site: Document) -> tuple[int, int]:
        """Each page becomes a sub-document of the crawl; returns (pages, chunks)."""
        if self._crawler is None:
            raise UnreadableDocument(f"{site.name}: website crawling is not enabled in this deployment")
        assert site.blob_key is not None
        options = json.loads(self._blobs.get(site.blob_key))
        pages = chunks = 0
        for page in self._crawler.crawl(options):
            page_doc = Document(
                id=document_id_for(workspace.id, f"page:{page.url}"),
                workspace_id=workspace.id,
                name=page.title or page.url,
                source=DocumentSource.WEBPAGE,
                parent_id=site.id,
                content_type=page.content_type,
                size_bytes=len(page.data),
                metadata={"url": page.url},
            )
            self._catalog.put_document(page_doc)
            try:
                parsed = self._parser.parse(page.data, filename=_page_filename(page), content_type=page.content_type)
                count = self.index_parsed(workspace, page_doc, parsed)
                self._status.set(workspace.id, page_doc.id, DocumentStatus.PROCESSED, chunk_count=count)
                pages += 1
                chunks += count
            except DocumentDeleted:
                raise
            except QuarryError as exc:
                self._status.set(workspace.id, page_doc.id, DocumentStatus.ERROR, reason=exc.message)
            self._stop_if_site_deleted(site, page_doc)
        if pages == 0:
            raise UnreadableDocument(f"{site.name}: no page could be crawled and parsed")
        return pages, chunks


def _audit_key(workspace_id: str, document_id: str) -> str:
    return document_prefix(workspace_id, document_id) + "chunks.jsonl"


def _page_filename(page: CrawledPage) -> str:
    ext = {"application/pdf": ".pdf", "text/plain": ".txt"}.get(page.content_type.split(";")[0], ".html")
    return f"page{ext}"


def _embedding_text(chunk: Chunk) -> str:
    if chunk.title and not chunk.text.startswith(chunk.title):
        return f"{chunk.title}\n{chunk.text}"
    return chunk.text


def _batches(items: Sequence[Chunk], size: int) -> Iterator[Sequence[Chunk]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
