"""Per-answer CloudWatch metrics in EMF (Powertools), dimensions ``service`` and ``model``.

One EMF document per answer, printed to the function's log (CloudWatch turns it into metrics; no API
call, no extra cost per request beyond the metrics themselves): tokens in and out, the estimated cost
(:mod:`quarry.pricing`) and the timings of retrieval, first token, generation and the whole request.
Both ``chat_worker`` and ``POST /chat`` emit it; the dashboard (``stacks/monitoring.py``) reads these names.
"""

from __future__ import annotations

from typing import Any

from quarry.models import Answer
from quarry.pricing import token_cost

__all__ = [
    "COST",
    "FIRST_TOKEN_TIME",
    "GENERATION_TIME",
    "INPUT_TOKENS",
    "MODEL_DIMENSION",
    "NAMESPACE",
    "OUTPUT_TOKENS",
    "RETRIEVAL_TIME",
    "TOTAL_TIME",
    "emit_answer_metrics",
]

NAMESPACE = "Quarry"
MODEL_DIMENSION = "model"
INPUT_TOKENS = "ChatInputTokens"
OUTPUT_TOKENS = "ChatOutputTokens"
COST = "ChatCostUSD"
RETRIEVAL_TIME = "RetrievalTime"
FIRST_TOKEN_TIME = "FirstTokenTime"
GENERATION_TIME = "GenerationTime"
TOTAL_TIME = "ChatTotalTime"
_TIMINGS = {
    "retrieve_ms": RETRIEVAL_TIME,
    "first_token_ms": FIRST_TOKEN_TIME,
    "generate_ms": GENERATION_TIME,
    "total_ms": TOTAL_TIME,
}


def emit_answer_metrics(answer: Answer, *, service: str) -> dict[str, Any]:
    """Print one answer's metrics as an EMF document; returns the document."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics(namespace=NAMESPACE, service=service)
    metrics.add_dimension(name=MODEL_DIMENSION, value=answer.model or "unknown")
    usage = answer.usage
    metrics.add_metric(name=INPUT_TOKENS, unit=MetricUnit.Count, value=usage.prompt_tokens)
    metrics.add_metric(name=OUTPUT_TOKENS, unit=MetricUnit.Count, value=usage.completion_tokens)
    cost = token_cost(answer.model, usage.prompt_tokens, usage.completion_tokens)
    metrics.add_metric(name=COST, unit=MetricUnit.NoUnit, value=cost)
    for timing, name in _TIMINGS.items():
        if timing in answer.timings:
            metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=answer.timings[timing])
    document = dict(metrics.serialize_metric_set())
    metrics.flush_metrics()
    return document
