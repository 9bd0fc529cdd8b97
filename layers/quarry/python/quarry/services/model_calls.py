"""The models on their own, as a use case: score passages against a query, embed texts.

Behind ``POST /rerank`` and ``POST /embeddings``: the edges translate the wire to these calls and back.
The limits are the wire schema's (``RerankIn``, ``EmbeddingsIn``), checked again here for any other caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quarry.errors import InvalidInput, UpstreamError
from quarry.services.models_registry import ModelRegistry

__all__ = [
    "MAX_EMBED_TEXTS",
    "MAX_RERANK_PASSAGES",
    "MAX_RERANK_QUERY_CHARS",
    "NO_RERANKER",
    "Embeddings",
    "ModelCallService",
    "Reranking",
]

MAX_RERANK_QUERY_CHARS = 4000
MAX_RERANK_PASSAGES = 200
MAX_EMBED_TEXTS = 256
NO_RERANKER = "no reranker is configured in this deployment"


@dataclass(frozen=True, slots=True)
class Reranking:
    model: str
    scores: list[float]  # one per passage, in the order given; higher is more relevant
    ranking: list[int]  # passage indexes, most relevant first (ties keep the given order)


@dataclass(frozen=True, slots=True)
class Embeddings:
    model: str
    dimensions: int
    vectors: list[list[float]]  # one per text, in the order given


class ModelCallService:
    def __init__(self, models: ModelRegistry) -> None:
        self._models = models

    def rerank(self, query: str, passages: Sequence[str], *, model: str | None = None) -> Reranking:
        if not query:
            raise InvalidInput("query must not be empty")
        if len(query) > MAX_RERANK_QUERY_CHARS:
            raise InvalidInput(f"query must be at most {MAX_RERANK_QUERY_CHARS} characters")
        _check_count("passages", passages, MAX_RERANK_PASSAGES)
        if model is None and self._models.rerankers.default is None:
            raise InvalidInput(NO_RERANKER)
        reranker = self._models.rerankers.get(model)
        scores = reranker.score(query, passages)
        if len(scores) != len(passages):
            raise UpstreamError(f"reranker {reranker.name} returned {len(scores)} scores for {len(passages)} passages")
        ranking = sorted(range(len(scores)), key=lambda i: -scores[i])
        return Reranking(model=reranker.name, scores=list(scores), ranking=ranking)

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> Embeddings:
        _check_count("texts", texts, MAX_EMBED_TEXTS)
        embedder = self._models.embedders.get(model)
        vectors = embedder.embed_documents(texts)
        if len(vectors) != len(texts):
            raise UpstreamError(f"embedder {embedder.name} returned {len(vectors)} vectors for {len(texts)} texts")
        if any(len(v) != embedder.dimensions for v in vectors):
            raise UpstreamError(f"embedder {embedder.name} returned vectors not of {embedder.dimensions} dimensions")
        return Embeddings(model=embedder.name, dimensions=embedder.dimensions, vectors=vectors)


def _check_count(what: str, items: Sequence[str], limit: int) -> None:
    if not 1 <= len(items) <= limit:
        raise InvalidInput(f"{what} must hold between 1 and {limit} items")
