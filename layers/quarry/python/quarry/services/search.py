"""Search use case: embed the query, dense and keyword rankings in parallel, fuse, optionally rerank.

Hits are checked against the catalog before reranking: chunks whose document the catalog no longer holds
(a deletion racing an ingestion, a purge that failed half-way) are never returned, to search or to chat.

``SearchRequest.filters`` (a ``quarry.filters.Filter``) goes to both rankers as it is: the index evaluates it
while ranking, so a selective filter still yields ``top_k`` hits, and BM25 keeps its workspace-wide statistics.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from quarry.errors import InvalidInput
from quarry.models import Hit, SearchMode, SearchRequest, Workspace
from quarry.ports import Catalog, ScoredChunk, VectorIndex
from quarry.services.access import WorkspaceAccess
from quarry.services.fusion import reciprocal_rank_fusion
from quarry.services.models_registry import ModelRegistry

__all__ = ["RetrievalConfig", "SearchResult", "SearchService", "effective_mode"]


@dataclass(frozen=True, slots=True)
class RetrievalConfig:
    rrf_k: int = 60
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    candidates: int = 50


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    mode: SearchMode
    took_ms: float
    query_vector: list[float] | None = None


def effective_mode(workspace: Workspace, asked: SearchMode) -> SearchMode:
    """A workspace created with ``hybrid=False`` is searched dense-only: hybrid search there (the default, and
    what chat asks for) skips the keyword ranker and the fusion. Dense and keyword searches asked by name run."""
    if asked is SearchMode.HYBRID and not workspace.hybrid:
        return SearchMode.DENSE
    return asked


class SearchService:
    def __init__(
        self,
        *,
        index: VectorIndex,
        catalog: Catalog,
        models: ModelRegistry,
        access: WorkspaceAccess,
        config: RetrievalConfig | None = None,
    ) -> None:
        self._index = index
        self._catalog = catalog
        self._models = models
        self._access = access
        self._config = config or RetrievalConfig()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="keyword")

    def search(self, user: str, request: SearchRequest) -> SearchResult:
        workspace = self._access.readable(user, request.workspace_id)
        return self.search_workspace(workspace, request)

    def search_workspace(self, workspace: Workspace, request: SearchRequest) -> SearchResult:
        started = time.perf_counter()
        mode = effective_mode(workspace, request.mode)
        depth = max(request.top_k, self._config.candidates if (mode is SearchMode.HYBRID or request.rerank) else 0)
        keyword_future = (
            self._pool.submit(self._index.keyword, workspace.id, request.query, k=depth, filters=request.filters)
            if mode is not SearchMode.DENSE
            else None
        )
        dense: list[ScoredChunk] = []
        vector: list[float] | None = None
        if mode is not SearchMode.KEYWORD:
            vector = self._models.embedders.get(workspace.embedding_model).embed_query(request.query)
            dense = self._index.dense(workspace.id, vector, k=depth, filters=request.filters)
        keyword = keyword_future.result() if keyword_future else []
        hits = self._only_cataloged(workspace.id, self._combine(mode, dense, keyword))
        if request.rerank:
            hits = self._rerank(workspace, request.query, hits)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(hits=hits[: request.top_k], mode=mode, took_ms=took, query_vector=vector)

    def _combine(self, mode: SearchMode, dense: list[ScoredChunk], keyword: list[ScoredChunk]) -> list[Hit]:
        if mode is SearchMode.DENSE:
            return [
                Hit(chunk=s.chunk, score=s.score, dense_rank=i, dense_score=s.score) for i, s in enumerate(dense, 1)
            ]
        if mode is SearchMode.KEYWORD:
            return [Hit(chunk=s.chunk, score=s.score, keyword_rank=i) for i, s in enumerate(keyword, 1)]
        cfg = self._config
        fused = reciprocal_rank_fusion([dense, keyword], weights=[cfg.dense_weight, cfg.keyword_weight], k=cfg.rrf_k)
        return [
            Hit(
                chunk=f.scored.chunk,
                score=f.score,
                dense_rank=f.ranks[0],
                keyword_rank=f.ranks[1],
                dense_score=f.scores[0],
            )
            for f in fused
        ]

    def _only_cataloged(self, workspace_id: str, hits: list[Hit]) -> list[Hit]:
        """Drop hits whose document the catalog does not hold (one batched lookup per search)."""
        if not hits:
            return hits
        held = self._catalog.existing_document_ids(workspace_id, {h.chunk.document_id for h in hits})
        return [h for h in hits if h.chunk.document_id in held]

    def _rerank(self, workspace: Workspace, query: str, hits: list[Hit]) -> list[Hit]:
        name = workspace.reranker or self._models.rerankers.default
        if name is None:
            raise InvalidInput("reranking was asked for, but no reranker is configured in this deployment")
        reranker = self._models.rerankers.get(name)
        scores = reranker.score(query, [h.chunk.text for h in hits])
        rescored = [replace(h, score=s, rerank_score=s) for h, s in zip(hits, scores, strict=True)]
        return sorted(rescored, key=lambda h: -h.score)
