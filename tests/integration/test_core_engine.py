"""The core engine on its embedded defaults: real Postgres + pgvector, real MiniLM, real llama.cpp."""

from __future__ import annotations

import pytest

from quarry.errors import InvalidInput, NotFound
from quarry.models import DocumentStatus, SearchMode, SearchRequest
from quarry.services.chat import ChatRequest
from quarry.services.documents import document_id_for
from quarry.services.prompts import NO_ANSWER
from quarry.services.workspaces import WorkspaceSpec
from quarry.wiring import Services

pytestmark = pytest.mark.integration

USER = "alice"

ZORBANIA = """# Zorbania

Zorbania is a small landlocked country in the Vell valley. Its capital is Plimsk, a city on the river Vell.
The population of Zorbania is about 2.4 million people. The national currency is the zorb.

## Economy

Zorbania exports copper and hazelnuts. The new Plimsk metro cost 3 billion zorbs to build.
"""

KELP = """Giant kelp grows up to half a metre per day in cold, nutrient-rich water.
Sea otters protect kelp forests by eating the urchins that graze on kelp holdfasts.
"""

VOLCANO_HTML = """<html><head><title>Mount Orrin</title></head><body>
<h1>Mount Orrin</h1><p>Mount Orrin is a dormant volcano. Its last eruption was in 1721.</p>
<p>The summit is 3,402 metres high and is covered by a glacier.</p></body></html>"""

TEA_CSV = (
    "plant,region,harvest\nassam tea,Brahmaputra valley,March to November\ndarjeeling tea,Himalayan slopes,spring\n"
)


@pytest.fixture(scope="module")
def workspace(services: Services):  # type: ignore[no-untyped-def]
    ws = services.workspaces.create(USER, WorkspaceSpec(name="engine", chunk_size=64, chunk_overlap=8))
    files = {
        "zorbania.md": ZORBANIA.encode(),
        "kelp.txt": KELP.encode(),
        "orrin.html": VOLCANO_HTML.encode(),
        "tea.csv": TEA_CSV.encode(),
    }
    for name, data in files.items():
        kind = "table" if name.endswith(".csv") else "prose"  # user metadata: what the filters select on
        document, created = services.documents.add_file(USER, ws.id, name, data, metadata={"kind": kind})
        assert created
        stored = services.documents.get(USER, ws.id, document.id)
        assert stored.status is DocumentStatus.PROCESSED, stored.status_reason
        assert stored.chunk_count >= 1
    return ws


def search(services: Services, ws_id: str, query: str, mode: SearchMode, **kw):  # type: ignore[no-untyped-def]
    return services.search.search(USER, SearchRequest(workspace_id=ws_id, query=query, mode=mode, **kw)).hits


@pytest.mark.parametrize("mode", list(SearchMode))
def test_every_mode_finds_the_right_document(services: Services, workspace, mode: SearchMode) -> None:  # type: ignore[no-untyped-def]
    hits = search(services, workspace.id, "what do sea otters eat in kelp forests", mode, top_k=3)
    assert hits, "no hits"
    assert hits[0].chunk.metadata["document_name"] == "kelp.txt"
    top = hits[0].chunk
    assert top.text in KELP  # the span is the stored text of the document
    assert 0 <= top.start < top.end


def test_hybrid_reports_both_rankers(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    hits = search(services, workspace.id, "Mount Orrin last eruption", SearchMode.HYBRID, top_k=5)
    assert hits[0].chunk.metadata["document_name"] == "orrin.html"
    assert hits[0].dense_rank is not None and hits[0].keyword_rank is not None
    assert hits[0].dense_score is not None and hits[0].dense_score > 0.3
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_keyword_mode_is_bm25_on_stems(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    # "exporting" stems to the same lexeme as "exports"; a term absent everywhere matches nothing.
    hits = search(services, workspace.id, "exporting hazelnut", SearchMode.KEYWORD)
    assert [h.chunk.metadata["document_name"] for h in hits][:1] == ["zorbania.md"]
    assert search(services, workspace.id, "xylophonist", SearchMode.KEYWORD) == []


def test_metadata_filters_are_applied_in_the_database(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    # "valley" is in zorbania.md and tea.csv: the filter, on user metadata, keeps the table only.
    hits = search(services, workspace.id, "valley", SearchMode.HYBRID, top_k=10, filters={"kind": "table"})
    assert hits and {h.chunk.metadata["document_name"] for h in hits} == {"tea.csv"}
    assert all(h.chunk.metadata["fields"] == {"kind": "table"} for h in hits)
    none = search(services, workspace.id, "valley", SearchMode.DENSE, filters={"kind": "absent"})
    assert none == []
    kelp = document_id_for(workspace.id, "kelp.txt")  # the system key document_id
    only = search(services, workspace.id, "valley", SearchMode.DENSE, top_k=10, filters={"document_id": kelp})
    assert only and {h.chunk.document_id for h in only} == {kelp}


def test_reingesting_the_same_file_adds_nothing(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    before = services.adapters.vector_index.count(workspace.id)
    _, created = services.documents.add_file(USER, workspace.id, "kelp.txt", KELP.encode())
    assert not created
    assert services.adapters.vector_index.count(workspace.id) == before


def test_a_changed_file_replaces_its_chunks(services: Services) -> None:
    ws = services.workspaces.create(USER, WorkspaceSpec(name="replace", chunk_size=32, chunk_overlap=0))
    long_text = "\n\n".join(f"Paragraph {i} talks about lighthouse number {i} on the coast." for i in range(12))
    doc, _ = services.documents.add_file(USER, ws.id, "notes.txt", long_text.encode())
    first = services.adapters.vector_index.count(ws.id, document_id=doc.id)
    assert first > 1
    services.documents.add_file(USER, ws.id, "notes.txt", b"Only one short line about a windmill now.")
    assert services.adapters.vector_index.count(ws.id, document_id=doc.id) == 1
    hits = search(services, ws.id, "lighthouse", SearchMode.KEYWORD)
    assert hits == []


def test_bad_files_fail_alone_with_a_reason(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    before = services.adapters.vector_index.count(workspace.id)
    doc, _ = services.documents.add_file(USER, workspace.id, "empty.txt", b"   \n  ")
    failed = services.documents.get(USER, workspace.id, doc.id)
    assert failed.status is DocumentStatus.ERROR
    assert failed.status_reason and failed.status_reason.startswith("This file is empty.")
    doc, _ = services.documents.add_file(USER, workspace.id, "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    assert services.documents.get(USER, workspace.id, doc.id).status is DocumentStatus.ERROR
    with pytest.raises(Exception, match="unsupported"):
        services.documents.add_file(USER, workspace.id, "tool.exe", b"MZ\x90\x00")
    assert services.adapters.vector_index.count(workspace.id) == before  # nothing already indexed was lost


def test_unknown_or_foreign_workspace_is_not_found(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        search(services, "0" * 32, "anything", SearchMode.HYBRID)
    with pytest.raises(NotFound):
        services.search.search("mallory", SearchRequest(workspace_id=workspace.id, query="kelp"))
    with pytest.raises(ValueError):
        SearchRequest(workspace_id=workspace.id, query="  ")
    with pytest.raises(ValueError):
        SearchRequest(workspace_id=workspace.id, query="kelp", top_k=0)
    with pytest.raises(InvalidInput):
        services.workspaces.create(USER, WorkspaceSpec(name="bad", chunk_size=100, chunk_overlap=100))


@pytest.mark.llm
def test_grounded_answer_cites_its_source(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    tokens: list[str] = []
    outcome = services.chat.answer(
        ChatRequest(user=USER, text="What is the capital of Zorbania?", workspace_id=workspace.id, max_tokens=48),
        on_token=tokens.append,
    )
    answer = outcome.answer
    assert len(tokens) > 1, "the answer was not streamed"
    assert "Plimsk" in answer.text
    assert answer.grounded and answer.citations
    cited_docs = {c.document_id for c in answer.citations}
    zorbania = services.documents.get(USER, workspace.id, answer.citations[0].document_id)
    assert zorbania.name == "zorbania.md" and len(cited_docs) >= 1
    for c in answer.citations:
        assert f"[{c.n}]" in answer.text
        assert c.text and c.end > c.start


@pytest.mark.llm
def test_no_relevant_passage_means_i_dont_know(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    outcome = services.chat.answer(
        ChatRequest(user=USER, text="Who won the 1998 FIFA World Cup final?", workspace_id=workspace.id)
    )
    assert outcome.answer.text == NO_ANSWER
    assert not outcome.answer.grounded and outcome.answer.citations == ()


@pytest.mark.llm
def test_follow_up_is_condensed_with_the_history(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    first = services.chat.answer(
        ChatRequest(user=USER, text="What is the capital of Zorbania?", workspace_id=workspace.id, max_tokens=32)
    )
    follow = services.chat.answer(
        ChatRequest(
            user=USER,
            text="and what about its population?",
            session_id=first.session.id,
            workspace_id=workspace.id,
            max_tokens=48,
        )
    )
    assert "zorbania" in follow.answer.standalone_question.lower()
    assert follow.answer.grounded
    assert any(
        services.documents.get(USER, workspace.id, c.document_id).name == "zorbania.md" for c in follow.answer.citations
    )
    history = services.sessions.messages(USER, first.session.id).items
    assert [m.role.value for m in history] == ["user", "assistant", "user", "assistant"]


def test_documents_stuck_in_processing_are_swept_to_error(services: Services, workspace) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from quarry.models import Document, DocumentSource

    stuck = Document(id="stuck-doc", workspace_id=workspace.id, name="stuck.pdf", source=DocumentSource.FILE)
    services.adapters.catalog.put_document(stuck)
    services.ingestion_steps.set_processing(workspace.id, stuck.id)
    assert services.ingestion_steps.sweep_stale(timedelta(hours=1)) == []  # not stale yet
    swept = services.ingestion_steps.sweep_stale(timedelta(seconds=0))
    assert [d.id for d in swept] == ["stuck-doc"]
    after = services.documents.get(USER, workspace.id, stuck.id)
    assert after.status is DocumentStatus.ERROR
    assert after.status_reason and after.status_reason.startswith("Processing took too long and was stopped.")
    processed = services.documents.list_documents(USER, workspace.id, status=DocumentStatus.PROCESSED).items
    assert all(d.status is DocumentStatus.PROCESSED for d in processed) and processed
