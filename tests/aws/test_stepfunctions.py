"""StepFunctionsWorkflow on moto: one execution per run id, names always valid."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from quarry.adapters.stepfunctions import StepFunctionsWorkflow, execution_name
from quarry.errors import InvalidInput, PayloadTooLarge, QuarryError
from quarry.ports import WorkflowName
from quarry.settings import Settings
from tests.contracts.workflow_contract import Delivered, WorkflowContract

pytestmark = pytest.mark.aws

PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
VALID_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@pytest.fixture
def sfn(session: boto3.Session) -> Any:
    return session.client("stepfunctions")


@pytest.fixture
def machines(sfn: Any) -> dict[str, str]:
    role = "arn:aws:iam::123456789012:role/sfn"
    return {
        name: sfn.create_state_machine(name=f"quarry-{name}", definition=PASS, roleArn=role)["stateMachineArn"]
        for name in ("ingest", "delete")
    }


@pytest.fixture
def workflow(sfn: Any, machines: dict[str, str]) -> StepFunctionsWorkflow:
    settings = Settings(ingest_state_machine_arn=machines["ingest"], delete_state_machine_arn=machines["delete"])
    return StepFunctionsWorkflow.from_settings(settings, client=sfn)


class TestStepFunctionsWorkflow(WorkflowContract):
    """The contract on moto: ingest and delete_document each have a state machine, delete_workspace none."""

    @pytest.fixture
    def contract_machines(self, sfn: Any) -> dict[WorkflowName, str]:
        role = "arn:aws:iam::123456789012:role/sfn"
        return {
            name: sfn.create_state_machine(name=f"contract-{name.value}", definition=PASS, roleArn=role)[
                "stateMachineArn"
            ]
            for name in (WorkflowName.INGEST, WorkflowName.DELETE_DOCUMENT)
        }

    @pytest.fixture
    def workflow(self, sfn: Any, contract_machines: dict[WorkflowName, str]) -> StepFunctionsWorkflow:
        return StepFunctionsWorkflow(contract_machines, client=sfn)

    @pytest.fixture
    def delivered(self, sfn: Any, contract_machines: dict[WorkflowName, str]) -> Delivered:
        def inputs(name: WorkflowName) -> list[dict[str, Any]]:
            executions = sfn.list_executions(stateMachineArn=contract_machines[name])["executions"]
            return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in executions]

        return inputs


def test_start_runs_the_mapped_state_machine_with_the_payload(
    workflow: StepFunctionsWorkflow, sfn: Any, machines: dict[str, str]
) -> None:
    arn = workflow.start(WorkflowName.DELETE_WORKSPACE, {"workspace_id": "ws1"}, run_id="del-ws1")

    execution = sfn.describe_execution(executionArn=arn)
    assert execution["stateMachineArn"] == machines["delete"]
    assert execution["name"] == "del-ws1"
    assert json.loads(execution["input"]) == {"workspace_id": "ws1", "workflow": "delete_workspace"}


def test_the_same_run_id_starts_once(workflow: StepFunctionsWorkflow, sfn: Any, machines: dict[str, str]) -> None:
    payload = {"workspace_id": "ws1", "document_id": "d1"}
    first = workflow.start(WorkflowName.INGEST, payload, run_id="abc123")
    same = workflow.start(WorkflowName.INGEST, payload, run_id="abc123")  # still running: SFN's own idempotency
    sfn.stop_execution(executionArn=first)
    after_stop = workflow.start(WorkflowName.INGEST, payload, run_id="abc123")  # ExecutionAlreadyExists
    other_input = workflow.start(WorkflowName.INGEST, {"document_id": "d2"}, run_id="abc123")

    assert first == same == after_stop == other_input
    assert len(sfn.list_executions(stateMachineArn=machines["ingest"])["executions"]) == 1


def test_without_run_id_every_start_is_new(workflow: StepFunctionsWorkflow, sfn: Any, machines: dict[str, str]) -> None:
    a = workflow.start(WorkflowName.INGEST, {"document_id": "d1"})
    b = workflow.start(WorkflowName.INGEST, {"document_id": "d1"})
    assert a != b
    assert len(sfn.list_executions(stateMachineArn=machines["ingest"])["executions"]) == 2


def test_run_ids_become_valid_distinct_names(workflow: StepFunctionsWorkflow, sfn: Any) -> None:
    awkward = [
        'ws1/u/doc one.pdf#"etag"',
        "ws1/u/doc one.pdf#'etag'",
        "x" * 200,
        "x" * 199 + "y",
        "ünïcødé:run",
    ]
    names = [execution_name(run_id) for run_id in awkward]

    assert all(VALID_NAME.match(name) for name in names)
    assert len(set(names)) == len(names)
    assert execution_name("already-valid_1") == "already-valid_1"
    arn = workflow.start(WorkflowName.INGEST, {}, run_id=awkward[0])
    assert sfn.describe_execution(executionArn=arn)["name"] == names[0]
    with pytest.raises(InvalidInput):
        execution_name("")


def test_misconfiguration_and_bad_input_are_typed_errors(sfn: Any, machines: dict[str, str]) -> None:
    only_ingest = StepFunctionsWorkflow({WorkflowName.INGEST: machines["ingest"]}, client=sfn)
    with pytest.raises(QuarryError, match="delete_document"):
        only_ingest.start(WorkflowName.DELETE_DOCUMENT, {})
    with pytest.raises(PayloadTooLarge):
        only_ingest.start(WorkflowName.INGEST, {"blob": "x" * 300_000})
    with pytest.raises(InvalidInput):
        only_ingest.start(WorkflowName.INGEST, {"when": object()})
