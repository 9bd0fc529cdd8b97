"""A workspace created with ``hybrid=False`` is searched dense-only: no keyword ranker, no fusion."""

from __future__ import annotations

import pytest

from quarry.filters import Filter
from quarry.models import Chunk, Document, DocumentSource, SearchMode, SearchRequest, Workspace
from quarry.ports import ScoredChunk
from quarry.services.access import WorkspaceAccess
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.search import SearchService
from tests.fakes import FakeCatalog, FakeVectorIndex, HashEmbedder

USER = "alice"
PASSAGES = [
    "Employees receive 27 days of annual leave per year.",
    "Unused leave days can be carried over until March.",
    "The ferry to the island leaves every hour.",
    "Form HR-7 requests parental leave.",  # the only one naming the form: a keyword-only match
]
QUERY = "form HR-7"


class CountingIndex(FakeVectorIndex):
    def __init__(self) -> None:
        super().__init__()
        self.keyword_calls = 0

    def keyword(self, workspace_id: str, query: str, *, k: int, filters: Filter | None = None) -> list[ScoredChunk]:
        self.keyword_calls += 1
        return super().keyword(workspace_id, query, k=k, filters=filters)


def _search(hybrid: bool) -> tuple[SearchService, CountingIndex, Workspace]:
    catalog, index, embedder = FakeCatalog(), CountingIndex(), HashEmbedder()
    workspace = Workspace(
        id=f"ws-{hybrid}", name="handbook", owner=USER, embedding_model="hash-16", dimensions=16, hybrid=hybrid
    )
    catalog.put_workspace(workspace)
    index.ensure_workspace(workspace.id, dimensions=16)
    for n, text in enumerate(PASSAGES):
        catalog.put_document(
            Document(id=f"d{n}", workspace_id=workspace.id, name=f"{n}.txt", source=DocumentSource.TEXT)
        )
        vector = tuple(embedder.embed_query(text))
        index.replace_document(
            workspace.id, f"d{n}", [Chunk(workspace.id, f"d{n}", 0, text, 0, len(text), embedding=vector)]
        )
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    service = SearchService(index=index, catalog=catalog, models=models, access=WorkspaceAccess(catalog))
    return service, index, workspace


def test_hybrid_search_of_a_dense_only_workspace_runs_the_dense_ranker_alone() -> None:
    service, index, workspace = _search(hybrid=False)

    result = service.search(USER, SearchRequest(workspace_id=workspace.id, query=QUERY, top_k=4))
    dense = service.search(USER, SearchRequest(workspace_id=workspace.id, query=QUERY, top_k=4, mode=SearchMode.DENSE))

    assert result.mode is SearchMode.DENSE
    assert index.keyword_calls == 0
    assert all(hit.keyword_rank is None and hit.dense_rank is not None for hit in result.hits)
    assert [(h.chunk.id, h.score) for h in result.hits] == [(h.chunk.id, h.score) for h in dense.hits]


def test_a_hybrid_workspace_fuses_both_rankers_for_the_same_search() -> None:
    service, index, workspace = _search(hybrid=True)

    result = service.search(USER, SearchRequest(workspace_id=workspace.id, query=QUERY, top_k=4))

    assert result.mode is SearchMode.HYBRID
    assert index.keyword_calls == 1
    assert result.hits[0].chunk.document_id == "d3" and result.hits[0].keyword_rank == 1


@pytest.mark.parametrize("mode", [SearchMode.DENSE, SearchMode.KEYWORD])
def test_a_ranker_asked_for_by_name_still_runs_in_a_dense_only_workspace(mode: SearchMode) -> None:
    service, index, workspace = _search(hybrid=False)

    result = service.search(USER, SearchRequest(workspace_id=workspace.id, query=QUERY, top_k=4, mode=mode))

    assert result.mode is mode
    assert index.keyword_calls == (1 if mode is SearchMode.KEYWORD else 0)
