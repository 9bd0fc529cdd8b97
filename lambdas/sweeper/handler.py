"""Scheduled: documents stuck in `processing` past their timeout end in `error` with the reason "timed out".

The timeout (``QUARRY_PROCESSING_TIMEOUT_SECONDS``) is derived by the stack from the Batch job's timeout and
attempts plus a start-up margin (``IngestionConfig.processing_timeout_seconds``), so a job that may still
finish is never failed. No concurrency is reserved (a new account cannot reserve any); two overlapping runs
are harmless: each status write is conditional on the document still existing (a deleted one is never
resurrected) and both write the same terminal state, the second only re-announcing it.

A swept document is retryable (``POST .../documents/{id}/retry``, ``DocumentService.retry``): the retry starts a
new execution under a fresh name, since the upload's own execution name (derived from key + etag) is spent.
Locally the same handler runs every minute in `quarry serve`, which also resumes at start-up whatever a previous
process left ``created`` or ``processing`` instead of waiting for this timeout.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.wiring import get_services

logger = Logger(service="quarry-sweeper")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = get_services()
    swept = services.ingestion_steps.sweep_stale(timedelta(seconds=services.settings.processing_timeout_seconds))
    for document in swept:
        logger.warning("document timed out", extra={"workspace_id": document.workspace_id, "document_id": document.id})
    return {"swept": [d.id for d in swept]}
