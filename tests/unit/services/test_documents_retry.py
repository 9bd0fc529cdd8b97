"""DocumentService.retry and resume_interrupted on the in-memory fakes.

The workflow is a recorder (the use case's output is the run it starts); catalog, blobs and index are the
fakes of tests/fakes.py, which pass the same contract suites as the real adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from quarry.adapters.stepfunctions import execution_name
from quarry.errors import Conflict, NotFound
from quarry.models import Document, DocumentSource, DocumentStatus, Workspace, utcnow
from quarry.ports import WorkflowName
from quarry.services.access import WorkspaceAccess
from quarry.services.documents import STUCK_CREATED_AFTER, DocumentService
from tests.fakes import FakeBlobStore, FakeCatalog, FakeVectorIndex

OWNER, READER, STRANGER = "ada", "bob", "eve"


class RecordingWorkflow:
    """Keeps every start; like Step Functions, a run id already seen starts nothing."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[WorkflowName, dict[str, Any]]] = {}
        self.starts = 0

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        self.starts += 1
        assert run_id is not None
        self.runs.setdefault(run_id, (name, dict(payload)))
        return run_id


@pytest.fixture
def catalog() -> FakeCatalog:
    catalog = FakeCatalog()
    catalog.put_workspace(Workspace("ws", "docs", OWNER, "hash-16", 16, shared_with=(READER,)))
    return catalog


@pytest.fixture
def workflow() -> RecordingWorkflow:
    return RecordingWorkflow()


@pytest.fixture
def documents(catalog: FakeCatalog, workflow: RecordingWorkflow) -> DocumentService:
    return DocumentService(
        catalog=catalog,
        blobs=FakeBlobStore(),
        index=FakeVectorIndex(),
        workflow=workflow,
        access=WorkspaceAccess(catalog),
        max_upload_bytes=1_000_000,
    )


def _doc(catalog: FakeCatalog, doc_id: str, status: DocumentStatus, **kw: Any) -> Document:
    document = Document(id=doc_id, workspace_id="ws", name=f"{doc_id}.txt", source=DocumentSource.FILE, **kw)
    document = replace(document, status=status, status_reason="timed out" if status is DocumentStatus.ERROR else None)
    catalog.put_document(document)
    return document


def test_a_failed_document_goes_back_to_created_under_a_new_run(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    _doc(catalog, "d1", DocumentStatus.ERROR)

    retried = documents.retry(OWNER, "ws", "d1")

    assert retried.status is DocumentStatus.CREATED and retried.status_reason is None
    assert catalog.get_document("ws", "d1") == retried
    assert list(workflow.runs.values()) == [(WorkflowName.INGEST, {"workspace_id": "ws", "document_id": "d1"})]


def test_every_retry_is_a_new_run_with_a_valid_execution_name(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    for _ in range(3):
        _doc(catalog, "d1", DocumentStatus.ERROR)  # the retried run failed again
        documents.retry(READER, "ws", "d1")

    assert workflow.starts == 3 and len(workflow.runs) == 3  # none swallowed as a duplicate start
    for run_id in workflow.runs:
        assert execution_name(run_id) == run_id  # a Step Functions name as it is: <= 80 of [A-Za-z0-9_-]


@pytest.mark.parametrize("status", [DocumentStatus.PROCESSING, DocumentStatus.PROCESSED, DocumentStatus.CREATED])
def test_only_a_failed_or_stuck_document_is_retried(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow, status: DocumentStatus
) -> None:
    _doc(catalog, "d1", status)
    with pytest.raises(Conflict):
        documents.retry(OWNER, "ws", "d1")
    assert workflow.starts == 0 and catalog.get_document("ws", "d1").status is status  # type: ignore[union-attr]


def test_a_second_click_on_retry_is_a_conflict(documents: DocumentService, catalog: FakeCatalog) -> None:
    _doc(catalog, "d1", DocumentStatus.ERROR)
    documents.retry(OWNER, "ws", "d1")
    with pytest.raises(Conflict):
        documents.retry(OWNER, "ws", "d1")


def test_a_document_created_long_ago_whose_run_never_started_is_retried(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    _doc(catalog, "d1", DocumentStatus.CREATED, updated_at=utcnow() - STUCK_CREATED_AFTER - timedelta(seconds=1))
    assert documents.retry(OWNER, "ws", "d1").status is DocumentStatus.CREATED
    assert workflow.starts == 1


def test_another_users_or_a_missing_document_is_not_found(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    _doc(catalog, "d1", DocumentStatus.ERROR)
    with pytest.raises(NotFound):
        documents.retry(STRANGER, "ws", "d1")
    with pytest.raises(NotFound):
        documents.retry(OWNER, "ws", "nope")
    assert workflow.starts == 0 and catalog.get_document("ws", "d1").status is DocumentStatus.ERROR  # type: ignore[union-attr]


def test_a_page_of_a_crawl_is_retried_through_its_website(documents: DocumentService, catalog: FakeCatalog) -> None:
    _doc(catalog, "page", DocumentStatus.ERROR, parent_id="site")
    with pytest.raises(Conflict):
        documents.retry(OWNER, "ws", "page")


def test_adding_the_same_bytes_again_after_a_failure_retries(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    first, created = documents.add_file(OWNER, "ws", "a.txt", b"hello")
    assert created and workflow.starts == 1
    catalog.set_document_status("ws", first.id, DocumentStatus.ERROR, reason="timed out")

    again, created = documents.add_file(OWNER, "ws", "a.txt", b"hello")

    assert created and again.status is DocumentStatus.CREATED and workflow.starts == 2 and len(workflow.runs) == 2


def test_resume_restarts_what_a_dead_process_left_and_nothing_newer(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    old = utcnow() - timedelta(minutes=1)
    _doc(catalog, "queued", DocumentStatus.CREATED, updated_at=old)
    _doc(catalog, "running", DocumentStatus.PROCESSING, updated_at=old)
    _doc(catalog, "page", DocumentStatus.PROCESSING, updated_at=old, parent_id="site")
    _doc(catalog, "done", DocumentStatus.PROCESSED, updated_at=old)
    _doc(catalog, "failed", DocumentStatus.ERROR, updated_at=old)
    before = utcnow()
    _doc(catalog, "new", DocumentStatus.CREATED)  # this process's own work, already started

    resumed = documents.resume_interrupted(before=before)

    assert sorted(d.id for d in resumed) == ["queued", "running"]
    assert sorted(p["document_id"] for _, p in workflow.runs.values()) == ["queued", "running"]
    status = {d.id: d.status for (_, _), d in catalog.documents.items()}
    assert status == {
        "queued": DocumentStatus.CREATED,
        "running": DocumentStatus.CREATED,
        "page": DocumentStatus.ERROR,
        "done": DocumentStatus.PROCESSED,
        "failed": DocumentStatus.ERROR,
        "new": DocumentStatus.CREATED,
    }
