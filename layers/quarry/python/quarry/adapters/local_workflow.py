"""The local stand-in for the Step Functions state machines.

It runs the same steps in the same order with the same error handling as the
definitions in ``stacks/ingestion.py``: ingest = SetProcessing -> run (the
Batch job's work) -> SetProcessed, any failure -> SetError(reason); the
deletion machines run their one purge step. Starts are idempotent on run_id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from quarry.errors import QuarryError
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
    def __init__(self, *, background: bool = True, workers: int = 1) -> None:
        self._background = background
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workflow") if background else None
        self._services: Services | None = None
        self._runs: dict[str, Future[Any] | None] = {}
        self._lock = threading.Lock()

    def bind(self, services: Services) -> None:
        self._services = services

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        key = f"{name.value}:{run_id}" if run_id else None
        with self._lock:
            if key is not None and key in self._runs:
                return key
            execution = key or f"{name.value}:{id(payload)}"
            job = dict(payload)
            if self._pool is None or name is not WorkflowName.INGEST:
                # Deletions are quick and callers expect them done when the request returns.
                self._runs[execution] = None
            else:
                self._runs[execution] = self._pool.submit(self._run, name, job)
                return execution
        self._run(name, job)
        return execution

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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
