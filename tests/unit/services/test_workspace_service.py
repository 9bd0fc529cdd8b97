"""WorkspaceService on the in-memory fakes: creation and its refusals, who sees what, stats, deletion."""

from __future__ import annotations

from dataclasses import replace

import pytest

from quarry.errors import InvalidInput, NotFound
from quarry.models import Document, DocumentSource, DocumentStatus, Workspace
from quarry.ports import WorkflowName
from quarry.services.access import WorkspaceAccess
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.workspaces import WorkspaceService, WorkspaceSpec, workspace_prefix
from tests.fakes import (
    FakeBlobStore,
    FakeCatalog,
    FakeVectorIndex,
    HashEmbedder,
    RecordingWorkflow,
    WordOverlapReranker,
)

OWNER, READER, STRANGER = "ada", "bob", "eve"


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def index() -> FakeVectorIndex:
    return FakeVectorIndex()


@pytest.fixture
def blobs() -> FakeBlobStore:
    return FakeBlobStore()


@pytest.fixture
def workflow() -> RecordingWorkflow:
    return RecordingWorkflow()


@pytest.fixture
def workspaces(
    catalog: FakeCatalog, index: FakeVectorIndex, blobs: FakeBlobStore, workflow: RecordingWorkflow
) -> WorkspaceService:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.embedders.register(ModelInfo("hash-8", "hash", "test", dimensions=8), lambda: HashEmbedder(dimensions=8))
    models.rerankers.register(ModelInfo("overlap", "overlap", "test"), WordOverlapReranker)
    return WorkspaceService(
        catalog=catalog, index=index, blobs=blobs, workflow=workflow, models=models, access=WorkspaceAccess(catalog)
    )


def _shared(catalog: FakeCatalog, workspace: Workspace) -> Workspace:
    shared = replace(workspace, shared_with=(READER,))
    catalog.put_workspace(shared)
    return shared


# --------------------------------------------------------------------------- create


def test_a_workspace_is_created_with_the_default_model_and_an_index_of_its_dimensions(
    workspaces: WorkspaceService, catalog: FakeCatalog, index: FakeVectorIndex
) -> None:
    created = workspaces.create(OWNER, WorkspaceSpec(name="  Field notes  ", chunk_size=64, chunk_overlap=8))

    assert created.name == "Field notes" and created.owner == OWNER
    assert (created.embedding_model, created.dimensions) == ("hash-16", 16)
    assert (created.chunking.size, created.chunking.overlap) == (64, 8)
    assert catalog.get_workspace(created.id) == created
    assert index.workspaces[created.id].dimensions == 16


def test_a_named_embedding_model_and_reranker_are_kept(workspaces: WorkspaceService, index: FakeVectorIndex) -> None:
    created = workspaces.create(OWNER, WorkspaceSpec(name="w", embedding_model="hash-8", reranker="overlap"))

    assert (created.embedding_model, created.dimensions, created.reranker) == ("hash-8", 8, "overlap")
    assert index.workspaces[created.id].dimensions == 8


def test_creating_with_a_given_id_twice_keeps_one_workspace(workspaces: WorkspaceService, catalog: FakeCatalog) -> None:
    first = workspaces.create(OWNER, WorkspaceSpec(name="w"), workspace_id="ws-1")
    again = workspaces.create(OWNER, WorkspaceSpec(name="w"), workspace_id="ws-1")

    assert first.id == again.id == "ws-1"
    assert [w.id for w in catalog.list_workspaces(OWNER)] == ["ws-1"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (WorkspaceSpec(name="   "), "workspace name must not be empty"),
        (WorkspaceSpec(name="w", embedding_model="nope"), "unknown embedding model 'nope'"),
        (WorkspaceSpec(name="w", reranker="nope"), "unknown reranker 'nope'"),
        (WorkspaceSpec(name="w", chunk_size=8), "chunk size must be between 16 and 2048 tokens"),
        (WorkspaceSpec(name="w", chunk_size=64, chunk_overlap=64), "chunk overlap must be at least 0 and smaller"),
    ],
    ids=["blank name", "unknown embedder", "unknown reranker", "tiny chunks", "overlap as large as chunk"],
)
def test_bad_specs_are_refused_before_anything_is_stored(
    workspaces: WorkspaceService, catalog: FakeCatalog, index: FakeVectorIndex, spec: WorkspaceSpec, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        workspaces.create(OWNER, spec)

    assert catalog.workspaces == {} and index.workspaces == {}


# --------------------------------------------------------------------------- reading


def test_a_user_lists_own_and_shared_workspaces_oldest_first(
    workspaces: WorkspaceService, catalog: FakeCatalog
) -> None:
    mine = workspaces.create(OWNER, WorkspaceSpec(name="mine"))
    theirs = _shared(catalog, workspaces.create(STRANGER, WorkspaceSpec(name="theirs")))
    workspaces.create(STRANGER, WorkspaceSpec(name="private"))

    assert [w.id for w in workspaces.list_workspaces(OWNER)] == [mine.id]
    assert [w.id for w in workspaces.list_workspaces(READER)] == [theirs.id]
    assert [w.name for w in workspaces.list_workspaces(STRANGER)] == ["theirs", "private"]


def test_another_users_workspace_is_not_found(workspaces: WorkspaceService, catalog: FakeCatalog) -> None:
    workspace = _shared(catalog, workspaces.create(OWNER, WorkspaceSpec(name="w")))

    assert workspaces.get(OWNER, workspace.id) == workspace
    assert workspaces.get(READER, workspace.id) == workspace
    with pytest.raises(NotFound):
        workspaces.get(STRANGER, workspace.id)
    with pytest.raises(NotFound):
        workspaces.get(OWNER, "missing")


def test_find_by_name_sees_only_the_users_workspaces(workspaces: WorkspaceService) -> None:
    workspace = workspaces.create(OWNER, WorkspaceSpec(name="notes"))

    assert workspaces.find_by_name(OWNER, "notes") == workspace
    assert workspaces.find_by_name(STRANGER, "notes") is None
    assert workspaces.find_by_name(OWNER, "other") is None


def test_stats_count_every_document_and_the_chunks_of_processed_ones_across_pages(
    workspaces: WorkspaceService, catalog: FakeCatalog
) -> None:
    workspace = workspaces.create(OWNER, WorkspaceSpec(name="w"))
    for n in range(501):  # more than one page of the catalog's listing
        status = DocumentStatus.PROCESSED if n % 2 == 0 else DocumentStatus.ERROR
        catalog.put_document(
            Document(
                id=f"d{n}",
                workspace_id=workspace.id,
                name=f"d{n}",
                source=DocumentSource.TEXT,
                status=status,
                size_bytes=10,
                chunk_count=3,  # an errored document may hold a stale count: not counted
            )
        )

    stats = workspaces.stats(workspace)

    assert (stats.document_count, stats.chunk_count, stats.size_bytes) == (501, 251 * 3, 5010)


# --------------------------------------------------------------------------- deleting


def test_only_the_owner_deletes_and_a_repeated_delete_is_one_run(
    workspaces: WorkspaceService, catalog: FakeCatalog, workflow: RecordingWorkflow
) -> None:
    workspace = _shared(catalog, workspaces.create(OWNER, WorkspaceSpec(name="w")))

    for user in (READER, STRANGER):
        with pytest.raises(NotFound):
            workspaces.delete(user, workspace.id)
    assert workflow.starts == 0

    workspaces.delete(OWNER, workspace.id)
    workspaces.delete(OWNER, workspace.id)

    assert workflow.started(WorkflowName.DELETE_WORKSPACE) == [{"workspace_id": workspace.id}]
    assert catalog.get_workspace(workspace.id) is not None  # the workflow does the deleting


def test_purge_removes_chunks_files_and_records_of_that_workspace_only_and_can_repeat(
    workspaces: WorkspaceService, catalog: FakeCatalog, index: FakeVectorIndex, blobs: FakeBlobStore
) -> None:
    doomed = workspaces.create(OWNER, WorkspaceSpec(name="doomed"))
    kept = workspaces.create(OWNER, WorkspaceSpec(name="kept"))
    for workspace in (doomed, kept):
        blobs.put(workspace_prefix(workspace.id) + "documents/d/a.txt", b"text")
        catalog.put_document(Document(id="d", workspace_id=workspace.id, name="a.txt", source=DocumentSource.FILE))

    workspaces.purge(doomed.id)
    workspaces.purge(doomed.id)

    assert catalog.get_workspace(doomed.id) is None and catalog.get_document(doomed.id, "d") is None
    assert doomed.id not in index.workspaces
    assert [key.split("/")[1] for key in blobs.blobs] == [kept.id]
    assert catalog.get_document(kept.id, "d") is not None and kept.id in index.workspaces
