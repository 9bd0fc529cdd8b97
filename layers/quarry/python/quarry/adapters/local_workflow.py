"""The local stand-in for the Step Functions state machines.

It runs the same steps in the same order with the same error handling as the
definitions in ``stacks/ingestion.py``: ingest = SetProcessing -> run (the
Batch job's work) -> SetProcessed, any failure -> SetError(reason); the
deletion machines run their one purge step. Starts are idempotent on run_id.

Runs live in this process only. ``close`` drops the queued ones and gives the running one a short
while; what it leaves ``created`` or ``processing`` is re-run by the next ``quarry serve`` of the same
data directory (``DocumentService.resume_interrupted``), as after a crash.

Website crawls run on a pool of their own (``crawl_workers``), beside the one for files, text and
Q&A (``workers``): a crawl may take its whole time budget, and it never holds an upload back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any

from quarry.errors import QuarryError
from quarry.models import DocumentSource
from quarry.ports import WorkflowName

if TYPE_CHECKING:
    from quarry.wiring import Services

__all__ = ["LocalWorkflow"]


def _ingest(s: Services, p: dict[str, Any]) -> None:
    """SetProcessing -> the Batch job's work -> SetProcessed; any failure -> SetError(reason)."""
    s.ingestion.process(p["workspace_id"], p["document_id"])


def _delete_document(s: Services, p: dict[str, Any]) -> None:
    s.documents.purge(p["workspace_id"], p["document_id"])


def _delete_workspace(s: Services, p: dict[str, Any]) -> None:
    s.workspaces.purge(p["workspace_id"])


_MACHINES: dict[WorkflowName, Callable[[Services, dict[str, Any]], None]] = {
    WorkflowName.INGEST: _ingest,
    WorkflowName.DELETE_DOCUMENT: _delete_document,
    WorkflowName.DELETE_WORKSPACE: _delete_workspace,
}

log = logging.getLogger(__name__)


class LocalWorkflow:
    def __init__(self, *, background: bool = True, workers: int = 1, crawl_workers: int = 1) -> None:
        self._background = background
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workflow") if background else None
        self._crawl_pool = (
            ThreadPoolExecutor(max_workers=crawl_workers, thread_name_prefix="workflow-crawl") if background else None
        )
        self._services: Services | None = None
        self._runs: dict[str, Future[Any] | None] = {}
        self._lock = threading.Lock()
        self._closed = False

    def bind(self, services: Services) -> None:
        self._services = services

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        key = f"{name.value}:{run_id}" if run_id else None
        with self._lock:
            if key is not None and key in self._runs:
                return key
            execution = key or f"{name.value}:{id(payload)}"
            job = dict(payload)
            if self._closed:
                # Shutting down: the document stays as it is and the next start resumes it.
                log.warning("workflow %s not started: shutting down", name.value)
                return execution
            if self._pool is None or name is not WorkflowName.INGEST:
                # Deletions are quick and callers expect them done when the request returns.
                self._runs[execution] = None
            else:
                self._runs[execution] = self._pool_for(job).submit(self._run, name, job)
                return execution
        self._run(name, job)
        return execution

    def _pool_for(self, payload: dict[str, Any]) -> ThreadPoolExecutor:
        """The crawl pool for a website document, the main pool for everything else."""
        assert self._pool is not None and self._crawl_pool is not None
        if self._services is None:
            return self._pool
        document = self._services.adapters.catalog.get_document(payload["workspace_id"], payload["document_id"])
        return self._crawl_pool if document is not None and document.source is DocumentSource.WEBSITE else self._pool

    def _run(self, name: WorkflowName, payload: dict[str, Any]) -> None:
        if self._services is None:
            raise RuntimeError("LocalWorkflow used before bind()")
        try:
            _MACHINES[name](self._services, payload)
        except QuarryError as exc:
            log.warning("workflow %s failed: %s", name.value, exc.message)
        except Exception:
            log.exception("workflow %s failed", name.value)

    def wait_idle(self, timeout: float | None = None) -> None:
        """Block until every started run has finished (tests, CLI)."""
        with self._lock:
            futures = [f for f in self._runs.values() if f is not None]
        for f in futures:
            f.result(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Take no more runs, drop the queued ones, give a running one ``timeout`` seconds to finish."""
        with self._lock:
            self._closed = True
            running = [f for f in self._runs.values() if f is not None]
        if self._pool is None or self._crawl_pool is None:
            return
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._crawl_pool.shutdown(wait=False, cancel_futures=True)
        _, unfinished = wait_futures(running, timeout=timeout)
        if unfinished:
            log.warning("%d ingestion run(s) still going at shutdown; the next start resumes them", len(unfinished))
