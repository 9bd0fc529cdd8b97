"""A metadata edit racing an ingestion run, on the fakes with the real pipeline: neither is lost.

The interleavings are injected at the ports: a hook runs just before the edit's conditional write reaches
the catalog (so after the edit read the document), or just before the run's chunk write reaches the index
(so after the run read the document). An edit must not write its stale status over a retry or a run's
status step, and a run that read the metadata before an edit must not leave chunks that disagree with the
catalog (filters would find the document under the old values).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from quarry.errors import Conflict
from quarry.filters import Filter
from quarry.metadata import USER_METADATA_KEY
from quarry.models import Chunk, Document, DocumentStatus
from quarry.ports import WorkflowName
from quarry.services.documents import document_id_for
from tests.unit.services.ingestion_fixtures import OWNER, IngestionRig, Page, StaticSite, build_rig

TIDES = "Spring tides reach 4.2 metres at the harbour mouth twice a month, at new and full moon."
EDITED = {"product": "Z", "checked": True}


@pytest.fixture
def rig() -> IngestionRig:
    return build_rig()


def _failed_text(rig: IngestionRig) -> Document:
    """A text document with metadata ``product: X`` whose run failed (no chunks)."""
    document = rig.documents.add_text(OWNER, rig.workspace.id, title="Tides", text=TIDES, metadata={"product": "X"})
    failed = rig.catalog.set_document_status(rig.workspace.id, document.id, DocumentStatus.ERROR, reason="boom")
    assert failed is not None
    return failed


def _edit(rig: IngestionRig, document: Document) -> Document:
    return rig.documents.set_metadata(OWNER, rig.workspace.id, document.id, {"product": "Z", "checked": True})


def _stored(rig: IngestionRig, document: Document) -> Document:
    stored = rig.catalog.get_document(rig.workspace.id, document.id)
    assert stored is not None
    return stored


def _chunk_fields(rig: IngestionRig, document: Document) -> list[dict[str, Any]]:
    chunks = rig.index.workspaces[rig.workspace.id].documents.get(document.id, [])
    assert chunks, "the run wrote no chunks"
    return [chunk.metadata.get(USER_METADATA_KEY, {}) for chunk in chunks]


def _found_by(rig: IngestionRig, filters: dict[str, Any]) -> list[str]:
    hits = rig.index.keyword(rig.workspace.id, "spring tides", k=5, filters=Filter.parse(filters))
    return [hit.chunk.document_id for hit in hits]


def _before_the_edits_write(monkeypatch: pytest.MonkeyPatch, rig: IngestionRig, between: Callable[[], object]) -> None:
    """Run ``between`` once, when the first conditional write (the edit's) reaches the catalog: after the edit
    read the document, before it writes."""
    write = rig.catalog.put_document_if
    pending = [between]

    def hooked(document: Document, **expected: Any) -> bool:
        while pending:
            pending.pop()()
        return write(document, **expected)

    monkeypatch.setattr(rig.catalog, "put_document_if", hooked)


def _before_the_chunk_write(monkeypatch: pytest.MonkeyPatch, rig: IngestionRig, between: Callable[[], object]) -> None:
    """Run ``between`` once, when the run's chunks reach the index: after the run read the document."""
    replace_chunks = rig.index.replace_document
    pending = [between]

    def hooked(workspace_id: str, document_id: str, chunks: Sequence[Chunk]) -> None:
        while pending:
            pending.pop()()
        replace_chunks(workspace_id, document_id, chunks)

    monkeypatch.setattr(rig.index, "replace_document", hooked)


# --------------------------------------------------------------------------- the chunks


def test_an_edit_between_a_runs_read_and_its_chunk_write_ends_on_the_chunks(
    rig: IngestionRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeper gave up on a slow run (``error``), so the user may edit the document while that run, which
    read ``product: X``, is still writing its chunks."""
    document = rig.documents.add_text(OWNER, rig.workspace.id, title="Tides", text=TIDES, metadata={"product": "X"})

    def sweeper_then_edit() -> None:
        rig.steps.set_error(rig.workspace.id, document.id, "timed out")
        _edit(rig, document)

    _before_the_chunk_write(monkeypatch, rig, sweeper_then_edit)

    rig.ingestion.process(rig.workspace.id, document.id)

    stored = _stored(rig, document)
    assert stored.status is DocumentStatus.PROCESSED, stored.status_reason
    assert stored.metadata[USER_METADATA_KEY] == EDITED
    assert all(fields == EDITED for fields in _chunk_fields(rig, document))
    assert set(_found_by(rig, {"product": "Z"})) == {document.id}
    assert _found_by(rig, {"product": "X"}) == []


def test_an_edit_racing_a_retry_keeps_the_retry_and_reaches_the_chunks_of_its_run(
    rig: IngestionRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edit reads the failed document; the user's retry starts a run that reads ``product: X``; the edit
    writes; only then does the run write its chunks. The run runs on a thread of its own, held at its chunk
    write until the edit returns (events, no sleeping)."""
    document = _failed_text(rig)
    run_at_chunk_write, edit_returned = threading.Event(), threading.Event()

    def run_waits_for_the_edit() -> None:
        run_at_chunk_write.set()
        assert edit_returned.wait(timeout=30)

    _before_the_chunk_write(monkeypatch, rig, run_waits_for_the_edit)
    run = threading.Thread(target=rig.ingestion.process, args=(rig.workspace.id, document.id))

    def retry_and_run_until_its_chunk_write() -> None:
        rig.documents.retry(OWNER, rig.workspace.id, document.id)
        run.start()
        assert run_at_chunk_write.wait(timeout=30)

    _before_the_edits_write(monkeypatch, rig, retry_and_run_until_its_chunk_write)

    try:
        edited = _edit(rig, document)
    finally:
        edit_returned.set()
    run.join(timeout=30)

    assert edited.status is DocumentStatus.PROCESSING  # the edit wrote the status the run had set, not `error`
    stored = _stored(rig, document)
    assert stored.status is DocumentStatus.PROCESSED, stored.status_reason
    assert stored.metadata[USER_METADATA_KEY] == EDITED
    assert all(fields == EDITED for fields in _chunk_fields(rig, document))
    assert _found_by(rig, {"product": "X"}) == []


# --------------------------------------------------------------------------- the status


def test_an_edit_racing_a_retry_keeps_the_retry_and_its_run_gets_the_edit(
    rig: IngestionRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = _failed_text(rig)
    runs = len(rig.workflow.started(WorkflowName.INGEST))
    _before_the_edits_write(monkeypatch, rig, lambda: rig.documents.retry(OWNER, rig.workspace.id, document.id))

    _edit(rig, document)

    stored = _stored(rig, document)
    assert stored.status is DocumentStatus.CREATED and stored.status_reason is None  # the retry's, not `error`
    assert stored.metadata[USER_METADATA_KEY] == EDITED
    assert len(rig.workflow.started(WorkflowName.INGEST)) == runs + 1
    rig.ingestion.process(rig.workspace.id, document.id)  # the retry's run
    assert _stored(rig, document).status is DocumentStatus.PROCESSED
    assert all(fields == EDITED for fields in _chunk_fields(rig, document))


def test_an_edit_racing_a_whole_retried_run_keeps_the_runs_outcome(
    rig: IngestionRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the edit's read (``error``, no chunks) and its write, a retry runs to the end: the edit must not
    put back ``error``, its reason and its chunk count over ``processed``."""
    document = _failed_text(rig)

    def retry_and_run() -> None:
        rig.documents.retry(OWNER, rig.workspace.id, document.id)
        rig.ingestion.process(rig.workspace.id, document.id)

    _before_the_edits_write(monkeypatch, rig, retry_and_run)

    _edit(rig, document)

    stored = _stored(rig, document)
    assert stored.status is DocumentStatus.PROCESSED and stored.status_reason is None
    assert stored.chunk_count == len(_chunk_fields(rig, document)) > 0
    assert stored.metadata[USER_METADATA_KEY] == EDITED
    assert all(fields == EDITED for fields in _chunk_fields(rig, document))
    assert set(_found_by(rig, {"product": "Z"})) == {document.id}


def test_an_edit_racing_a_websites_retry_is_refused_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crawl gives its pages the site's metadata as it read it when it started: an edit that lost to the
    crawl's retry would miss the pages it writes, so it is refused (409) rather than half applied."""
    page = Page("https://example.org/tides", TIDES.encode())
    rig = build_rig(crawler=StaticSite([page]))
    site = rig.documents.add_website(OWNER, rig.workspace.id, {"url": "https://example.org/"}, metadata={"a": 1})
    rig.ingestion.process(rig.workspace.id, site.id)
    rig.catalog.set_document_status(rig.workspace.id, site.id, DocumentStatus.ERROR, reason="boom")
    _before_the_edits_write(monkeypatch, rig, lambda: rig.documents.retry(OWNER, rig.workspace.id, site.id))

    with pytest.raises(Conflict, match="can be edited once it is processed"):
        rig.documents.set_metadata(OWNER, rig.workspace.id, site.id, {"a": 2})

    stored = _stored(rig, site)
    assert stored.status is DocumentStatus.CREATED and stored.metadata[USER_METADATA_KEY] == {"a": 1}
    page_doc = rig.catalog.get_document(rig.workspace.id, document_id_for(rig.workspace.id, f"page:{page.url}"))
    assert page_doc is not None and page_doc.metadata[USER_METADATA_KEY] == {"a": 1}
