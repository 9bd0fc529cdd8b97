"""Who may touch which workspace. Another user's workspace is indistinguishable from a missing one (404)."""

from __future__ import annotations

from quarry.errors import NotFound
from quarry.models import Workspace
from quarry.ports import Catalog

__all__ = ["WorkspaceAccess"]


class WorkspaceAccess:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def readable(self, user: str, workspace_id: str) -> Workspace:
        workspace = self._catalog.get_workspace(workspace_id)
        if workspace is None or not workspace.readable_by(user):
            raise NotFound(f"workspace {workspace_id} not found")
        return workspace

    def owned(self, user: str, workspace_id: str) -> Workspace:
        workspace = self._catalog.get_workspace(workspace_id)
        if workspace is None or workspace.owner != user:
            raise NotFound(f"workspace {workspace_id} not found")
        return workspace
