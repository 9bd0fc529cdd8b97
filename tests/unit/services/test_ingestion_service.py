"""IngestionService: one document's run (the Batch job's work) and the state machine around it, on the fakes."""

from __future__ import annotations

import pytest

from quarry.errors import NotFound
from quarry.models import DocumentStatus
from tests.unit.services.ingestion_fixtures import OWNER, READER, IngestionRig, Page, StaticSite, build_rig

TEXT = "The Plimsk observatory opened in 1911. Its telescope mirror is 2.4 metres wide."


@pytest.fixture
def rig() -> IngestionRig:
    rig = build_rig()
    rig.connections.add("c-reader", READER)
    return rig


def test_a_document_goes_from_created_through_processing_to_processed(rig: IngestionRig) -> None:
    document = rig.add_text("observatory", TEXT)
    assert document.status is DocumentStatus.CREATED

    report = rig.ingestion.process(rig.workspace.id, document.id)

    assert report is not None and (report.document_id, report.chunks, report.pages) == (document.id, 1, 0)
    stored = rig.catalog.get_document(rig.workspace.id, document.id)
    assert stored is not None and (stored.status, stored.chunk_count) == (DocumentStatus.PROCESSED, 1)
    assert rig.index.count(rig.workspace.id, document_id=document.id) == 1
    assert rig.statuses("c-reader") == [(document.id, "processing", None, 0), (document.id, "processed", None, 1)]


def test_processing_twice_leaves_one_set_of_chunks(rig: IngestionRig) -> None:
    document = rig.add_text("observatory", TEXT)

    rig.ingestion.process(rig.workspace.id, document.id)
    rig.ingestion.process(rig.workspace.id, document.id)

    assert rig.index.count(rig.workspace.id) == 1


def test_an_unreadable_document_ends_in_error_with_the_reason(rig: IngestionRig) -> None:
    document = rig.add_text("blank", "   ")

    assert rig.ingestion.process(rig.workspace.id, document.id) is None

    stored = rig.catalog.get_document(rig.workspace.id, document.id)
    assert stored is not None and stored.status is DocumentStatus.ERROR
    assert stored.status_reason == "This file is empty. Upload a copy that has content."
    assert [s for _, s, _, _ in rig.statuses("c-reader")] == ["processing", "error"]


def test_an_unexpected_failure_still_ends_in_a_visible_error(rig: IngestionRig) -> None:
    document = rig.add_text("observatory", TEXT)

    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("the model server went away")

    rig.embedder.embed_documents = broken  # type: ignore[method-assign]

    assert rig.ingestion.process(rig.workspace.id, document.id) is None

    stored = rig.catalog.get_document(rig.workspace.id, document.id)
    assert stored is not None and stored.status is DocumentStatus.ERROR
    # The reader gets a sentence naming the document and what to do; the exception stays in the log.
    assert stored.status_reason is not None and "“observatory”" in stored.status_reason
    assert "Retry" in stored.status_reason and "RuntimeError" not in stored.status_reason


def test_a_document_deleted_during_its_run_ends_quietly_without_chunks_or_error(rig: IngestionRig) -> None:
    document = rig.add_text("observatory", TEXT)
    embed = rig.embedder.embed_documents

    def deleted_meanwhile(texts: list[str]) -> list[list[float]]:
        rig.documents.purge(rig.workspace.id, document.id)  # the deletion workflow runs while it is embedded
        return embed(texts)

    rig.embedder.embed_documents = deleted_meanwhile  # type: ignore[method-assign]

    assert rig.ingestion.process(rig.workspace.id, document.id) is None

    assert rig.catalog.get_document(rig.workspace.id, document.id) is None
    assert rig.index.count(rig.workspace.id) == 0
    assert [s for _, s, _, _ in rig.statuses("c-reader")] == ["processing"]  # no error is announced


def test_a_website_run_crawls_and_reports_its_pages() -> None:
    site = StaticSite([Page("https://example.org/a", b"Alpha page text."), Page("https://example.org/b", b"Beta.")])
    rig = build_rig(crawler=site)
    website = rig.documents.add_website(OWNER, rig.workspace.id, {"url": "https://example.org/"})

    report = rig.ingestion.process(rig.workspace.id, website.id)

    assert report is not None and (report.pages, report.chunks) == (2, 2)
    stored = rig.catalog.get_document(rig.workspace.id, website.id)
    assert stored is not None and (stored.status, stored.chunk_count) == (DocumentStatus.PROCESSED, 2)


def test_a_run_for_a_missing_workspace_or_document_is_not_found(rig: IngestionRig) -> None:
    document = rig.add_text("observatory", TEXT)

    with pytest.raises(NotFound, match="workspace gone not found"):
        rig.ingestion.run("gone", document.id)
    with pytest.raises(NotFound, match="document missing not found"):
        rig.ingestion.run(rig.workspace.id, "missing")
    assert rig.ingestion.process(rig.workspace.id, "missing") is None  # nothing to mark: no record is made
    assert rig.catalog.get_document(rig.workspace.id, "missing") is None
