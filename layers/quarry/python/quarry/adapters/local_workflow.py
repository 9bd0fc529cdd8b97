"""The local stand-in for the Step Functions state machines.

It runs the same steps in the same order with the same error handling as the
definitions in ``stacks/ingestion.py``: ingest = SetProcessing -> run (the
Batch job's work) -> SetProcessed, any failure -> SetError(reason); the
deletion machines run their one purge step. Starts are idempotent on run_id.

Runs live in this process only. ``close`` drops the queued ones and gives the running one a short
while; what it leaves ``created`` or ``processing`` is re-run by the next ``quarry serve`` of the same
data directory (``DocumentService.resume_interrupted``), as after a crash.

Website crawls run on a pool of their own (``crawl_workers``), beside the one for files, text and
Q&A (``workers``): a crawl may take its whole time budget, and it never holds an upload back. Summary
jobs (minutes to an hour over thousands of documents) run one at a time on a third pool, for the same
reason.

The steps are given at construction, by the composition root (``quarry.wiring``): this module knows the
runs, not the use cases they call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from quarry.errors import QuarryError
from quarry.models import new_id
from quarry.ports import WorkflowName

__all__ = ["LocalWorkflow", "WorkflowStep"]

WorkflowStep = Callable[[dict[str, Any]], object]
"""What one state machine does with its input (the payload), start to end, with its own error handling;
what it returns is ignored."""

log = logging.getLogger(__name__)

#: Runs that go to a worker pool when the workflow runs in the background (the others are quick: inline).
_BACKGROUND = frozenset({WorkflowName.INGEST, WorkflowName.SUMMARIZE})


class LocalWorkflow:
    """Runs ``steps[name](payload)`` for each start: deletions inline, ingestions on the worker pools.

    ``is_crawl(payload)`` says which ingestions are website crawls (their own pool); without it every run
    shares the main pool. Background off (``quarry ingest``): every run is inline, done when ``start`` returns.
    """

    def __init__(
        self,
        steps: Mapping[WorkflowName, WorkflowStep],
        *,
        background: bool = True,
        workers: int = 1,
        crawl_workers: int = 1,
        is_crawl: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        self._steps = steps
        self._is_crawl = is_crawl
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workflow") if background else None
        self._crawl_pool = (
            ThreadPoolExecutor(max_workers=crawl_workers, thread_name_prefix="workflow-crawl") if background else None
        )
        self._summary_pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="workflow-summary") if background else None
        )
        self._runs: dict[str, Future[Any] | None] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        step = self._steps.get(name)
        if step is None:  # as Step Functions has no state machine for it
            raise QuarryError(f"no local workflow configured for {name.value!r}")
        key = f"{name.value}:{run_id}" if run_id else None
        with self._lock:
            if key is not None and key in self._runs:
                return key
            execution = key or f"{name.value}:{new_id()}"
            job = dict(payload)
            if self._closed:
                # Shutting down: the document stays as it is and the next start resumes it.
                log.warning("workflow %s not started: shutting down", name.value)
                return execution
            if self._pool is None or name not in _BACKGROUND:
                # Deletions are quick and callers expect them done when the request returns.
                self._runs[execution] = None
            else:
                self._runs[execution] = self._pool_for(name, job).submit(self._run, name, step, job)
                return execution
        self._run(name, step, job)
        return execution

    def _pool_for(self, name: WorkflowName, payload: dict[str, Any]) -> ThreadPoolExecutor:
        """The summary pool for a summary run, the crawl pool for a website document, else the main pool."""
        assert self._pool is not None and self._crawl_pool is not None and self._summary_pool is not None
        if name is WorkflowName.SUMMARIZE:
            return self._summary_pool
        if self._is_crawl is not None and self._is_crawl(payload):
            return self._crawl_pool
        return self._pool

    @staticmethod
    def _run(name: WorkflowName, step: WorkflowStep, payload: dict[str, Any]) -> None:
        try:
            step(payload)
        except QuarryError as exc:
            log.warning("workflow %s failed: %s", name.value, exc.message)
        except Exception:
            log.exception("workflow %s failed", name.value)

    def close(self, timeout: float = 10.0) -> None:
        """Take no more runs, drop the queued ones, give a running one ``timeout`` seconds to finish."""
        with self._lock:
            self._closed = True
            running = [f for f in self._runs.values() if f is not None]
        if self._pool is None or self._crawl_pool is None or self._summary_pool is None:
            return
        for pool in (self._pool, self._crawl_pool, self._summary_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        _, unfinished = wait_futures(running, timeout=timeout)
        if unfinished:
            log.warning("%d ingestion run(s) still going at shutdown; the next start resumes them", len(unfinished))
