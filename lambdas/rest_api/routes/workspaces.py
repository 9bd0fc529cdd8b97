from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from quarry.protocol import ListOut, WorkspaceIn, WorkspaceOut
from quarry.services.workspaces import WorkspaceSpec
from routes.common import caller, created, no_content, services

router = APIGatewayRouter()


@router.post("/workspaces")
def create_workspace(body: WorkspaceIn) -> Response[Any]:
    s = services()
    spec = WorkspaceSpec(**body.model_dump())
    return created(WorkspaceOut.of(s.workspaces.create(caller(router), spec)))


@router.get("/workspaces")
def list_workspaces() -> ListOut[WorkspaceOut]:
    s = services()
    return ListOut[WorkspaceOut](items=[WorkspaceOut.of(w) for w in s.workspaces.list_workspaces(caller(router))])


@router.get("/workspaces/<workspace_id>")
def get_workspace(workspace_id: str) -> WorkspaceOut:
    s = services()
    workspace = s.workspaces.get(caller(router), workspace_id)
    stats = s.workspaces.stats(workspace)
    return WorkspaceOut.of(
        workspace, document_count=stats.document_count, chunk_count=stats.chunk_count, size_bytes=stats.size_bytes
    )


@router.delete("/workspaces/<workspace_id>")
def delete_workspace(workspace_id: str) -> Response[Any]:
    services().workspaces.delete(caller(router), workspace_id)
    return no_content()
