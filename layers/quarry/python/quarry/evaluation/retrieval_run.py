"""Run retrieval over a BEIR dataset through the real services: ingest into a throwaway workspace, search, score."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quarry.evaluation.beir import BeirDataset
from quarry.evaluation.bulk_index import index_documents
from quarry.evaluation.metrics import RetrievalReport, evaluate
from quarry.models import Document, DocumentSource, SearchMode, SearchRequest, Workspace, new_id
from quarry.ports import ParsedDocument
from quarry.wiring import Services

__all__ = [
    "IngestFigures",
    "ModeScore",
    "ingest_corpus",
    "judged_queries",
    "retrieval_run",
    "score_modes",
    "throwaway_workspace",
]

Run = dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class IngestFigures:
    documents: int
    chunks: int
    seconds: float

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "documents_per_second": round(self.documents / self.seconds, 2) if self.seconds else 0.0,
            "chunks_per_second": round(self.chunks_per_second, 2),
        }


def throwaway_workspace(
    services: Services, *, user: str = "eval", chunk_size: int = 256, overlap: int = 32
) -> Workspace:
    from quarry.services.workspaces import WorkspaceSpec

    return services.workspaces.create(
        user, WorkspaceSpec(name=f"eval-{new_id()[:8]}", chunk_size=chunk_size, chunk_overlap=overlap)
    )


def corpus_items(dataset: BeirDataset, workspace: Workspace) -> list[tuple[Document, ParsedDocument]]:
    items = []
    for doc in dataset.corpus.values():
        text = doc.text
        items.append(
            (
                Document(id=doc.id, workspace_id=workspace.id, name=doc.title or doc.id, source=DocumentSource.TEXT),
                ParsedDocument(text=text, title=doc.title),
            )
        )
    return items


def ingest_corpus(
    services: Services,
    workspace: Workspace,
    dataset: BeirDataset,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> IngestFigures:
    items = corpus_items(dataset, workspace)
    started = time.perf_counter()
    chunks = index_documents(services, workspace, items, on_progress=on_progress)
    return IngestFigures(documents=len(items), chunks=chunks, seconds=time.perf_counter() - started)


def retrieval_run(
    services: Services,
    workspace: Workspace,
    queries: Sequence[tuple[str, str]],
    *,
    mode: SearchMode,
    rerank: bool = False,
    depth: int = 100,
) -> tuple[Run, list[float]]:
    """Search every query; a document scores as its best chunk. Returns the run and per-query latencies (ms)."""
    run: Run = {}
    latencies: list[float] = []
    for query_id, text in queries:
        t0 = time.perf_counter()
        result = services.search.search_workspace(
            workspace, SearchRequest(workspace_id=workspace.id, query=text, top_k=depth, mode=mode, rerank=rerank)
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        scores: dict[str, float] = {}
        for hit in result.hits:
            doc = hit.chunk.document_id
            scores[doc] = max(scores.get(doc, float("-inf")), hit.score)
        run[query_id] = scores
    return run, latencies


@dataclass(frozen=True, slots=True)
class ModeScore:
    report: RetrievalReport
    latencies_ms: list[float]


def judged_queries(dataset: BeirDataset) -> list[tuple[str, str]]:
    return [(q.id, q.text) for q in dataset.queries.values() if q.id in dataset.qrels]


def score_modes(
    services: Services,
    workspace: Workspace,
    dataset: BeirDataset,
    modes: Sequence[SearchMode],
    *,
    rerank: bool = False,
) -> dict[str, ModeScore]:
    queries = judged_queries(dataset)
    results: dict[str, ModeScore] = {}
    for mode in modes:
        run, latencies = retrieval_run(services, workspace, queries, mode=mode, rerank=rerank)
        report = evaluate(run, dataset.qrels, ndcg_at=(10,), recall_at=(10, 100), mrr_at=(10,))
        results[mode.value] = ModeScore(report=report, latencies_ms=latencies)
    return results
