"""CloudFormation custom resource: create the Postgres schema (pgvector extension, catalog tables) once per deploy."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.wiring import get_services

logger = Logger(service="quarry-workspace-setup")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("RequestType", "Create") in ("Create", "Update"):
        adapters = get_services().adapters
        adapters.vector_index  # noqa: B018 - building the adapters creates their schema idempotently
        logger.info("schema ready")
    return {"PhysicalResourceId": "quarry-pg-schema"}
