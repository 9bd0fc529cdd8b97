"""LocalWorkflow through the Workflow contract: inline (``quarry ingest``) and on its pools (``quarry serve``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from quarry.adapters.local_workflow import LocalWorkflow, WorkflowStep
from quarry.errors import NotFound
from quarry.ports import WorkflowName
from tests.contracts.workflow_contract import Delivered, WorkflowContract

_SETTLE = "settle"  # an ingest payload with this key is the background runner's marker, not a run


class Steps:
    """The steps a composition root would give: each records the input of its runs."""

    def __init__(self) -> None:
        self.runs: dict[WorkflowName, list[dict[str, Any]]] = {}
        self.threads: list[str] = []
        self._lock = threading.Lock()

    def for_(self, *names: WorkflowName) -> dict[WorkflowName, WorkflowStep]:
        return {name: self._recorder(name) for name in names}

    def _recorder(self, name: WorkflowName) -> Callable[[dict[str, Any]], None]:
        def step(payload: dict[str, Any]) -> None:
            if _SETTLE in payload:
                payload[_SETTLE].set()
                return
            with self._lock:
                self.runs.setdefault(name, []).append(payload)
                self.threads.append(threading.current_thread().name)

        return step


CONFIGURED = (WorkflowName.INGEST, WorkflowName.DELETE_DOCUMENT)


class TestInlineLocalWorkflow(WorkflowContract):
    @pytest.fixture
    def steps(self) -> Steps:
        return Steps()

    @pytest.fixture
    def workflow(self, steps: Steps) -> Iterator[LocalWorkflow]:
        workflow = LocalWorkflow(steps.for_(*CONFIGURED), background=False)
        yield workflow
        workflow.close()

    @pytest.fixture
    def delivered(self, steps: Steps) -> Delivered:
        return lambda name: list(steps.runs.get(name, []))


class TestBackgroundLocalWorkflow(WorkflowContract):
    @pytest.fixture
    def steps(self) -> Steps:
        return Steps()

    @pytest.fixture
    def workflow(self, steps: Steps) -> Iterator[LocalWorkflow]:
        workflow = LocalWorkflow(steps.for_(*CONFIGURED), background=True, workers=1)
        yield workflow
        workflow.close()

    @pytest.fixture
    def delivered(self, steps: Steps, workflow: LocalWorkflow) -> Delivered:
        def settled(name: WorkflowName) -> list[dict[str, Any]]:
            # One worker takes ingestions in start order: once a marker queued last has run, so has every
            # ingestion before it. Deletions run inline, done when start returns.
            done = threading.Event()
            workflow.start(WorkflowName.INGEST, {_SETTLE: done})
            assert done.wait(timeout=120), "the workflow's worker never reached the marker"
            return list(steps.runs.get(name, []))

        return settled


def test_deletions_run_inline_ingestions_on_a_worker_and_crawls_on_their_own() -> None:
    threads: dict[str, str] = {}
    finished = threading.Event()

    def record(payload: dict[str, Any]) -> None:
        threads[payload["document_id"]] = threading.current_thread().name
        if len(threads) == 3:
            finished.set()

    workflow = LocalWorkflow(
        {WorkflowName.INGEST: record, WorkflowName.DELETE_DOCUMENT: record},
        background=True,
        is_crawl=lambda payload: payload["document_id"] == "site",
    )
    try:
        workflow.start(WorkflowName.DELETE_DOCUMENT, {"workspace_id": "ws", "document_id": "gone"})
        assert threads == {"gone": threading.current_thread().name}  # done when start returned
        workflow.start(WorkflowName.INGEST, {"workspace_id": "ws", "document_id": "site"})
        workflow.start(WorkflowName.INGEST, {"workspace_id": "ws", "document_id": "file"})
        assert finished.wait(timeout=120), "the ingestions never ran"
    finally:
        workflow.close()
    assert threads["site"].startswith("workflow-crawl_")
    assert threads["file"].startswith("workflow_")


def test_a_failing_step_is_logged_and_the_workflow_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def failing(payload: dict[str, Any]) -> None:
        calls.append(payload["document_id"])
        raise NotFound(f"document {payload['document_id']} not found")

    workflow = LocalWorkflow({WorkflowName.DELETE_DOCUMENT: failing}, background=False)
    workflow.start(WorkflowName.DELETE_DOCUMENT, {"workspace_id": "ws", "document_id": "d1"})
    workflow.start(WorkflowName.DELETE_DOCUMENT, {"workspace_id": "ws", "document_id": "d2"})
    assert calls == ["d1", "d2"]
    assert "document d1 not found" in caplog.text


def test_after_close_a_start_runs_nothing() -> None:
    steps = Steps()
    workflow = LocalWorkflow(steps.for_(*CONFIGURED), background=True)
    workflow.close()
    execution = workflow.start(WorkflowName.INGEST, {"workspace_id": "ws", "document_id": "d1"}, run_id="r1")
    assert execution and steps.runs == {}
