"""S3 ObjectCreated events (via SQS with a DLQ) -> register the document (idempotent on key+etag) -> start ingestion.

Powertools batch processing: one bad record fails alone; the s3:TestEvent is ignored. S3 delivers events
out of order and SQS more than once: each record carries the object's ``sequencer``, the document keeps the
last one applied, and an event older than that is a logged no-op (``DocumentService.register_upload``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.adapters.s3 import parse_object_created
from quarry.filetypes import SUPPORTED_TYPES
from quarry.wiring import get_services

logger = Logger(service="quarry-ingest-trigger")
metrics = Metrics(namespace="Quarry", service="ingestion")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    documents = get_services().documents
    for created in parse_object_created(record.body):
        suffix = "." + created.key.rsplit(".", 1)[-1].lower() if "." in created.key else ""
        document, new = documents.register_upload(
            created.key,
            etag=created.etag,
            size=created.size,
            content_type=SUPPORTED_TYPES.get(suffix),
            sequencer=created.sequencer,
            event_time=created.event_time,
            version_id=created.version_id,
        )
        logger.info(
            "upload registered" if new else "upload already registered or superseded",
            extra={
                "workspace_id": document.workspace_id,
                "document_id": document.id,
                "key": created.key,
                "new": new,
                "sequencer": created.sequencer,
                "etag": created.etag,
            },
        )
        if new:
            metrics.add_metric(name="DocumentsRegistered", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
