"""Runs a synthesized Step Functions definition step by step, the way the service would for our machines.

Only what Quarry's definitions use: ``Task`` (``lambda:invoke`` and ``batch:submitJob.sync``), ``Choice``
(``StringEquals``, ``NumericEquals``, ``BooleanEquals``, ``IsPresent``, ``And``), ``Map`` (a Distributed
Map whose ``ItemReader`` reads a JSON array from S3, each item run through the ``ItemProcessor`` as a child
execution, one after another, with ``ToleratedFailurePercentage``), ``Succeed``, ``Fail``, with
``Parameters`` (``.$`` paths and ``States.Format``), ``ResultSelector``, ``ResultPath`` (``null`` discards),
``OutputPath`` and ``Catch``. ``Retry`` is read but a failed task is not retried: the rehearsal's tasks fail
deterministically, so a retry would fail the same way. The task runners are given by the caller: the
rehearsal invokes the Lambdas, runs the Batch image's entry point and reads the Map's items from S3 (the
runner of ``arn:aws:states:::s3:getObject``). An unknown state type, rule, field or resource fails loudly, so
a new kind of step must be rehearsed too.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Execution", "MapRun", "StateMachine", "TaskFailed"]


class TaskFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def _path(data: Any, path: str) -> Any:
    if path == "$":
        return data
    if not path.startswith("$."):
        raise ValueError(f"unsupported JSONPath {path}")
    for part in path[2:].split("."):
        data = data[part]
    return data


def _format(expression: str, data: Any) -> str:
    match = re.fullmatch(r"States\.Format\('((?:[^'\\]|\\.)*)'((?:,\s*\$[\w.]+)*)\)", expression.strip())
    if not match:
        raise ValueError(f"unsupported intrinsic {expression}")
    template, args = match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]
    for arg in args:
        template = template.replace("{}", str(_path(data, arg)), 1)
    return template


def _parameters(template: Any, data: Any) -> Any:
    if isinstance(template, list):
        return [_parameters(t, data) for t in template]
    if not isinstance(template, dict):
        return template
    out: dict[str, Any] = {}
    for key, value in template.items():
        if key.endswith(".$"):
            out[key[:-2]] = _format(value, data) if value.startswith("States.") else _path(data, value)
        else:
            out[key] = _parameters(value, data)
    return out


def _set(data: Any, path: str | None, result: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return result
    data = copy.deepcopy(data)
    target = data
    parts = path[2:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = result
    return data


def _present(data: Any, path: str) -> bool:
    try:
        _path(data, path)
    except (KeyError, TypeError):
        return False
    return True


def _matches(choice: Mapping[str, Any], data: Any) -> bool:
    if "And" in choice:
        return all(_matches(rule, data) for rule in choice["And"])
    if "IsPresent" in choice:
        return _present(data, choice["Variable"]) == choice["IsPresent"]
    for test, kind in (("StringEquals", str), ("NumericEquals", (int, float)), ("BooleanEquals", bool)):
        if test in choice:
            if not _present(data, choice["Variable"]):
                # Step Functions fails the execution when a compared variable is absent
                raise TaskFailed("States.Runtime", f"Invalid path {choice['Variable']}: not in the state's input")
            value = _path(data, choice["Variable"])
            if isinstance(value, bool) and kind is not bool:
                return False
            return isinstance(value, kind) and bool(value == choice[test])
    raise ValueError(f"unsupported Choice rule {choice}")


# Map fields Quarry's definitions do not use: rehearsing one needs its semantics here first.
_MAP_UNSUPPORTED = frozenset({"ItemSelector", "Parameters", "ItemBatcher", "ResultWriter", "ToleratedFailureCount"})

TaskRunner = Callable[[Mapping[str, Any]], Any]  # parameters -> result; raises TaskFailed


@dataclass
class Execution:
    status: str  # SUCCEEDED | FAILED
    output: Any
    visited: list[str] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None
    maps: list[MapRun] = field(default_factory=list)  # the Map runs of this execution, in order


@dataclass
class MapRun:
    """One run of a ``Map`` state: its items and the child execution of each."""

    state: str
    items: list[Any]
    children: list[Execution]

    @property
    def failed(self) -> int:
        return sum(child.status != "SUCCEEDED" for child in self.children)


@dataclass
class StateMachine:
    definition: Mapping[str, Any]
    tasks: Mapping[str, TaskRunner]  # resource ARN prefix (e.g. "arn:aws:states:::lambda:invoke") -> runner

    @classmethod
    def from_json(cls, text: str, tasks: Mapping[str, TaskRunner]) -> StateMachine:
        return cls(json.loads(text), tasks)

    def run(self, data: Any, *, max_steps: int = 100) -> Execution:
        states = self.definition["States"]
        name = self.definition["StartAt"]
        visited: list[str] = []
        maps: list[MapRun] = []
        for _ in range(max_steps):
            visited.append(name)
            state = states[name]
            kind = state["Type"]
            if kind == "Succeed":
                return Execution("SUCCEEDED", data, visited, maps=maps)
            if kind == "Fail":
                error = _path(data, state["ErrorPath"]) if "ErrorPath" in state else state.get("Error")
                cause = _path(data, state["CausePath"]) if "CausePath" in state else state.get("Cause")
                return Execution("FAILED", data, visited, error, cause, maps=maps)
            if kind == "Choice":
                try:
                    name = next((c["Next"] for c in state["Choices"] if _matches(c, data)), state.get("Default", ""))
                except TaskFailed as failure:
                    return Execution("FAILED", data, visited, failure.error, failure.cause, maps=maps)
                if not name:
                    return Execution(
                        "FAILED", data, visited, "States.NoChoiceMatched", "no Choice rule matched", maps=maps
                    )
                continue
            if kind not in ("Task", "Map"):
                raise ValueError(f"state {name}: unsupported type {kind}")
            try:
                result = self._task(state, data) if kind == "Task" else self._map(name, state, data, maps)
            except TaskFailed as failure:
                catcher = next(
                    (
                        c
                        for c in state.get("Catch", [])
                        if "States.ALL" in c["ErrorEquals"] or failure.error in c["ErrorEquals"]
                    ),
                    None,
                )
                if catcher is None:
                    return Execution("FAILED", data, visited, failure.error, failure.cause, maps=maps)
                data = _set(data, catcher.get("ResultPath", "$"), {"Error": failure.error, "Cause": failure.cause})
                name = catcher["Next"]
                continue
            if "ResultSelector" in state:
                result = _parameters(state["ResultSelector"], result)
            data = _set(data, state.get("ResultPath", "$"), result)
            if "OutputPath" in state:
                data = {} if state["OutputPath"] is None else _path(data, state["OutputPath"])
            if state.get("End"):
                return Execution("SUCCEEDED", data, visited, maps=maps)
            name = state["Next"]
        raise RuntimeError("the state machine did not finish")

    def _map(self, name: str, state: Mapping[str, Any], data: Any, maps: list[MapRun]) -> list[Any]:
        """A Map state: its items (``ItemReader`` or ``ItemsPath``), each run through the ``ItemProcessor``
        as a child execution (one at a time: ``MaxConcurrency`` bounds only the cloud's parallelism); it
        fails with ``States.ExceedToleratedFailureThreshold`` when more children failed than tolerated."""
        unsupported = set(state) & _MAP_UNSUPPORTED
        if unsupported:
            raise ValueError(f"Map state {name}: unsupported fields {sorted(unsupported)}")
        if "ItemReader" in state:
            reader = state["ItemReader"]
            if reader.get("ReaderConfig", {}).get("InputType") != "JSON":
                raise ValueError(f"Map state {name}: only JSON item readers are rehearsed")
            items = self._task({"Resource": reader["Resource"], "Parameters": reader["Parameters"]}, data)
        else:
            items = _path(data, state.get("ItemsPath", "$"))
        if not isinstance(items, list):
            raise TaskFailed("States.ItemReaderFailed", f"the items of {name} are not a JSON array")
        child = StateMachine(state["ItemProcessor"], self.tasks)
        run = MapRun(name, items, [child.run(item) for item in items])
        maps.append(run)
        tolerated = float(state.get("ToleratedFailurePercentage", 0))
        if run.failed and run.failed * 100 > tolerated * len(items):
            raise TaskFailed(
                "States.ExceedToleratedFailureThreshold",
                f"{run.failed} of {len(items)} items failed; {tolerated:g}% tolerated",
            )
        return [c.output for c in run.children]

    def _task(self, state: Mapping[str, Any], data: Any) -> Any:
        resource = state["Resource"]
        runner = next((run for prefix, run in self.tasks.items() if resource.startswith(prefix)), None)
        if runner is None:
            raise ValueError(f"no rehearsal runner for the task resource {resource}")
        parameters = _parameters(state.get("Parameters", {}), data) if "Parameters" in state else data
        return runner(parameters)
