"""Deletion racing ingestion, search filtered through the catalog, and S3 upload events out of order.

On the in-memory fakes of tests/fakes.py (which pass the same contract suites as the real adapters), wired by
the composition root; the embedder is a deterministic bag of hashed words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from quarry.errors import Conflict
from quarry.evaluation.bulk_index import index_documents
from quarry.models import Chunk, Document, DocumentSource, DocumentStatus, SearchRequest, Workspace
from quarry.ports import ParsedDocument, WorkflowName
from quarry.services.access import WorkspaceAccess
from quarry.services.documents import DocumentService, UploadKey, document_id_for, sequencer_after
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import Services, build_services
from tests.fakes import FakeBlobStore, FakeCatalog, FakeChatHistory, FakeConnections, FakeVectorIndex, HashEmbedder

USER = "ada"
TEXT = "The Plimsk observatory opened in 1911. Its telescope mirror is 2.4 metres wide."


class InterruptedEmbedder(HashEmbedder):
    """The hashing embedder; ``before_embedding`` runs once, when the next batch is embedded."""

    before_embedding: Callable[[], None] | None = None  # the moment a deletion request arrives, in a test

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if InterruptedEmbedder.before_embedding is not None:
            hook, InterruptedEmbedder.before_embedding = InterruptedEmbedder.before_embedding, None
            hook()
        return super().embed_documents(texts)


class RecordingWorkflow:
    """Like Step Functions, a run id already seen starts nothing; deletions run at once (as locally)."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[WorkflowName, dict[str, Any]]] = {}
        self.services: Services | None = None

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        assert run_id is not None
        if run_id not in self.runs:
            self.runs[run_id] = (name, dict(payload))
            if name is WorkflowName.DELETE_DOCUMENT and self.services is not None:
                self.services.documents.purge(payload["workspace_id"], payload["document_id"])
        return run_id

    def ingest_runs(self) -> list[dict[str, Any]]:
        return [p for n, p in self.runs.values() if n is WorkflowName.INGEST]


@pytest.fixture
def workflow() -> RecordingWorkflow:
    return RecordingWorkflow()


@pytest.fixture
def services(tmp_path: Path, workflow: RecordingWorkflow) -> Iterator[Services]:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), InterruptedEmbedder)
    built = build_services(
        Settings(data_dir=tmp_path),
        overrides={
            "catalog": FakeCatalog(),
            "chat_history": FakeChatHistory(),
            "connections": FakeConnections(),
            "vector_index": FakeVectorIndex(),
            "blob_store": FakeBlobStore(),
            "workflow": workflow,
            "models": models,
        },
    )
    workflow.services = built
    yield built
    InterruptedEmbedder.before_embedding = None


def _workspace(services: Services) -> Workspace:
    return services.workspaces.create(USER, WorkspaceSpec(name="w", embedding_model="hash-16"))


def _search(services: Services, workspace_id: str, query: str) -> list[str]:
    hits = services.search.search(USER, SearchRequest(workspace_id=workspace_id, query=query)).hits
    return [h.chunk.document_id for h in hits]


# --------------------------------------------------------------------------- deletion racing ingestion


def test_a_document_deleted_while_it_is_embedded_leaves_no_chunks_and_no_error(services: Services) -> None:
    ws = _workspace(services)
    document = services.documents.add_text(USER, ws.id, title="observatory", text=TEXT)
    InterruptedEmbedder.before_embedding = lambda: services.documents.delete(USER, ws.id, document.id)

    report = services.ingestion.process(ws.id, document.id)

    assert report is None
    assert services.adapters.catalog.get_document(ws.id, document.id) is None
    assert services.adapters.vector_index.count(ws.id, document_id=document.id) == 0
    assert _search(services, ws.id, "Plimsk telescope mirror") == []


def test_purge_deletes_the_catalog_record_before_the_chunks(services: Services) -> None:
    """Seen from the index: when the chunks are deleted, the catalog no longer holds the document."""
    ws = _workspace(services)
    document = services.documents.add_text(USER, ws.id, title="observatory", text=TEXT)
    services.ingestion.process(ws.id, document.id)
    index, catalog = services.adapters.vector_index, services.adapters.catalog
    seen: list[Document | None] = []
    delete = index.delete_document

    def observed(workspace_id: str, document_id: str) -> int:
        seen.append(catalog.get_document(workspace_id, document_id))
        return delete(workspace_id, document_id)

    index.delete_document = observed  # type: ignore[method-assign]
    services.documents.purge(ws.id, document.id)

    assert seen == [None]
    assert index.count(ws.id, document_id=document.id) == 0


def test_the_bulk_indexer_registers_its_documents_and_drops_one_deleted_meanwhile(services: Services) -> None:
    ws = _workspace(services)
    items = [
        (
            Document(id=f"p{n}", workspace_id=ws.id, name=f"p{n}", source=DocumentSource.TEXT),
            ParsedDocument(text=TEXT, title=""),
        )
        for n in range(3)
    ]
    index = services.adapters.vector_index
    write = index.replace_documents

    def written_then_deleted(workspace_id: str, documents: Mapping[str, Sequence[Chunk]]) -> None:
        write(workspace_id, documents)
        services.adapters.catalog.delete_document(workspace_id, "p1")  # the deletion lands right after the write

    index.replace_documents = written_then_deleted  # type: ignore[method-assign]

    index_documents(services, ws, items)

    catalog = services.adapters.catalog
    assert catalog.existing_document_ids(ws.id, ["p0", "p1", "p2"]) == {"p0", "p2"}
    stored = catalog.get_document(ws.id, "p0")
    assert stored is not None and stored.status is DocumentStatus.PROCESSED and stored.chunk_count >= 1
    assert services.adapters.vector_index.count(ws.id, document_id="p1") == 0
    assert set(_search(services, ws.id, "Plimsk observatory")) == {"p0", "p2"}


# --------------------------------------------------------------------------- search


def test_search_drops_chunks_whose_document_the_catalog_does_not_hold(services: Services) -> None:
    ws = _workspace(services)
    kept = services.documents.add_text(USER, ws.id, title="kept", text=TEXT)
    services.ingestion.process(ws.id, kept.id)
    orphan = [Chunk(ws.id, "gone", 0, TEXT, 0, len(TEXT), embedding=tuple(HashEmbedder().embed_query(TEXT)))]
    services.adapters.vector_index.replace_document(ws.id, "gone", orphan)

    assert _search(services, ws.id, "Plimsk observatory telescope") == [kept.id]


# --------------------------------------------------------------------------- upload events out of order


def test_sequencers_compare_after_left_padding() -> None:
    assert sequencer_after("0A0", "9F")  # 0x0A0 > 0x09F although "0" < "9"
    assert sequencer_after("0055AED6DCD90281F0", "55AED6DCD90281E5")
    assert not sequencer_after("55AED6DCD90281E5", "0055AED6DCD90281F0")
    assert not sequencer_after("00ff", "FF")  # equal: not after


@pytest.fixture
def documents() -> tuple[DocumentService, FakeCatalog, RecordingWorkflow]:
    catalog, workflow = FakeCatalog(), RecordingWorkflow()
    catalog.put_workspace(Workspace("ws", "docs", USER, "hash-16", 16))
    service = DocumentService(
        catalog=catalog,
        blobs=FakeBlobStore(),
        index=FakeVectorIndex(),
        workflow=workflow,
        access=WorkspaceAccess(catalog),
        max_upload_bytes=1_000_000,
    )
    return service, catalog, workflow


def test_an_older_upload_event_after_a_newer_one_is_a_no_op(
    documents: tuple[DocumentService, FakeCatalog, RecordingWorkflow],
) -> None:
    service, catalog, workflow = documents
    key = UploadKey("ws", document_id_for("ws", "a.txt"), "a.txt").key

    _, new = service.register_upload(key, etag="v2", size=2, content_type="text/plain", sequencer="00B0")
    _, old = service.register_upload(key, etag="v1", size=1, content_type="text/plain", sequencer="A0")

    assert (new, old) == (True, False)
    stored = catalog.get_document("ws", document_id_for("ws", "a.txt"))
    assert stored is not None and stored.content_hash == "v2" and stored.metadata["s3_sequencer"] == "00B0"
    assert len(workflow.ingest_runs()) == 1


def test_a_newer_upload_of_bytes_seen_before_is_a_new_run(
    documents: tuple[DocumentService, FakeCatalog, RecordingWorkflow],
) -> None:
    """A, then B, then A again: the third upload's run id is new (not the first's, already spent)."""
    service, catalog, workflow = documents
    key = UploadKey("ws", document_id_for("ws", "a.txt"), "a.txt").key
    for etag, sequencer in (("A", "01"), ("B", "02"), ("A", "03")):
        service.register_upload(key, etag=etag, size=1, content_type="text/plain", sequencer=sequencer)
    stale = service.register_upload(key, etag="B", size=1, content_type="text/plain", sequencer="02")  # redelivered

    assert stale[1] is False
    stored = catalog.get_document("ws", document_id_for("ws", "a.txt"))
    assert stored is not None and stored.content_hash == "A" and stored.metadata["s3_sequencer"] == "03"
    assert len(workflow.ingest_runs()) == 3


# --------------------------------------------------------------------------- upload events racing each other


class InterleavingCatalog(FakeCatalog):
    """A FakeCatalog that runs ``between`` once, right after registering (reading) a document of ``when_hash``.

    That is the instant a concurrent ingest_trigger could apply its own event: this one has read the stored
    version and decided, and has not written yet.
    """

    def __init__(self) -> None:
        super().__init__()
        self.when_hash: str | None = None
        self.between: Callable[[], None] | None = None

    def register_document(self, document: Document, *, idempotency_key: str | None = None) -> tuple[Document, bool]:
        registered = super().register_document(document, idempotency_key=idempotency_key)
        if self.between is not None and document.content_hash == self.when_hash:
            hook, self.between = self.between, None
            hook()
        return registered


def _service(catalog: FakeCatalog, workflow: RecordingWorkflow) -> DocumentService:
    catalog.put_workspace(Workspace("ws", "docs", USER, "hash-16", 16))
    return DocumentService(
        catalog=catalog,
        blobs=FakeBlobStore(),
        index=FakeVectorIndex(),
        workflow=workflow,
        access=WorkspaceAccess(catalog),
        max_upload_bytes=1_000_000,
    )


def test_an_older_event_that_loses_the_race_to_a_newer_one_does_not_overwrite_it(workflow: RecordingWorkflow) -> None:
    """v1 stored; the events of v2 and v3 both read v1; v3 writes first: v2's write must not land."""
    catalog = InterleavingCatalog()
    service = _service(catalog, workflow)
    key = UploadKey("ws", document_id_for("ws", "a.txt"), "a.txt").key
    service.register_upload(key, etag="v1", size=1, content_type="text/plain", sequencer="01")
    newer: list[tuple[Document, bool]] = []
    catalog.when_hash = "v2"
    catalog.between = lambda: newer.append(
        service.register_upload(key, etag="v3", size=1, content_type="text/plain", sequencer="03")
    )

    _, started = service.register_upload(key, etag="v2", size=1, content_type="text/plain", sequencer="02")

    assert newer and newer[0][1] is True and started is False
    stored = catalog.get_document("ws", document_id_for("ws", "a.txt"))
    assert stored is not None and stored.content_hash == "v3" and stored.metadata["s3_sequencer"] == "03"
    assert len(workflow.ingest_runs()) == 2  # v1 and v3


def test_a_newer_event_that_loses_the_race_to_an_older_one_decides_again_and_wins(
    workflow: RecordingWorkflow,
) -> None:
    catalog = InterleavingCatalog()
    service = _service(catalog, workflow)
    key = UploadKey("ws", document_id_for("ws", "a.txt"), "a.txt").key
    service.register_upload(key, etag="v1", size=1, content_type="text/plain", sequencer="01")
    catalog.when_hash = "v3"
    catalog.between = lambda: service.register_upload(key, etag="v2", size=1, content_type="text/plain", sequencer="02")

    _, started = service.register_upload(key, etag="v3", size=1, content_type="text/plain", sequencer="03")

    assert started is True
    stored = catalog.get_document("ws", document_id_for("ws", "a.txt"))
    assert stored is not None and stored.content_hash == "v3" and stored.metadata["s3_sequencer"] == "03"
    assert len(workflow.ingest_runs()) == 3


def test_a_version_that_keeps_changing_under_the_event_is_a_conflict_after_one_retry(
    workflow: RecordingWorkflow,
) -> None:
    """Lost twice: the event fails (SQS redelivers it) rather than looping or writing blind."""
    catalog = InterleavingCatalog()
    service = _service(catalog, workflow)
    key = UploadKey("ws", document_id_for("ws", "a.txt"), "a.txt").key
    service.register_upload(key, etag="v1", size=1, content_type="text/plain", sequencer="01")
    sneaking = iter(["02", "03"])

    def another_writer() -> None:  # each time the event has read, an older version (still newer than v1) lands
        sequencer = next(sneaking, None)
        if sequencer is not None:
            service.register_upload(key, etag=f"v{sequencer}", size=1, content_type="text/plain", sequencer=sequencer)
            catalog.between = another_writer

    catalog.when_hash, catalog.between = "v9", another_writer

    with pytest.raises(Conflict):
        service.register_upload(key, etag="v9", size=1, content_type="text/plain", sequencer="09")
    stored = catalog.get_document("ws", document_id_for("ws", "a.txt"))
    assert stored is not None and stored.metadata["s3_sequencer"] == "03"


# --------------------------------------------------------------------------- the same bytes again after a failure


def test_the_same_bytes_uploaded_again_after_an_error_start_a_new_run(
    documents: tuple[DocumentService, FakeCatalog, RecordingWorkflow],
) -> None:
    service, catalog, workflow = documents
    doc_id = document_id_for("ws", "a.txt")
    key = UploadKey("ws", doc_id, "a.txt").key
    service.register_upload(key, etag="A", size=1, content_type="text/plain", sequencer="01")
    catalog.set_document_status("ws", doc_id, DocumentStatus.ERROR, reason="parser crashed")

    assert service.register_upload(key, etag="A", size=1, content_type="text/plain", sequencer="02")[1] is True
    assert service.register_upload(key, etag="A", size=1, content_type="text/plain", sequencer="02")[1] is False

    stored = catalog.get_document("ws", doc_id)
    assert stored is not None and stored.status is DocumentStatus.CREATED and stored.metadata["s3_sequencer"] == "02"
    assert len(workflow.ingest_runs()) == 2


def test_the_same_bytes_after_an_error_restart_a_document_that_records_no_version(
    documents: tuple[DocumentService, FakeCatalog, RecordingWorkflow],
) -> None:
    """Registered before versions were recorded (or without one): nothing orders the new event against it."""
    service, catalog, workflow = documents
    doc_id = document_id_for("ws", "a.txt")
    key = UploadKey("ws", doc_id, "a.txt").key
    service.register_upload(key, etag="A", size=1, content_type="text/plain")  # no sequencer, no event time
    catalog.set_document_status("ws", doc_id, DocumentStatus.ERROR, reason="parser crashed")

    _, started = service.register_upload(key, etag="A", size=1, content_type="text/plain", sequencer="02")
    _, redelivered = service.register_upload(key, etag="A", size=1, content_type="text/plain", sequencer="02")

    assert (started, redelivered) == (True, False)
    stored = catalog.get_document("ws", doc_id)
    assert stored is not None and stored.status is DocumentStatus.CREATED and stored.metadata["s3_sequencer"] == "02"
    assert len(workflow.ingest_runs()) == 2


def test_a_redelivered_event_of_a_failed_document_stays_a_no_op(
    documents: tuple[DocumentService, FakeCatalog, RecordingWorkflow],
) -> None:
    service, catalog, workflow = documents
    doc_id = document_id_for("ws", "a.txt")
    key = UploadKey("ws", doc_id, "a.txt").key
    service.register_upload(key, etag="A", size=1, content_type="text/plain", sequencer="01")
    catalog.set_document_status("ws", doc_id, DocumentStatus.ERROR, reason="parser crashed")

    assert service.register_upload(key, etag="A", size=1, content_type="text/plain", sequencer="01")[1] is False
    unsequenced = service.register_upload(key, etag="A", size=1, content_type="text/plain")  # nothing new to go by
    assert unsequenced[1] is False

    stored = catalog.get_document("ws", doc_id)
    assert stored is not None and stored.status is DocumentStatus.ERROR
    assert len(workflow.ingest_runs()) == 1


def test_add_file_retries_the_same_bytes_after_an_error_like_an_upload(
    documents: tuple[DocumentService, FakeCatalog, RecordingWorkflow],
) -> None:
    service, catalog, workflow = documents
    document, _ = service.add_file(USER, "ws", "a.txt", b"the same bytes")
    catalog.set_document_status("ws", document.id, DocumentStatus.ERROR, reason="parser crashed")

    again, started = service.add_file(USER, "ws", "a.txt", b"the same bytes")

    assert started is True and again.status is DocumentStatus.CREATED
    assert len(workflow.ingest_runs()) == 2
