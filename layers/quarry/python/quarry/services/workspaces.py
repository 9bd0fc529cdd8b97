"""Workspace use cases: create, list, describe, delete (through the deletion workflow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from quarry.errors import InvalidInput
from quarry.models import ChunkingConfig, DocumentStatus, Workspace, new_id
from quarry.ports import BlobStore, Catalog, VectorIndex, Workflow, WorkflowName
from quarry.services.access import WorkspaceAccess
from quarry.services.models_registry import ModelRegistry

__all__ = ["WorkspaceJobs", "WorkspaceService", "WorkspaceSpec", "WorkspaceStats", "workspace_prefix"]


def workspace_prefix(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/"


class WorkspaceJobs(Protocol):
    """What else a workspace owns and its purge removes: its summary jobs, their schedules and stored runs
    (``SummaryService.delete_workspace_jobs``)."""

    def delete_workspace_jobs(self, workspace_id: str) -> int: ...


@dataclass(frozen=True, slots=True)
class WorkspaceSpec:
    name: str
    embedding_model: str | None = None
    chunk_size: int = 256
    chunk_overlap: int = 32
    hybrid: bool = True
    reranker: str | None = None


@dataclass(frozen=True, slots=True)
class WorkspaceStats:
    document_count: int
    chunk_count: int
    size_bytes: int


class WorkspaceService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        index: VectorIndex,
        blobs: BlobStore,
        workflow: Workflow,
        models: ModelRegistry,
        access: WorkspaceAccess,
        jobs: WorkspaceJobs | None = None,
    ) -> None:
        self._catalog = catalog
        self._index = index
        self._blobs = blobs
        self._workflow = workflow
        self._models = models
        self._access = access
        self._jobs = jobs

    def create(self, user: str, spec: WorkspaceSpec, *, workspace_id: str | None = None) -> Workspace:
        if not spec.name.strip():
            raise InvalidInput("workspace name must not be empty")
        embedding = self._models.embedders.info(spec.embedding_model)
        if spec.reranker is not None and spec.reranker not in self._models.rerankers:
            raise InvalidInput(f"unknown reranker {spec.reranker!r}")
        try:
            chunking = ChunkingConfig(size=spec.chunk_size, overlap=spec.chunk_overlap)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        workspace = Workspace(
            id=workspace_id or new_id(),
            name=spec.name.strip(),
            owner=user,
            embedding_model=embedding.id,
            dimensions=embedding.dimensions or 0,
            chunking=chunking,
            hybrid=spec.hybrid,
            reranker=spec.reranker,
        )
        self._index.ensure_workspace(workspace.id, dimensions=workspace.dimensions)
        self._catalog.put_workspace(workspace)
        return workspace

    def list_workspaces(self, user: str) -> list[Workspace]:
        return sorted(self._catalog.list_workspaces(user), key=lambda w: w.created_at)

    def get(self, user: str, workspace_id: str) -> Workspace:
        return self._access.readable(user, workspace_id)

    def find_by_name(self, user: str, name: str) -> Workspace | None:
        return next((w for w in self._catalog.list_workspaces(user) if w.name == name), None)

    def stats(self, workspace: Workspace) -> WorkspaceStats:
        documents = chunks = size = 0
        cursor: str | None = None
        while True:
            page = self._catalog.list_documents(workspace.id, limit=500, cursor=cursor)
            for d in page.items:
                documents += 1
                size += d.size_bytes
                chunks += d.chunk_count if d.status is DocumentStatus.PROCESSED else 0
            cursor = page.cursor
            if cursor is None:
                return WorkspaceStats(document_count=documents, chunk_count=chunks, size_bytes=size)

    def delete(self, user: str, workspace_id: str) -> None:
        self._access.owned(user, workspace_id)
        self._workflow.start(
            WorkflowName.DELETE_WORKSPACE, {"workspace_id": workspace_id}, run_id=f"del-{workspace_id}"
        )

    def purge(self, workspace_id: str) -> None:
        """The deletion workflow's one step: summary jobs (with their schedules and stored runs), chunks,
        files, catalog entries. Safe to repeat; the catalog's record goes last, so a purge that failed
        half-way is retried over everything."""
        if self._jobs is not None:
            self._jobs.delete_workspace_jobs(workspace_id)
        self._index.drop_workspace(workspace_id)
        self._blobs.delete_prefix(workspace_prefix(workspace_id))
        self._catalog.delete_workspace(workspace_id)
