"""The state machines' steps: SetProcessing, SetProcessed, SetError (ingestion) and the purges (deletion).

Each step is one use-case call and safe to repeat (Step Functions retries it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from quarry.protocol import DocumentOut
from quarry.wiring import Services, get_services

logger = Logger(service="quarry-ingest-status")
metrics = Metrics(namespace="Quarry", service="ingestion")


class Step(BaseModel):
    action: Literal["set_processing", "set_processed", "set_error", "purge_document", "purge_workspace"]
    workspace_id: str
    document_id: str = ""
    chunk_count: int | None = Field(default=None, ge=0)  # None: counted from the index
    error: dict[str, Any] | str | None = None  # Step Functions Catch output: {"Error", "Cause"}


def failure_reason(error: dict[str, Any] | str | None) -> str:
    """A readable reason from a Step Functions error (Batch puts the job's status reason in Cause)."""
    if error is None:
        return "failed"
    if isinstance(error, str):
        return error
    cause = error.get("Cause") or error.get("Error") or "failed"
    try:
        detail = json.loads(cause)
        return str(detail.get("StatusReason") or detail.get("errorMessage") or cause)
    except (TypeError, ValueError):
        return str(cause)


def _set_processing(s: Services, step: Step) -> Any:
    return s.ingestion_steps.set_processing(step.workspace_id, step.document_id)


def _set_processed(s: Services, step: Step) -> Any:
    document = s.ingestion_steps.set_processed(step.workspace_id, step.document_id, step.chunk_count)
    metrics.add_metric(name="DocumentsProcessed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ChunksWritten", unit=MetricUnit.Count, value=document.chunk_count)
    return document


def _set_error(s: Services, step: Step) -> Any:
    reason = failure_reason(step.error)
    metrics.add_metric(name="DocumentsFailed", unit=MetricUnit.Count, value=1)
    logger.warning("ingestion failed", extra={"reason": reason})
    return s.ingestion_steps.set_error(step.workspace_id, step.document_id, reason, keep_recorded=True)


def _purge_document(s: Services, step: Step) -> Any:
    s.documents.purge(step.workspace_id, step.document_id)


def _purge_workspace(s: Services, step: Step) -> Any:
    s.workspaces.purge(step.workspace_id)


STEPS: dict[str, Callable[[Services, Step], Any]] = {
    "set_processing": _set_processing,
    "set_processed": _set_processed,
    "set_error": _set_error,
    "purge_document": _purge_document,
    "purge_workspace": _purge_workspace,
}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = Step.model_validate(event)
    logger.append_keys(workspace_id=step.workspace_id, document_id=step.document_id, action=step.action)
    result = STEPS[step.action](get_services(), step)
    return DocumentOut.of(result).model_dump(mode="json") if result is not None else {"done": step.action}
