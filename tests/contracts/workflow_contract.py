"""Behaviour every Workflow adapter must have.

Fixtures a runner supplies:

- ``workflow``: the adapter, with ``INGEST`` and ``DELETE_DOCUMENT`` configured and ``DELETE_WORKSPACE`` not
  (no step locally, no state machine in AWS);
- ``delivered``: ``delivered(name)`` -> the input of every run of ``name`` started so far, once they have all
  reached the step (the state machine's execution input in AWS, the step's argument locally), in any order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from quarry.errors import QuarryError
from quarry.ports import Workflow, WorkflowName

Delivered = Callable[[WorkflowName], list[dict[str, Any]]]

INGEST = WorkflowName.INGEST
DELETE_DOCUMENT = WorkflowName.DELETE_DOCUMENT


def _carries(delivered: dict[str, Any], payload: dict[str, Any]) -> bool:
    """The run's input holds every entry of the payload (an adapter may add its own, as the workflow name)."""
    return all(key in delivered and delivered[key] == value for key, value in payload.items())


class WorkflowContract:
    def test_is_a_workflow(self, workflow: Any) -> None:
        assert isinstance(workflow, Workflow)

    def test_start_returns_an_execution_id(self, workflow: Any) -> None:
        execution = workflow.start(INGEST, {"workspace_id": "ws1", "document_id": "d1"}, run_id="run-1")
        assert isinstance(execution, str) and execution

    def test_the_payload_reaches_the_run(self, workflow: Any, delivered: Delivered) -> None:
        payload = {"workspace_id": "ws1", "document_id": "d1", "name": "Übersicht 2024.pdf", "size": 12, "tags": ["a"]}
        workflow.start(DELETE_DOCUMENT, payload, run_id="delete-d1")

        runs = delivered(DELETE_DOCUMENT)
        assert len(runs) == 1 and _carries(runs[0], payload)
        assert delivered(INGEST) == []

    def test_a_second_start_with_the_same_run_id_is_the_same_run(self, workflow: Any, delivered: Delivered) -> None:
        payload = {"workspace_id": "ws1", "document_id": "d1"}
        first = workflow.start(INGEST, payload, run_id="ws1/d1#etag-1")
        again = workflow.start(INGEST, payload, run_id="ws1/d1#etag-1")
        other_payload = workflow.start(INGEST, {"workspace_id": "ws1", "document_id": "d2"}, run_id="ws1/d1#etag-1")

        assert first == again == other_payload
        runs = delivered(INGEST)
        assert len(runs) == 1 and _carries(runs[0], payload)

    def test_distinct_run_ids_are_distinct_runs(self, workflow: Any, delivered: Delivered) -> None:
        one = workflow.start(INGEST, {"workspace_id": "ws1", "document_id": "d1"}, run_id="ws1/d1#etag-1")
        two = workflow.start(INGEST, {"workspace_id": "ws1", "document_id": "d1"}, run_id="ws1/d1#etag-2")

        assert one != two
        assert len(delivered(INGEST)) == 2

    def test_without_a_run_id_every_start_is_a_new_run(self, workflow: Any, delivered: Delivered) -> None:
        payload = {"workspace_id": "ws1", "document_id": "d1"}
        executions = {workflow.start(INGEST, payload) for _ in range(3)}

        assert len(executions) == 3
        runs = delivered(INGEST)
        assert len(runs) == 3 and all(_carries(run, payload) for run in runs)

    def test_a_workflow_it_does_not_run_is_refused(self, workflow: Any, delivered: Delivered) -> None:
        with pytest.raises(QuarryError, match="delete_workspace"):
            workflow.start(WorkflowName.DELETE_WORKSPACE, {"workspace_id": "ws1"}, run_id="delete-ws1")
        with pytest.raises(QuarryError, match="delete_workspace"):
            workflow.start(WorkflowName.DELETE_WORKSPACE, {"workspace_id": "ws1"})
        assert delivered(INGEST) == [] and delivered(DELETE_DOCUMENT) == []
