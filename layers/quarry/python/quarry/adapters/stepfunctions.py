"""AWS Step Functions behind ``ports.Workflow``.

Each ``WorkflowName`` maps to a state machine ARN. The execution input is the
payload plus ``"workflow": <name>`` (so one state machine can serve several
names, as the delete machine does). ``run_id`` becomes the execution name, which
Standard workflows keep unique for 90 days: starting the same run twice returns
the first execution's ARN instead of a second execution.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import error_code
from quarry.errors import InvalidInput, PayloadTooLarge, QuarryError, Throttled, UpstreamError
from quarry.models import new_id
from quarry.ports import WorkflowName
from quarry.settings import Settings

__all__ = ["StepFunctionsWorkflow", "execution_name"]

MAX_INPUT_BYTES = 256 * 1024
MAX_NAME = 80
_DIGEST = 16
_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]")
_THROTTLING = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


def execution_name(run_id: str) -> str:
    """A valid execution name (1-80 of ``A-Za-z0-9_-``) that is a pure function of ``run_id``.

    Ids already valid are kept as they are; others are cleaned and suffixed with a hash
    of the original, so two different run ids never share a name.
    """
    if not run_id:
        raise InvalidInput("run_id must not be empty")
    cleaned = _DISALLOWED.sub("-", run_id)
    if cleaned == run_id and len(run_id) <= MAX_NAME:
        return run_id
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:_DIGEST]
    return f"{cleaned[: MAX_NAME - _DIGEST - 1]}-{digest}"


def _execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name>."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


class StepFunctionsWorkflow:
    def __init__(
        self,
        state_machines: Mapping[WorkflowName, str],
        *,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
    ) -> None:
        self._arns = {WorkflowName(name): arn for name, arn in state_machines.items() if arn}
        self._client = LazyClient("stepfunctions", client=client, session=session, region=region)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, client: Any = None, session: boto3.Session | None = None
    ) -> StepFunctionsWorkflow:
        return cls(
            {
                WorkflowName.INGEST: settings.ingest_state_machine_arn,
                WorkflowName.DELETE_DOCUMENT: settings.delete_state_machine_arn,
                WorkflowName.DELETE_WORKSPACE: settings.delete_state_machine_arn,
                WorkflowName.SUMMARIZE: settings.summaries_state_machine_arn,
            },
            client=client,
            session=session,
            region=settings.aws_region,
        )

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        arn = self._arns.get(name)
        if arn is None:
            raise QuarryError(f"no state machine configured for workflow {name.value!r}")
        execution = execution_name(run_id) if run_id is not None else new_id()
        try:
            document = json.dumps({**payload, "workflow": name.value}, separators=(",", ":"), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"workflow input is not JSON serialisable: {exc}") from exc
        if len(document.encode("utf-8")) > MAX_INPUT_BYTES:
            raise PayloadTooLarge(f"workflow input exceeds {MAX_INPUT_BYTES} bytes")
        try:
            response = self._client().start_execution(stateMachineArn=arn, name=execution, input=document)
        except ClientError as exc:
            return self._already_started(exc, arn, execution)
        return str(response["executionArn"])

    @staticmethod
    def _already_started(exc: ClientError, arn: str, execution: str) -> str:
        code = error_code(exc)
        if code == "ExecutionAlreadyExists":
            return _execution_arn(arn, execution)
        if code in _THROTTLING:
            raise Throttled("Step Functions start_execution throttled") from exc
        if code in {"InvalidExecutionInput", "InvalidName"}:
            raise InvalidInput(f"Step Functions refused the execution: {code}") from exc
        raise UpstreamError(f"Step Functions start_execution failed: {code}") from exc
