"""The ingestion state machine's status steps: SetProcessing, SetProcessed, SetError, and the sweeper.

Each step is one status change, pushed to the workspace's readers (``DocumentStatusPublisher``), and safe
to repeat: Step Functions retries them (``lambdas/ingest_status``), ``IngestionService.process`` runs them
around the work locally, and ``lambdas/sweeper`` fails documents stuck in ``processing``. A status write
for a document that no longer exists writes nothing (a deleted document is never resurrected).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from quarry.document_failures import FailureKind
from quarry.errors import NotFound
from quarry.models import Document, DocumentStatus, utcnow
from quarry.ports import Catalog, VectorIndex
from quarry.services.failure_reasons import explain_failure, reason_for
from quarry.services.status import DocumentStatusPublisher

__all__ = ["IngestionSteps"]

MAX_REASON_CHARS = 1000

log = logging.getLogger(__name__)


class IngestionSteps:
    def __init__(self, *, catalog: Catalog, index: VectorIndex, status: DocumentStatusPublisher) -> None:
        self._catalog = catalog
        self._index = index
        self._status = status

    def set_processing(self, workspace_id: str, document_id: str) -> Document:
        return self._set(workspace_id, document_id, DocumentStatus.PROCESSING)

    def set_processed(self, workspace_id: str, document_id: str, chunk_count: int | None = None) -> Document:
        """``chunk_count`` None: count what the job wrote (the Batch job cannot hand a value to the next state)."""
        if chunk_count is None:
            chunk_count = self._index.count(workspace_id, document_id=document_id)
        return self._set(workspace_id, document_id, DocumentStatus.PROCESSED, chunk_count=chunk_count)

    def set_error(
        self, workspace_id: str, document_id: str, reason: str, *, keep_recorded: bool = False
    ) -> Document | None:
        """``keep_recorded``: the state machine's SetError after the job already wrote the specific reason."""
        if keep_recorded:
            current = self._catalog.get_document(workspace_id, document_id)
            if current is not None and current.status is DocumentStatus.ERROR and current.status_reason:
                return current
        return self._status.set(workspace_id, document_id, DocumentStatus.ERROR, reason=reason[:MAX_REASON_CHARS])

    def fail(self, workspace_id: str, document_id: str, exc: BaseException) -> Document | None:
        """SetError for a run that raised ``exc``: the reader gets a sentence, the logs the technical detail."""
        document = self._catalog.get_document(workspace_id, document_id)
        explained = explain_failure(exc, filename=document.name if document is not None else "")
        log.warning("ingestion of %s failed (%s): %s", document_id, explained.kind.value, explained.detail)
        return self.set_error(workspace_id, document_id, explained.reason)

    def sweep_stale(self, timeout: timedelta) -> list[Document]:
        """Documents stuck in ``processing`` beyond the timeout end in ``error`` with the timed-out sentence."""
        swept = []
        for document in self._catalog.stale_documents(DocumentStatus.PROCESSING, utcnow() - timeout):
            reason = reason_for(FailureKind.TIMED_OUT, document.name)
            updated = self.set_error(document.workspace_id, document.id, reason)
            if updated is not None:
                swept.append(updated)
        return swept

    def _set(self, workspace_id: str, document_id: str, status: DocumentStatus, **kw: Any) -> Document:
        document = self._status.set(workspace_id, document_id, status, **kw)
        if document is None:
            raise NotFound(f"document {document_id} not found")
        return document
