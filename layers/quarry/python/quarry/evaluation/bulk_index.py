"""Index many parsed documents at once, for evaluation corpora (BEIR, passage files, the chat bench).

Embedding batches span documents, so the embedder sees batches as large as for one long document, and each
finished document is written by a second thread while the next batch is embedded: the run goes close to the
embedder's own throughput. The documents are registered in the catalog (if absent) before their chunks are
written and marked processed after, so search serves them; one deleted meanwhile loses its chunks again
(the pipeline's commit check, ``DocumentPipeline.discard_deleted``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from quarry.models import Chunk, ChunkingConfig, Document, DocumentSource, DocumentStatus, Workspace
from quarry.ports import Catalog, ParsedDocument, VectorIndex
from quarry.services.document_pipeline import Chunker, embedding_text
from quarry.services.models_registry import ModelRegistry

if TYPE_CHECKING:
    from quarry.wiring import Services

__all__ = ["BulkIndexer", "index_documents"]

#: Texts per embedder call, in batches: the embedder sorts a call's texts by length, so less padding.
BATCHES_PER_CALL = 8


def index_documents(
    services: Services,
    workspace: Workspace,
    items: Sequence[tuple[Document, ParsedDocument]],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Index ``items`` into ``workspace`` with the services' adapters; returns the number of chunks."""
    indexer = BulkIndexer(
        catalog=services.adapters.catalog,
        index=services.adapters.vector_index,
        chunker_for=services.adapters.chunker_for,
        models=services.models,
        discard_deleted=services.document_pipeline.discard_deleted,
        embed_batch_size=services.settings.embedding_batch_size,
    )
    return indexer.index(workspace, items, on_progress=on_progress)


class BulkIndexer:
    def __init__(
        self,
        *,
        catalog: Catalog,
        index: VectorIndex,
        chunker_for: Callable[[ChunkingConfig], Chunker],
        models: ModelRegistry,
        discard_deleted: Callable[[str, Collection[str]], set[str]],
        embed_batch_size: int = 64,
    ) -> None:
        self._catalog = catalog
        self._index = index
        self._chunker_for = chunker_for
        self._models = models
        self._discard_deleted = discard_deleted
        self._batch = embed_batch_size

    def index(
        self,
        workspace: Workspace,
        items: Sequence[tuple[Document, ParsedDocument]],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Chunk, embed and write every item; ``on_progress`` gets the number of chunks of each embedder call."""
        per_doc = self._split(workspace, items)
        flat = [c for chunks in per_doc for c in chunks]
        owners = [i for i, chunks in enumerate(per_doc) for _ in chunks]
        pending = [len(chunks) for chunks in per_doc]
        done: list[list[Chunk]] = [[] for _ in per_doc]
        embedder = self._models.embedders.get(workspace.embedding_model)
        finished: dict[str, list[Chunk]] = {}
        documents: dict[str, Document] = {}
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer") as writer:
            futures: list[Future[None]] = []
            group = self._batch * BATCHES_PER_CALL
            for start in range(0, len(flat), group):
                batch = flat[start : start + group]
                vectors = embedder.embed_documents([embedding_text(c) for c in batch])
                for offset, (chunk, vector) in enumerate(zip(batch, vectors, strict=True)):
                    i = owners[start + offset]
                    done[i].append(replace(chunk, embedding=tuple(vector)))
                    pending[i] -= 1
                    if pending[i] == 0:
                        finished[items[i][0].id] = done[i]
                        documents[items[i][0].id] = items[i][0]
                # Finished documents are written together while the next group is embedded.
                if finished:
                    futures.append(writer.submit(self._write, workspace.id, documents, finished))
                    finished, documents = {}, {}
                if on_progress:
                    on_progress(len(batch))
            for f in futures:
                f.result()
        self._index.optimize(workspace.id)
        return len(flat)

    def _split(self, workspace: Workspace, items: Sequence[tuple[Document, ParsedDocument]]) -> list[list[Chunk]]:
        """Each item's chunks, in one call when the chunker can split many documents at once."""
        chunker = self._chunker_for(workspace.chunking)
        split_many = getattr(chunker, "split_many", None)
        pairs = [(d.id, p) for d, p in items]
        meta = {"source": DocumentSource.TEXT.value}
        if split_many is not None:
            per_doc: list[list[Chunk]] = split_many(workspace.id, pairs, base_metadata=meta)
            return per_doc
        return [chunker.split(d, workspace.id, p, base_metadata=meta) for d, p in pairs]

    def _write(self, workspace_id: str, documents: dict[str, Document], chunks: dict[str, list[Chunk]]) -> None:
        for document in documents.values():
            self._catalog.register_document(replace(document, status=DocumentStatus.PROCESSING))
        self._index.replace_documents(workspace_id, chunks)
        gone = self._discard_deleted(workspace_id, chunks)
        for document_id, written in chunks.items():
            if document_id not in gone:
                self._catalog.set_document_status(
                    workspace_id, document_id, DocumentStatus.PROCESSED, chunk_count=len(written)
                )
