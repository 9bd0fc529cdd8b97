"""One ingestion run of one document: the Batch job's work (``run``) and, locally, the state machine around it.

The state machine (``stacks/ingestion.py``; ``LocalWorkflow`` calls ``process``) runs: ``set_processing``
→ ``run`` → ``set_processed``; any failure → ``set_error(reason)``. The status steps are
``IngestionSteps``; ``run`` hands a website to ``WebsiteIngestion`` and any other document to the
``DocumentPipeline`` (parse, chunk, embed, write in one transaction).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from quarry.errors import NotFound, QuarryError
from quarry.models import Document, DocumentSource, Workspace
from quarry.ports import Catalog
from quarry.services.document_pipeline import DocumentDeleted, DocumentPipeline
from quarry.services.ingestion_steps import IngestionSteps
from quarry.services.website_ingestion import WebsiteIngestion

__all__ = ["IngestionReport", "IngestionService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestionReport:
    document_id: str
    chunks: int
    seconds: float
    pages: int = 0


class IngestionService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        steps: IngestionSteps,
        pipeline: DocumentPipeline,
        website: WebsiteIngestion,
    ) -> None:
        self._catalog = catalog
        self._steps = steps
        self._pipeline = pipeline
        self._website = website

    def run(self, workspace_id: str, document_id: str) -> IngestionReport:
        """Parse, chunk, embed, index. Raises a QuarryError with a user-facing reason on failure."""
        started = time.perf_counter()
        workspace, document = self._load(workspace_id, document_id)
        if document.source is DocumentSource.WEBSITE:
            crawled = self._website.crawl(workspace, document)
            seconds = time.perf_counter() - started
            return IngestionReport(document.id, chunks=crawled.chunks, seconds=seconds, pages=crawled.pages)
        count = self._pipeline.ingest_stored(workspace, document)
        return IngestionReport(document.id, chunks=count, seconds=time.perf_counter() - started)

    def process(self, workspace_id: str, document_id: str) -> IngestionReport | None:
        """All steps in order with the state machine's error handling (local workflow, CLI)."""
        try:
            self._steps.set_processing(workspace_id, document_id)
            report = self.run(workspace_id, document_id)
            self._steps.set_processed(workspace_id, document_id, report.chunks)
            return report
        except DocumentDeleted as exc:  # nothing to report on: the document is gone, and so are its chunks
            log.info("ingestion of %s stopped: %s", document_id, exc.message)
        except QuarryError as exc:  # the reader gets a sentence (``failure_reasons``), the log the detail
            self._steps.fail(workspace_id, document_id, exc)
        except Exception as exc:  # an unexpected failure still ends in a visible status
            log.exception("ingestion of %s failed", document_id)
            self._steps.fail(workspace_id, document_id, exc)
        return None

    def _load(self, workspace_id: str, document_id: str) -> tuple[Workspace, Document]:
        workspace = self._catalog.get_workspace(workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {workspace_id} not found")
        document = self._catalog.get_document(workspace_id, document_id)
        if document is None:
            raise NotFound(f"document {document_id} not found")
        return workspace, document
