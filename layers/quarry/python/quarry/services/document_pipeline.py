"""The document pipeline: parse -> chunk -> embed -> write, for one file, text or Q&A document (or crawled page).

Embedding runs in batches of ``embed_batch_size``, and the document's chunks replace its old ones in one
transaction, so a retried job leaves exactly one set of chunks.

A document deleted while it is being indexed stays deleted: after writing its chunks, the pipeline asks
the catalog whether the document still exists and, if not, deletes the chunks again and raises
``DocumentDeleted``, a quiet end (``discard_deleted`` has the interleavings). Search, besides, never
returns chunks of a document the catalog does not hold.

A metadata edit made while a run is under way reaches the chunks the run writes: after writing them, the
pipeline reads the document's user metadata from the catalog again and, if it is no longer what the
chunks were written with, sets it on them in place (``match_catalog_fields`` has the interleavings).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import replace
from typing import Any, Protocol

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.errors import NotFound, UnreadableDocument
from quarry.metadata import MetadataValue, user_metadata
from quarry.models import Chunk, ChunkingConfig, Document, Workspace
from quarry.ports import BlobStore, Catalog, DocumentParser, ParsedDocument, VectorIndex
from quarry.services.documents import PREVIEW_CHARS, document_prefix, preview_key
from quarry.services.models_registry import ModelRegistry

__all__ = ["Chunker", "DocumentDeleted", "DocumentPipeline", "audit_key", "embedding_text"]

log = logging.getLogger(__name__)

#: How many times the pipeline reads the catalog's user metadata after writing chunks: each read after the
#: first needs another edit to have landed since the one before.
FIELD_MATCH_ROUNDS = 3


class DocumentDeleted(NotFound):
    """The document was deleted while it was being ingested; what was written for it has been removed."""


class Chunker(Protocol):
    def split(
        self, document_id: str, workspace_id: str, parsed: ParsedDocument, *, base_metadata: dict[str, Any]
    ) -> list[Chunk]: ...


class DocumentPipeline:
    def __init__(
        self,
        *,
        catalog: Catalog,
        blobs: BlobStore,
        index: VectorIndex,
        parser: DocumentParser,
        chunker_for: Callable[[ChunkingConfig], Chunker],
        models: ModelRegistry,
        embed_batch_size: int = 64,
        audit_blobs: BlobStore | None = None,
        preview_blobs: BlobStore | None = None,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._index = index
        self._parser = parser
        self._chunker_for = chunker_for
        self._models = models
        self._batch = embed_batch_size
        self._audit = audit_blobs
        self._previews = preview_blobs or blobs

    def ingest_stored(self, workspace: Workspace, document: Document) -> int:
        """A document whose content is in the blob store (upload, text, Q&A): returns its chunk count."""
        if not document.blob_key:
            raise UnreadableDocument(f"{document.name}: the document has no stored content")
        data = self._blobs.get(document.blob_key)
        return self.ingest_bytes(workspace, document, data, filename=document.name, content_type=document.content_type)

    def ingest_bytes(
        self, workspace: Workspace, document: Document, data: bytes, *, filename: str, content_type: str | None
    ) -> int:
        parsed = self._parser.parse(data, filename=filename, content_type=content_type)
        return self.index_parsed(workspace, document, parsed)

    def index_parsed(self, workspace: Workspace, document: Document, parsed: ParsedDocument) -> int:
        """Chunk, embed and write ``parsed`` as ``document``'s chunks; then the commit check."""
        chunker = self._chunker_for(workspace.chunking)
        base = {**document.metadata, "source": document.source.value, "document_name": document.name}
        chunks = chunker.split(document.id, workspace.id, parsed, base_metadata=base)
        if not chunks:
            raise UnreadableFile(f"{document.name}: no text to index", kind=FailureKind.NO_TEXT)
        embedded = self.embed_chunks(workspace, chunks)
        self._index.replace_document(workspace.id, document.id, embedded)
        # The start of the text, for the preview (one character more than it shows: it knows it was cut).
        preview = parsed.text[: PREVIEW_CHARS + 1].encode("utf-8")
        self._previews.put(preview_key(workspace.id, document.id), preview, content_type="text/plain; charset=utf-8")
        if self._audit is not None:
            lines = "\n".join(
                json.dumps({"ordinal": c.ordinal, "start": c.start, "end": c.end, "text": c.text}) for c in chunks
            )
            self._audit.put(audit_key(workspace.id, document.id), lines.encode(), content_type="application/x-ndjson")
        if self.discard_deleted(workspace.id, [document.id]):
            raise DocumentDeleted(f"{document.name} was deleted while it was being indexed")
        self.match_catalog_fields(workspace.id, document.id, user_metadata(document.metadata))
        return len(embedded)

    def embed_chunks(self, workspace: Workspace, chunks: Sequence[Chunk]) -> list[Chunk]:
        embedder = self._models.embedders.get(workspace.embedding_model)
        out: list[Chunk] = []
        for batch in _batches(chunks, self._batch):
            vectors = embedder.embed_documents([embedding_text(c) for c in batch])
            out.extend(replace(c, embedding=tuple(v)) for c, v in zip(batch, vectors, strict=True))
        return out

    def match_catalog_fields(self, workspace_id: str, document_id: str, written: dict[str, MetadataValue]) -> None:
        """After chunks were written with user metadata ``written``: give them the catalog's, if it changed since.

        The run read the document (R), wrote its chunks (W), then reads the catalog here (K) and, if the
        fields differ, sets them on the chunks (F). A metadata edit (``DocumentService.set_metadata``)
        writes the catalog (E) and then the chunks in place (S). E and K are a write and a read of one
        record, so one of them comes first:

        - E before K: K reads the edited fields and F sets them over whatever W wrote (and S, whenever it
          lands, sets the same).
        - K before E: then W < K < E < S, so the edit's own S changes the chunks W wrote.

        (E before R: the run read the edited fields to begin with.) F itself sets what K read: an edit
        whose E comes after K but whose S lands before F would be undone by F, so the catalog is read
        once more after F, until it says what the chunks were last given.
        """
        for _ in range(FIELD_MATCH_ROUNDS):
            current = self._catalog.get_document(workspace_id, document_id)
            if current is None:  # deleted after the commit check: the purge deletes these chunks
                return
            fields = user_metadata(current.metadata)
            if fields == written:
                return
            changed = self._index.set_document_fields(workspace_id, document_id, fields)
            log.info("metadata of %s edited during ingestion: set on its %d chunks", document_id, changed)
            written = fields
        log.warning("metadata of %s kept changing during ingestion: its chunks may lag the catalog", document_id)

    def discard_deleted(self, workspace_id: str, document_ids: Collection[str]) -> set[str]:
        """After chunks were written: delete them again for every document the catalog no longer holds.

        Returns those documents' ids. This is the commit check that keeps a deletion final. The deletion
        (``DocumentService.purge``) removes the catalog record C first, then the chunks I, then the blobs;
        ingestion writes the chunks W, then checks the catalog K, then (if gone) deletes the chunks D.
        C and K are reads and writes of one record, so one of them comes first:

        - C before K: K finds no record and D deletes whatever W wrote, whether W committed before or
          after I. Nothing survives.
        - K before C: then W < K < C < I, so the purge's own I deletes what W wrote. Nothing survives.

        A crawl's pages are sub-documents, checked this way and then against their site
        (``WebsiteIngestion``). The only window left: a new document of the same name registered
        between K and D whose own ingestion also finishes in that window would lose its chunks and show
        ``processed`` with none until uploaded again.
        """
        wanted = set(document_ids)
        gone = wanted - self._catalog.existing_document_ids(workspace_id, wanted)
        for document_id in sorted(gone):
            removed = self._index.delete_document(workspace_id, document_id)
            self._previews.delete(preview_key(workspace_id, document_id))
            if self._audit is not None:
                self._audit.delete(audit_key(workspace_id, document_id))
            log.info("document %s was deleted during ingestion: %d chunks removed again", document_id, removed)
        return gone


def audit_key(workspace_id: str, document_id: str) -> str:
    """Where the chunk text of a document is kept for audit (AWS: the processing bucket)."""
    return document_prefix(workspace_id, document_id) + "chunks.jsonl"


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its text, after its title unless the text already starts with it."""
    if chunk.title and not chunk.text.startswith(chunk.title):
        return f"{chunk.title}\n{chunk.text}"
    return chunk.text


def _batches(items: Sequence[Chunk], size: int) -> Iterator[Sequence[Chunk]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
