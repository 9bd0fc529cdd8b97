"""Document status changes, recorded in the catalog and pushed to every connection of the workspace's readers."""

from __future__ import annotations

from quarry.models import Document, DocumentStatus
from quarry.ports import Catalog, Connections, Notifier
from quarry.protocol import DocumentStatusEvent

__all__ = ["DocumentStatusPublisher"]


class DocumentStatusPublisher:
    def __init__(self, *, catalog: Catalog, connections: Connections, notifier: Notifier) -> None:
        self._catalog = catalog
        self._connections = connections
        self._notifier = notifier

    def set(
        self,
        workspace_id: str,
        document_id: str,
        status: DocumentStatus,
        *,
        reason: str | None = None,
        chunk_count: int | None = None,
    ) -> Document | None:
        document = self._catalog.set_document_status(
            workspace_id, document_id, status, reason=reason, chunk_count=chunk_count
        )
        if document is not None:
            self.announce(document)
        return document

    def announce(self, document: Document) -> None:
        workspace = self._catalog.get_workspace(document.workspace_id)
        if workspace is None:
            return
        event = DocumentStatusEvent(
            workspace_id=document.workspace_id,
            document_id=document.id,
            name=document.name,
            status=document.status,
            reason=document.status_reason,
            chunk_count=document.chunk_count,
            updated_at=document.updated_at,
        ).model_dump(mode="json")
        for user in {workspace.owner, *workspace.shared_with}:
            for connection_id in self._connections.of_user(user):
                if not self._notifier.send(connection_id, event):
                    self._connections.remove(connection_id)
