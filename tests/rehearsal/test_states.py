"""The rehearsal's state machine interpreter on small definitions: the Distributed Map (items from an
ItemReader, a child execution per item, failure tolerance, catch), Choice rules, OutputPath."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.rehearsal.states import StateMachine, TaskFailed

S3_GET = "arn:aws:states:::s3:getObject"
INVOKE = "arn:aws:states:::lambda:invoke"


def _machine(tolerated: int, failing: set[int]) -> tuple[StateMachine, list[Any]]:
    calls: list[Any] = []

    def read(parameters: Mapping[str, Any]) -> Any:
        calls.append(("read", dict(parameters)))
        return [{"index": i} for i in range(3)]

    def invoke(parameters: Mapping[str, Any]) -> Any:
        calls.append(("invoke", parameters["Payload"]))
        payload = parameters["Payload"]
        if payload.get("step") == "work" and payload["item"]["index"] in failing:
            raise TaskFailed("Boom", "batch failed")
        return {"Payload": {"done": payload.get("step")}}

    definition = {
        "StartAt": "Plan",
        "States": {
            "Plan": {
                "Type": "Task",
                "Resource": INVOKE,
                "Parameters": {"Payload": {"step": "plan"}},
                "ResultSelector": {"key": "plan.json", "skipped": False},
                "Next": "Skipped?",
            },
            "Skipped?": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": "$.skipped", "IsPresent": True},
                            {"Variable": "$.skipped", "BooleanEquals": True},
                        ],
                        "Next": "Skipped",
                    }
                ],
                "Default": "Each",
            },
            "Skipped": {"Type": "Succeed"},
            "Each": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": S3_GET,
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": "b", "Key.$": "$.key"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {
                        "Work": {
                            "Type": "Task",
                            "Resource": INVOKE,
                            "Parameters": {"Payload": {"step": "work", "item.$": "$"}},
                            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Record"}],
                            "End": True,
                        },
                        "Record": {
                            "Type": "Task",
                            "Resource": INVOKE,
                            "Parameters": {"Payload": {"step": "record", "error.$": "$.error"}},
                            "ResultPath": None,
                            "Next": "Failed",
                        },
                        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
                    },
                },
                "ToleratedFailurePercentage": tolerated,
                "ResultPath": None,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Gave up"}],
                "Next": "Reduce",
            },
            "Reduce": {
                "Type": "Task",
                "Resource": INVOKE,
                "Parameters": {"Payload": {"step": "reduce", "key.$": "$.key"}},
                "OutputPath": "$.Payload",
                "End": True,
            },
            "Gave up": {"Type": "Fail", "Error": "GaveUp"},
        },
    }
    return StateMachine(definition, {S3_GET: read, INVOKE: invoke}), calls


def test_a_distributed_map_runs_each_item_then_the_next_state() -> None:
    machine, calls = _machine(tolerated=100, failing={1})
    execution = machine.run({})
    assert execution.status == "SUCCEEDED", execution
    assert execution.visited == ["Plan", "Skipped?", "Each", "Reduce"]
    assert execution.output == {"done": "reduce"}  # OutputPath
    assert calls[1] == ("read", {"Bucket": "b", "Key": "plan.json"})
    (run,) = execution.maps
    assert run.items == [{"index": 0}, {"index": 1}, {"index": 2}] and run.failed == 1
    assert run.children[1].visited == ["Work", "Record", "Failed"] and run.children[1].error == "Boom"
    recorded = [p for kind, p in calls if kind == "invoke" and p["step"] == "record"]
    assert recorded == [{"step": "record", "error": {"Error": "Boom", "Cause": "batch failed"}}]


def test_more_failures_than_tolerated_fail_the_map_into_its_catch() -> None:
    machine, _ = _machine(tolerated=50, failing={0, 2})
    execution = machine.run({})
    assert execution.visited == ["Plan", "Skipped?", "Each", "Gave up"]
    assert execution.status == "FAILED" and execution.error == "GaveUp"
    assert execution.output["error"]["Error"] == "States.ExceedToleratedFailureThreshold"


@pytest.mark.parametrize(
    ("rule", "data", "matches"),
    [
        ({"Variable": "$.n", "NumericEquals": 0}, {"n": 0}, True),
        ({"Variable": "$.n", "NumericEquals": 0}, {"n": False}, False),
        ({"Variable": "$.b", "BooleanEquals": True}, {"b": True}, True),
        ({"Variable": "$.b", "IsPresent": False}, {}, True),
        ({"And": [{"Variable": "$.b", "IsPresent": True}, {"Variable": "$.b", "BooleanEquals": True}]}, {}, False),
    ],
)
def test_choice_rules(rule: dict[str, Any], data: dict[str, Any], matches: bool) -> None:
    machine = StateMachine(
        {
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
                "Yes": {"Type": "Succeed"},
                "No": {"Type": "Succeed"},
            },
        },
        {},
    )
    assert machine.run(data).visited[-1] == ("Yes" if matches else "No")


def test_comparing_an_absent_variable_fails_the_execution() -> None:
    machine = StateMachine(
        {
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.b", "BooleanEquals": True, "Next": "Y"}]},
                "Y": {"Type": "Succeed"},
            },
        },
        {},
    )
    execution = machine.run({})
    assert execution.status == "FAILED" and execution.error == "States.Runtime"
