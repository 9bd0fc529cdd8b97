"""DocumentService on the in-memory fakes: upload URLs, registering uploads, text / Q&A / website sources,
reading and deleting, with their refusals and ownership. (Retries and resumption: test_documents_retry.py;
upload events out of order and deletions racing ingestion: test_document_integrity.py.)"""

from __future__ import annotations

import json

import pytest

from quarry.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedDocument
from quarry.models import Chunk, Document, DocumentSource, DocumentStatus, Workspace
from quarry.ports import WorkflowName
from quarry.services.access import WorkspaceAccess
from quarry.services.documents import DocumentService, UploadKey, document_id_for, document_prefix
from tests.fakes import FakeBlobStore, FakeCatalog, FakeVectorIndex, RecordingWorkflow

OWNER, READER, STRANGER = "ada", "bob", "eve"
WS = "ws"
MAX_BYTES = 1000


@pytest.fixture
def catalog() -> FakeCatalog:
    catalog = FakeCatalog()
    catalog.put_workspace(Workspace(WS, "docs", OWNER, "hash-16", 16, shared_with=(READER,)))
    return catalog


@pytest.fixture
def blobs() -> FakeBlobStore:
    return FakeBlobStore()


@pytest.fixture
def index() -> FakeVectorIndex:
    index = FakeVectorIndex()
    index.ensure_workspace(WS, dimensions=2)
    return index


@pytest.fixture
def workflow() -> RecordingWorkflow:
    return RecordingWorkflow()


@pytest.fixture
def documents(
    catalog: FakeCatalog, blobs: FakeBlobStore, index: FakeVectorIndex, workflow: RecordingWorkflow
) -> DocumentService:
    return DocumentService(
        catalog=catalog,
        blobs=blobs,
        index=index,
        workflow=workflow,
        access=WorkspaceAccess(catalog),
        max_upload_bytes=MAX_BYTES,
        upload_ttl_seconds=60,
    )


def _ingests(workflow: RecordingWorkflow) -> list[dict[str, str]]:
    return workflow.started(WorkflowName.INGEST)


# --------------------------------------------------------------------------- upload URLs and upload events


def test_an_upload_url_names_the_documents_key_and_bounds_size_and_type(
    documents: DocumentService, blobs: FakeBlobStore
) -> None:
    document_id, target = documents.upload_url(READER, WS, "notes.md", "text/markdown", size_bytes=10)

    assert document_id == document_id_for(WS, "notes.md")
    assert target.key == UploadKey(WS, document_id, "notes.md").key
    assert target.max_bytes == MAX_BYTES and target.fields["Content-Type"] == "text/markdown"
    assert blobs.blobs == {}  # nothing is stored before the upload itself


@pytest.mark.parametrize(
    ("user", "filename", "content_type", "size", "error", "message"),
    [
        (STRANGER, "a.txt", "text/plain", 10, NotFound, "workspace ws not found"),
        (OWNER, "a.exe", "application/octet-stream", 10, UnsupportedDocument, "unsupported file type .exe"),
        (OWNER, "a.txt", "application/pdf", 10, UnsupportedDocument, "does not match text/plain"),
        (OWNER, "a.txt", "text/plain", MAX_BYTES + 1, PayloadTooLarge, "1001 bytes is over the 1000-byte limit"),
    ],
    ids=["another user", "unsupported type", "type and name disagree", "too large"],
)
def test_upload_urls_are_refused_clearly(
    documents: DocumentService,
    user: str,
    filename: str,
    content_type: str,
    size: int,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        documents.upload_url(user, WS, filename, content_type, size_bytes=size)


def test_an_upload_event_registers_the_document_and_starts_one_ingestion_even_when_redelivered(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    key = UploadKey(WS, document_id_for(WS, "a.txt"), "a.txt").key

    document, started = documents.register_upload(key, etag="e1", size=5, content_type="text/plain", sequencer="0A")
    again, started_again = documents.register_upload(key, etag="e1", size=5, content_type="text/plain", sequencer="0A")

    assert (started, started_again) == (True, False)
    assert again == document == catalog.get_document(WS, document.id)
    assert (document.source, document.status, document.blob_key, document.content_hash) == (
        DocumentSource.FILE,
        DocumentStatus.CREATED,
        key,
        "e1",
    )
    assert _ingests(workflow) == [{"workspace_id": WS, "document_id": document.id}]


def test_a_new_version_of_an_upload_replaces_the_document_and_runs_again(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    key = UploadKey(WS, document_id_for(WS, "a.txt"), "a.txt").key
    documents.register_upload(key, etag="e1", size=5, content_type="text/plain", sequencer="0A")

    newer, started = documents.register_upload(key, etag="e2", size=7, content_type="text/plain", sequencer="0B")

    assert started and catalog.get_document(WS, newer.id) == newer and newer.content_hash == "e2"
    assert len(_ingests(workflow)) == 2


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ("uploads/a.txt", InvalidInput, "not a document upload key"),
        ("workspaces/ws/documents//a.txt", InvalidInput, "not a document upload key"),
        ("workspaces/gone/documents/d/a.txt", NotFound, "workspace gone not found"),
    ],
)
def test_upload_events_outside_any_workspace_are_refused(
    documents: DocumentService, workflow: RecordingWorkflow, key: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        documents.register_upload(key, etag="e", size=1, content_type="text/plain")
    assert workflow.starts == 0


# --------------------------------------------------------------------------- files, text, Q&A, websites


def test_a_local_file_is_stored_registered_and_not_run_again_once_processed(
    documents: DocumentService, catalog: FakeCatalog, blobs: FakeBlobStore, workflow: RecordingWorkflow
) -> None:
    document, started = documents.add_file(OWNER, WS, "a.txt", b"hello there")
    assert started and blobs.get(document.blob_key or "") == b"hello there"
    catalog.set_document_status(WS, document.id, DocumentStatus.PROCESSED, chunk_count=1)

    again, started_again = documents.add_file(OWNER, WS, "a.txt", b"hello there")

    assert not started_again and again.status is DocumentStatus.PROCESSED
    assert len(_ingests(workflow)) == 1


def test_the_same_file_after_a_failure_is_run_again(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    document, _ = documents.add_file(OWNER, WS, "a.txt", b"hello there")
    catalog.set_document_status(WS, document.id, DocumentStatus.ERROR, reason="boom")

    again, started = documents.add_file(OWNER, WS, "a.txt", b"hello there")

    assert started and again.status is DocumentStatus.CREATED and again.status_reason is None
    assert len(_ingests(workflow)) == 2


def test_text_is_stored_as_markdown_under_its_title_and_the_same_text_again_changes_nothing(
    documents: DocumentService, blobs: FakeBlobStore, workflow: RecordingWorkflow
) -> None:
    document = documents.add_text(READER, WS, title=" Tides ", text="Spring tides reach 4.2 metres.")
    again = documents.add_text(READER, WS, title="Tides", text="Spring tides reach 4.2 metres.")

    assert again == document
    assert (document.name, document.source, document.content_type) == ("Tides", DocumentSource.TEXT, "text/markdown")
    assert document.id == document_id_for(WS, "text:Tides")
    assert blobs.get(document_prefix(WS, document.id) + "content.md") == b"Spring tides reach 4.2 metres."
    assert len(_ingests(workflow)) == 1


def test_new_text_under_the_same_title_replaces_the_document(
    documents: DocumentService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    first = documents.add_text(OWNER, WS, title="Tides", text="old")
    second = documents.add_text(OWNER, WS, title="Tides", text="new")

    assert second.id == first.id and second.content_hash != first.content_hash
    assert catalog.get_document(WS, first.id) == second
    assert len(_ingests(workflow)) == 2


def test_untitled_text_is_named_by_its_content(documents: DocumentService) -> None:
    assert documents.add_text(OWNER, WS, title="  ", text="abc").name.startswith("text-")


def test_a_qna_pair_is_stored_as_one_text_keeping_the_question(
    documents: DocumentService, blobs: FakeBlobStore
) -> None:
    document = documents.add_qna(OWNER, WS, question=" How high? ", answer=" 4.2 metres. ", title="tides")

    assert document.source is DocumentSource.QNA and document.metadata == {"question": "How high?"}
    assert blobs.get(document.blob_key or "") == b"Question: How high?\n\nAnswer: 4.2 metres."


def test_a_website_stores_its_crawl_options_and_starts_a_run(
    documents: DocumentService, blobs: FakeBlobStore, workflow: RecordingWorkflow
) -> None:
    options = {"url": "https://example.org/", "max_pages": 3}

    site = documents.add_website(OWNER, WS, options)

    assert (site.name, site.source, site.metadata) == (
        "https://example.org/",
        DocumentSource.WEBSITE,
        {"url": "https://example.org/"},
    )
    assert json.loads(blobs.get(site.blob_key or "")) == options
    assert _ingests(workflow) == [{"workspace_id": WS, "document_id": site.id}]


@pytest.mark.parametrize("source", ["file", "text", "qna", "website"])
def test_another_user_adds_nothing(
    documents: DocumentService, blobs: FakeBlobStore, workflow: RecordingWorkflow, source: str
) -> None:
    with pytest.raises(NotFound):
        if source == "file":
            documents.add_file(STRANGER, WS, "a.txt", b"x")
        elif source == "text":
            documents.add_text(STRANGER, WS, title="t", text="x")
        elif source == "qna":
            documents.add_qna(STRANGER, WS, question="q", answer="a")
        else:
            documents.add_website(STRANGER, WS, {"url": "https://example.org/"})
    assert blobs.blobs == {} and workflow.starts == 0


def test_content_over_the_limit_is_refused_before_it_is_stored(
    documents: DocumentService, blobs: FakeBlobStore
) -> None:
    with pytest.raises(PayloadTooLarge, match="over the 1000-byte limit"):
        documents.add_text(OWNER, WS, title="big", text="x" * (MAX_BYTES + 1))
    with pytest.raises(PayloadTooLarge, match="1001 bytes is over the 1000-byte limit"):
        documents.add_file(OWNER, WS, "big.txt", b"x" * (MAX_BYTES + 1))
    assert blobs.blobs == {}


# --------------------------------------------------------------------------- reading and deleting


def test_readers_list_and_get_documents_by_status_and_others_get_not_found(
    documents: DocumentService, catalog: FakeCatalog
) -> None:
    done = documents.add_text(OWNER, WS, title="done", text="a")
    documents.add_text(OWNER, WS, title="waiting", text="b")
    catalog.set_document_status(WS, done.id, DocumentStatus.PROCESSED, chunk_count=1)

    assert [d.name for d in documents.list_documents(READER, WS, status=DocumentStatus.PROCESSED).items] == ["done"]
    assert len(documents.list_documents(OWNER, WS).items) == 2
    assert documents.get(READER, WS, done.id).status is DocumentStatus.PROCESSED
    with pytest.raises(NotFound):
        documents.list_documents(STRANGER, WS)
    with pytest.raises(NotFound):
        documents.get(STRANGER, WS, done.id)
    with pytest.raises(NotFound, match="document missing not found"):
        documents.get(OWNER, WS, "missing")


def test_delete_starts_the_deletion_workflow_for_readers_of_an_existing_document_only(
    documents: DocumentService, workflow: RecordingWorkflow
) -> None:
    document = documents.add_text(OWNER, WS, title="t", text="a")

    with pytest.raises(NotFound):
        documents.delete(STRANGER, WS, document.id)
    with pytest.raises(NotFound):
        documents.delete(OWNER, WS, "missing")
    assert workflow.started(WorkflowName.DELETE_DOCUMENT) == []

    documents.delete(OWNER, WS, document.id)

    assert workflow.started(WorkflowName.DELETE_DOCUMENT) == [{"workspace_id": WS, "document_id": document.id}]


def test_purge_removes_a_site_with_its_pages_chunks_and_files_and_can_repeat(
    documents: DocumentService, catalog: FakeCatalog, blobs: FakeBlobStore, index: FakeVectorIndex
) -> None:
    site = documents.add_website(OWNER, WS, {"url": "https://example.org/"})
    page = Document(id="page", workspace_id=WS, name="p", source=DocumentSource.WEBPAGE, parent_id=site.id)
    other = documents.add_text(OWNER, WS, title="other", text="kept")
    catalog.put_document(page)
    for document_id in (page.id, other.id):
        index.replace_document(WS, document_id, [Chunk(WS, document_id, 0, "t", 0, 1, embedding=(1.0, 0.0))])
        blobs.put(document_prefix(WS, document_id) + "x", b"x")

    documents.purge(WS, site.id)
    documents.purge(WS, site.id)

    assert catalog.existing_document_ids(WS, [site.id, page.id, other.id]) == {other.id}
    assert index.count(WS, document_id=page.id) == 0 and index.count(WS, document_id=other.id) == 1
    assert all(not key.startswith(document_prefix(WS, d)) for key in blobs.blobs for d in (site.id, page.id))
    assert any(key.startswith(document_prefix(WS, other.id)) for key in blobs.blobs)
