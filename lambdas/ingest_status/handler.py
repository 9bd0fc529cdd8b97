"""The state machine's status steps: SetProcessing, SetProcessed, SetError (with the failure's cause)."""

from __future__ import annotations

import json
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field
from quarry.protocol import DocumentOut
from quarry.wiring import get_services

logger = Logger(service="quarry-ingest-status")
metrics = Metrics(namespace="Quarry", service="ingestion")


class StatusStep(BaseModel):
    action: Literal["set_processing", "set_processed", "set_error"]
    workspace_id: str
    document_id: str
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


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = StatusStep.model_validate(event)
    logger.append_keys(workspace_id=step.workspace_id, document_id=step.document_id)
    ingestion = get_services().ingestion
    if step.action == "set_processing":
        document = ingestion.set_processing(step.workspace_id, step.document_id)
    elif step.action == "set_processed":
        document = ingestion.set_processed(step.workspace_id, step.document_id, step.chunk_count)
        metrics.add_metric(name="DocumentsProcessed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ChunksWritten", unit=MetricUnit.Count, value=document.chunk_count)
    else:
        reason = failure_reason(step.error)
        document = ingestion.set_error(step.workspace_id, step.document_id, reason, keep_recorded=True)
        metrics.add_metric(name="DocumentsFailed", unit=MetricUnit.Count, value=1)
        logger.warning("ingestion failed", extra={"reason": reason})
    return DocumentOut.of(document).model_dump(mode="json") if document else {}
