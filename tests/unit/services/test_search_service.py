"""SearchService on the fakes: the three modes, fusion, reranking, filters, ownership and the catalog check."""

from __future__ import annotations

import math

import pytest

from quarry.errors import InvalidInput, NotFound
from quarry.models import Chunk, Document, DocumentSource, SearchMode, SearchRequest, Workspace
from quarry.services.access import WorkspaceAccess
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.search import RetrievalConfig, SearchService
from tests.fakes import FakeCatalog, FakeVectorIndex, HashEmbedder, WordOverlapReranker

OWNER, READER, STRANGER = "ada", "bob", "eve"
WS = "ws"
TEXTS = {
    "tides": "spring tides reach four metres at the harbour mouth",
    "terns": "terns nest on the harbour breakwater in may",
    "rail": "the tollan rail line opened in 2011",
}
EMBEDDER = HashEmbedder()


@pytest.fixture
def catalog() -> FakeCatalog:
    catalog = FakeCatalog()
    catalog.put_workspace(Workspace(WS, "docs", OWNER, "hash-16", 16, shared_with=(READER,)))
    for doc_id in TEXTS:
        catalog.put_document(Document(id=doc_id, workspace_id=WS, name=doc_id, source=DocumentSource.TEXT))
    return catalog


@pytest.fixture
def index() -> FakeVectorIndex:
    index = FakeVectorIndex()
    index.ensure_workspace(WS, dimensions=16)
    for doc_id, text in TEXTS.items():
        chunk = Chunk(
            WS,
            doc_id,
            0,
            text,
            0,
            len(text),
            embedding=tuple(EMBEDDER.embed_query(text)),
            metadata={"fields": {"kind": doc_id}},
        )
        index.replace_document(WS, doc_id, [chunk])
    return index


@pytest.fixture
def models() -> ModelRegistry:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), lambda: EMBEDDER)
    return models


def _service(
    catalog: FakeCatalog, index: FakeVectorIndex, models: ModelRegistry, config: RetrievalConfig | None = None
) -> SearchService:
    return SearchService(index=index, catalog=catalog, models=models, access=WorkspaceAccess(catalog), config=config)


@pytest.fixture
def search(catalog: FakeCatalog, index: FakeVectorIndex, models: ModelRegistry) -> SearchService:
    return _service(catalog, index, models)


def _request(query: str, mode: SearchMode = SearchMode.HYBRID, **kw: object) -> SearchRequest:
    return SearchRequest(workspace_id=WS, query=query, mode=mode, **kw)  # type: ignore[arg-type]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _dense_order(query: str) -> list[str]:
    q = EMBEDDER.embed_query(query)
    return sorted(TEXTS, key=lambda d: (-_cosine(q, EMBEDDER.embed_query(TEXTS[d])), d))


def test_dense_search_ranks_by_cosine_and_keeps_the_query_vector(search: SearchService) -> None:
    query = "terns nest on the harbour breakwater"

    result = search.search(OWNER, _request(query, SearchMode.DENSE))

    assert [h.chunk.document_id for h in result.hits] == _dense_order(query)
    assert [h.dense_rank for h in result.hits] == [1, 2, 3]
    assert all(h.score == h.dense_score and h.keyword_rank is None for h in result.hits)
    assert result.mode is SearchMode.DENSE and result.query_vector == EMBEDDER.embed_query(query)
    assert result.hits[0].chunk.embedding is None  # vectors are not handed out with hits


def test_keyword_search_finds_only_chunks_holding_a_query_term_best_first(search: SearchService) -> None:
    result = search.search(OWNER, _request("harbour tides", SearchMode.KEYWORD))

    assert [h.chunk.document_id for h in result.hits] == ["tides", "terns"]
    assert [h.keyword_rank for h in result.hits] == [1, 2]
    assert all(h.dense_rank is None and h.dense_score is None for h in result.hits)
    assert result.query_vector is None  # a keyword search embeds nothing


def test_hybrid_search_fuses_both_rankings_by_reciprocal_rank(search: SearchService) -> None:
    hits = search.search(OWNER, _request("harbour tides")).hits

    assert {h.chunk.document_id for h in hits} == set(TEXTS)
    for hit in hits:
        assert hit.dense_rank is not None
        ranks = [r for r in (hit.dense_rank, hit.keyword_rank) if r is not None]
        assert hit.score == pytest.approx(sum(1 / (60 + r) for r in ranks))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert next(h for h in hits if h.chunk.document_id == "rail").keyword_rank is None


@pytest.mark.parametrize(("dense_weight", "keyword_weight"), [(1.0, 0.0), (0.0, 1.0)])
def test_fusion_weights_come_from_the_retrieval_config(
    catalog: FakeCatalog, index: FakeVectorIndex, models: ModelRegistry, dense_weight: float, keyword_weight: float
) -> None:
    query = "harbour tides"
    search = _service(catalog, index, models, RetrievalConfig(dense_weight=dense_weight, keyword_weight=keyword_weight))

    hits = search.search(OWNER, _request(query)).hits

    if keyword_weight == 0.0:
        assert [h.chunk.document_id for h in hits] == _dense_order(query)
    else:
        assert [h.chunk.document_id for h in hits][:2] == ["tides", "terns"]


def test_top_k_and_filters_narrow_the_hits(search: SearchService) -> None:
    assert len(search.search(OWNER, _request("harbour tides", top_k=1)).hits) == 1
    filtered = search.search(OWNER, _request("harbour", filters={"kind": "terns"})).hits
    assert [h.chunk.document_id for h in filtered] == ["terns"]


def test_readers_search_and_anyone_else_gets_not_found(search: SearchService) -> None:
    assert search.search(READER, _request("harbour")).hits
    with pytest.raises(NotFound, match="workspace ws not found"):
        search.search(STRANGER, _request("harbour"))


@pytest.mark.parametrize("mode", list(SearchMode))
def test_chunks_of_documents_the_catalog_no_longer_holds_are_never_returned(
    search: SearchService, catalog: FakeCatalog, mode: SearchMode
) -> None:
    catalog.delete_document(WS, "tides")  # a purge that stopped before deleting the chunks

    hits = search.search(OWNER, _request("harbour tides", mode)).hits

    assert hits and "tides" not in {h.chunk.document_id for h in hits}


def test_reranking_reorders_by_the_rerankers_scores(
    catalog: FakeCatalog, index: FakeVectorIndex, models: ModelRegistry
) -> None:
    models.rerankers.register(ModelInfo("overlap", "overlap", "test"), WordOverlapReranker)
    search = _service(catalog, index, models)
    query = "the tollan rail line opened"

    hits = search.search(OWNER, _request(query, rerank=True)).hits

    expected = WordOverlapReranker().score(query, [h.chunk.text for h in hits])
    assert [h.rerank_score for h in hits] == sorted(expected, reverse=True)
    assert hits[0].chunk.document_id == "rail" and hits[0].score == hits[0].rerank_score == 1.0


def test_the_workspaces_own_reranker_is_preferred_to_the_default(
    catalog: FakeCatalog, index: FakeVectorIndex, models: ModelRegistry
) -> None:
    models.rerankers.register(ModelInfo("default", "default", "test"), lambda: WordOverlapReranker(name="default"))
    models.rerankers.register(ModelInfo("flat", "flat", "test"), _FlatReranker)
    catalog.put_workspace(Workspace(WS, "docs", OWNER, "hash-16", 16, reranker="flat"))

    hits = _service(catalog, index, models).search(OWNER, _request("rail", rerank=True)).hits

    assert {h.rerank_score for h in hits} == {0.5}


def test_reranking_without_a_reranker_is_refused_clearly(search: SearchService) -> None:
    with pytest.raises(InvalidInput, match="no reranker is configured in this deployment"):
        search.search(OWNER, _request("harbour", rerank=True))


class _FlatReranker:
    name = "flat"

    def score(self, query: str, passages: list[str]) -> list[float]:
        return [0.5] * len(passages)
