"""ModelCallService (POST /rerank, POST /embeddings) on the deterministic model fakes of tests/fakes.py."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from quarry.errors import InvalidInput, UpstreamError
from quarry.protocol import EmbeddingsIn, RerankIn
from quarry.services.model_calls import (
    MAX_EMBED_TEXTS,
    MAX_RERANK_PASSAGES,
    MAX_RERANK_QUERY_CHARS,
    NO_RERANKER,
    ModelCallService,
)
from quarry.services.models_registry import ModelInfo, ModelRegistry
from tests.fakes import HashEmbedder, WordOverlapReranker


class OverlapReranker(WordOverlapReranker):
    """Records what it was asked."""

    def __init__(self, *, name: str = "overlap") -> None:
        super().__init__(name=name)
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        self.calls.append((query, list(passages)))
        return super().score(query, passages)


class ShortReranker:
    name = "short"

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        return [1.0] * (len(passages) - 1)


class WrongSizeEmbedder(HashEmbedder):
    """Claims 16 dimensions, returns 8."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [v[:8] for v in super().embed_documents(texts)]


class DroppingEmbedder(HashEmbedder):
    """Drops the first text's vector."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return super().embed_documents(texts)[1:]


def registry(*, reranker: OverlapReranker | None = None) -> ModelRegistry:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder, default=True)
    models.embedders.register(
        ModelInfo("wrong-size", "wrong", "test", dimensions=16), lambda: WrongSizeEmbedder(name="wrong-size")
    )
    models.embedders.register(
        ModelInfo("dropping", "dropping", "test", dimensions=16), lambda: DroppingEmbedder(name="dropping")
    )
    if reranker is not None:
        models.rerankers.register(ModelInfo("overlap", "overlap", "test"), lambda: reranker, default=True)
        models.rerankers.register(ModelInfo("short", "short", "test"), ShortReranker)
    return models


PASSAGES = ["the harbour fees", "leave is 27 days", "annual leave days are 27", "nothing relevant"]


# ---------------------------------------------------------------------------------------------- rerank


def test_rerank_scores_in_the_given_order_and_ranks_best_first() -> None:
    reranker = OverlapReranker()
    result = ModelCallService(registry(reranker=reranker)).rerank("how many leave days", PASSAGES)
    assert result.model == "overlap"
    assert result.scores == [0.0, 0.5, 0.5, 0.0]
    assert result.ranking == [1, 2, 0, 3]  # ties keep the order they were given in
    assert reranker.calls == [("how many leave days", PASSAGES)]


def test_rerank_uses_the_named_model() -> None:
    default, second = OverlapReranker(), OverlapReranker(name="second")
    models = registry(reranker=default)
    models.rerankers.register(ModelInfo("second", "second", "test"), lambda: second)
    result = ModelCallService(models).rerank("leave", PASSAGES, model="second")
    assert result.model == "second" and result.ranking == [1, 2, 0, 3]
    assert default.calls == [] and second.calls == [("leave", PASSAGES)]


def test_rerank_refuses_a_score_count_that_does_not_match_the_passages() -> None:
    service = ModelCallService(registry(reranker=OverlapReranker()))
    with pytest.raises(UpstreamError, match="1 scores for 2 passages"):
        service.rerank("leave", ["a", "b"], model="short")


def test_rerank_refuses_when_no_reranker_is_configured() -> None:
    service = ModelCallService(registry())
    with pytest.raises(InvalidInput) as refused:
        service.rerank("leave", PASSAGES)
    assert refused.value.message == NO_RERANKER
    with pytest.raises(InvalidInput, match="unknown reranker model 'overlap'"):
        service.rerank("leave", PASSAGES, model="overlap")


def test_rerank_refuses_an_unknown_model() -> None:
    with pytest.raises(InvalidInput, match="unknown reranker model 'nope'"):
        ModelCallService(registry(reranker=OverlapReranker())).rerank("leave", PASSAGES, model="nope")


@pytest.mark.parametrize(
    ("query", "passages", "message"),
    [
        ("", ["a"], "query must not be empty"),
        ("q" * (MAX_RERANK_QUERY_CHARS + 1), ["a"], f"at most {MAX_RERANK_QUERY_CHARS} characters"),
        ("leave", [], "passages must hold between 1 and"),
        ("leave", ["a"] * (MAX_RERANK_PASSAGES + 1), f"between 1 and {MAX_RERANK_PASSAGES} items"),
    ],
)
def test_rerank_validates_before_calling_the_model(query: str, passages: list[str], message: str) -> None:
    reranker = OverlapReranker()
    with pytest.raises(InvalidInput, match=message):
        ModelCallService(registry(reranker=reranker)).rerank(query, passages)
    assert reranker.calls == []


def test_rerank_accepts_the_limits() -> None:
    reranker = OverlapReranker()
    result = ModelCallService(registry(reranker=reranker)).rerank(
        "q" * MAX_RERANK_QUERY_CHARS, ["a"] * MAX_RERANK_PASSAGES
    )
    assert len(result.scores) == len(result.ranking) == MAX_RERANK_PASSAGES


def test_rerank_limits_are_the_wire_schemas() -> None:
    RerankIn(query="q" * MAX_RERANK_QUERY_CHARS, passages=["a"] * MAX_RERANK_PASSAGES)
    with pytest.raises(ValidationError):
        RerankIn(query="q" * (MAX_RERANK_QUERY_CHARS + 1), passages=["a"])
    with pytest.raises(ValidationError):
        RerankIn(query="q", passages=["a"] * (MAX_RERANK_PASSAGES + 1))


# ---------------------------------------------------------------------------------------------- embed


def test_embed_returns_one_vector_per_text_in_order() -> None:
    texts = ["leave is 27 days", "the harbour fees", "leave is 27 days"]
    result = ModelCallService(registry()).embed(texts)
    assert (result.model, result.dimensions) == ("hash-16", 16)
    assert result.vectors == [HashEmbedder().embed_query(t) for t in texts]
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]


def test_embed_uses_the_named_model_and_refuses_an_unknown_one() -> None:
    models = registry()
    models.embedders.register(
        ModelInfo("small", "small", "test", dimensions=4), lambda: HashEmbedder(name="small-4", dimensions=4)
    )
    result = ModelCallService(models).embed(["leave days"], model="small")
    assert (result.model, result.dimensions) == ("small-4", 4)
    assert result.vectors == [HashEmbedder(name="small-4", dimensions=4).embed_query("leave days")]
    with pytest.raises(InvalidInput, match="unknown embedding model 'nope'"):
        ModelCallService(models).embed(["a"], model="nope")


def test_embed_refuses_vectors_that_do_not_match_the_texts_or_the_dimensions() -> None:
    service = ModelCallService(registry())
    with pytest.raises(UpstreamError, match="not of 16 dimensions"):
        service.embed(["a"], model="wrong-size")
    with pytest.raises(UpstreamError, match="1 vectors for 2 texts"):
        service.embed(["a", "b"], model="dropping")


@pytest.mark.parametrize("count", [0, MAX_EMBED_TEXTS + 1])
def test_embed_refuses_too_few_or_too_many_texts(count: int) -> None:
    with pytest.raises(InvalidInput, match=f"texts must hold between 1 and {MAX_EMBED_TEXTS} items"):
        ModelCallService(registry()).embed(["a"] * count)


def test_embed_limit_is_the_wire_schemas() -> None:
    assert len(ModelCallService(registry()).embed(["a"] * MAX_EMBED_TEXTS).vectors) == MAX_EMBED_TEXTS
    EmbeddingsIn(texts=["a"] * MAX_EMBED_TEXTS)
    with pytest.raises(ValidationError):
        EmbeddingsIn(texts=["a"] * (MAX_EMBED_TEXTS + 1))
