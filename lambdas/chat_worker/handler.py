"""Chat worker: SQS batch of chat jobs (from SNS, direction IN); each answered and streamed to its connection."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.adapters.cloudwatch_metrics import emit_answer_metrics
from quarry.adapters.sns_sqs import parse_bus_record
from quarry.protocol import ChatJob
from quarry.wiring import get_services

logger = Logger(service="quarry-chat-worker")
metrics = Metrics(namespace="Quarry", service="chat")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    job = ChatJob.model_validate(parse_bus_record(record.raw_event).body)
    logger.append_keys(session_id=job.session_id, message_id=job.message_id)
    answer = get_services().chat_stream.run(job)
    metrics.add_metric(name="ChatAnswers", unit=MetricUnit.Count, value=1)
    if answer is not None:
        emit_answer_metrics(answer, service="chat")  # tokens, cost and timings, by model
    if answer is not None and "first_token_ms" in answer.timings:
        metrics.add_metric(
            name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=answer.timings["first_token_ms"]
        )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
