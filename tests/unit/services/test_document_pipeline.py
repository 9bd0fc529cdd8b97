"""DocumentPipeline (parse -> chunk -> embed -> write) on the fakes, with the real parser and chunker."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from quarry.errors import UnreadableDocument
from quarry.models import Chunk
from quarry.ports import ParsedDocument
from quarry.services.document_pipeline import DocumentDeleted, audit_key, embedding_text
from tests.unit.services.ingestion_fixtures import CHUNK_WORDS, IngestionRig, build_rig

WORDS = " ".join(f"w{i}" for i in range(70))  # 70 words: five chunks of at most 16


@pytest.fixture
def rig() -> IngestionRig:
    return build_rig(embed_batch_size=2)


def _stored(rig: IngestionRig, document_id: str) -> list[Chunk]:
    return rig.index.workspaces[rig.workspace.id].documents.get(document_id, [])


def test_a_stored_text_becomes_embedded_chunks_with_exact_spans_and_its_metadata(rig: IngestionRig) -> None:
    document = rig.add_text("tides", WORDS)

    count = rig.pipeline.ingest_stored(rig.workspace, document)

    chunks = _stored(rig, document.id)
    assert count == len(chunks) == 5
    assert [c.ordinal for c in chunks] == list(range(5))
    assert all(len(c.text.split()) <= CHUNK_WORDS and WORDS[c.start : c.end] == c.text for c in chunks)
    assert " ".join(c.text for c in chunks) == WORDS  # no overlap configured: the chunks tile the text
    assert all(c.metadata == {"source": "text", "document_name": "tides"} for c in chunks)
    assert [c.embedding for c in chunks] == [tuple(rig.embedder.embed_query(embedding_text(c))) for c in chunks]


def test_chunks_are_embedded_in_batches_of_the_configured_size(rig: IngestionRig) -> None:
    rig.pipeline.ingest_stored(rig.workspace, rig.add_text("tides", WORDS))

    assert rig.embedder.batches == [2, 2, 1]


def test_running_again_replaces_the_documents_chunks(rig: IngestionRig) -> None:
    document = rig.add_text("tides", WORDS)
    rig.pipeline.ingest_stored(rig.workspace, document)

    shorter = replace(document, blob_key="workspaces/ws/short.md")
    rig.blobs.put("workspaces/ws/short.md", b"Spring tides reach 4.2 metres.")
    assert rig.pipeline.ingest_stored(rig.workspace, shorter) == 1

    assert [c.text for c in _stored(rig, document.id)] == ["Spring tides reach 4.2 metres."]


def test_the_chunk_text_is_kept_for_audit_one_json_line_per_chunk(rig: IngestionRig) -> None:
    document = rig.add_text("tides", WORDS)
    rig.pipeline.ingest_stored(rig.workspace, document)

    lines = rig.audit.get(audit_key(rig.workspace.id, document.id)).decode().splitlines()

    chunks = _stored(rig, document.id)
    assert [json.loads(line) for line in lines] == [
        {"ordinal": c.ordinal, "start": c.start, "end": c.end, "text": c.text} for c in chunks
    ]


def test_a_document_without_stored_content_is_refused(rig: IngestionRig) -> None:
    document = replace(rig.add_text("tides", WORDS), blob_key=None)

    with pytest.raises(UnreadableDocument, match="tides: the document has no stored content"):
        rig.pipeline.ingest_stored(rig.workspace, document)


def test_a_document_without_text_is_refused_and_writes_nothing(rig: IngestionRig) -> None:
    document = rig.add_text("blank", "x")

    with pytest.raises(UnreadableDocument, match="blank: no text to index"):
        rig.pipeline.index_parsed(rig.workspace, document, ParsedDocument(text=" \n ", title=""))
    assert _stored(rig, document.id) == [] and rig.embedder.batches == []


def test_the_parsers_refusal_comes_through(rig: IngestionRig) -> None:
    document = rig.add_text("tides", WORDS)

    with pytest.raises(UnreadableDocument, match="empty"):
        rig.pipeline.ingest_bytes(rig.workspace, document, b"   ", filename="empty.txt", content_type="text/plain")


def test_a_document_deleted_before_its_chunks_are_written_loses_them_again(rig: IngestionRig) -> None:
    document = rig.add_text("tides", WORDS)
    rig.catalog.delete_document(rig.workspace.id, document.id)  # the deletion wins the race

    with pytest.raises(DocumentDeleted, match="tides was deleted while it was being indexed"):
        rig.pipeline.ingest_stored(rig.workspace, document)

    assert rig.index.count(rig.workspace.id, document_id=document.id) == 0
    assert rig.audit.head(audit_key(rig.workspace.id, document.id)) is None


def test_the_commit_check_removes_only_documents_the_catalog_no_longer_holds(rig: IngestionRig) -> None:
    kept, gone = rig.add_text("kept", WORDS), rig.add_text("gone", WORDS)
    for document in (kept, gone):
        rig.pipeline.ingest_stored(rig.workspace, document)
    rig.catalog.delete_document(rig.workspace.id, gone.id)

    assert rig.pipeline.discard_deleted(rig.workspace.id, [kept.id, gone.id]) == {gone.id}

    assert rig.index.count(rig.workspace.id, document_id=gone.id) == 0
    assert rig.index.count(rig.workspace.id, document_id=kept.id) == 5


def test_the_embedded_text_carries_the_title_once() -> None:
    titled = Chunk("ws", "d", 0, "Spring tides.", 0, 13, title="Tides")
    assert embedding_text(titled) == "Tides\nSpring tides."
    assert embedding_text(replace(titled, text="Tides of March")) == "Tides of March"
    assert embedding_text(replace(titled, title="")) == "Spring tides."
