"""Scheduled: documents stuck in `processing` past their timeout end in `error` with the reason "timed out"."""

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
    swept = services.ingestion.sweep_stale(timedelta(seconds=services.settings.processing_timeout_seconds))
    for document in swept:
        logger.warning("document timed out", extra={"workspace_id": document.workspace_id, "document_id": document.id})
    return {"swept": [d.id for d in swept]}
