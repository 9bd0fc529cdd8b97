"""The summaries state machine's steps (``stacks/summaries.py``): plan, map_batch, record_failed_batch, reduce
and fail_run.

The machine sends ``{"step": <name>, "payload": {...}}``; the payload is what the step of
``quarry.services.summaries`` takes, and the step's answer is the state's output. Each step is safe to
repeat (Step Functions retries a failed batch; a batch whose result is stored is skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from quarry.wiring import Services, get_services

logger = Logger(service="quarry-summary-worker")
metrics = Metrics(namespace="Quarry", service="summaries")

StepName = Literal["plan", "map_batch", "record_failed_batch", "reduce", "fail_run"]


class Step(BaseModel):
    step: StepName
    payload: dict[str, Any]


def _plan(s: Services, payload: dict[str, Any]) -> Any:
    return s.summaries.plan(payload)


def _map_batch(s: Services, payload: dict[str, Any]) -> Any:
    result = s.summaries.map_batch(payload)
    metrics.add_metric(name="SummaryBatchesDone", unit=MetricUnit.Count, value=1)
    return result


def _record_failed_batch(s: Services, payload: dict[str, Any]) -> Any:
    logger.warning("summary batch failed after its retries", extra={"error": payload.get("error")})
    metrics.add_metric(name="SummaryBatchesFailed", unit=MetricUnit.Count, value=1)
    return s.summaries.record_failed_batch(payload)


def _reduce(s: Services, payload: dict[str, Any]) -> Any:
    return s.summaries.reduce(payload)


def _fail_run(s: Services, payload: dict[str, Any]) -> Any:
    logger.error("summary run failed after its retries", extra={"error": payload.get("error")})
    metrics.add_metric(name="SummaryRunsFailed", unit=MetricUnit.Count, value=1)
    return s.summaries.fail_run(payload)


STEPS: dict[str, Callable[[Services, dict[str, Any]], Any]] = {
    "plan": _plan,
    "map_batch": _map_batch,
    "record_failed_batch": _record_failed_batch,
    "reduce": _reduce,
    "fail_run": _fail_run,
}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    step = Step.model_validate(event)
    p = step.payload
    logger.append_keys(
        step=step.step, workspace_id=p.get("workspace_id"), job_id=p.get("job_id"), run_id=p.get("run_id")
    )
    result = STEPS[step.step](get_services(), p)
    return result if result is not None else {"done": step.step}
