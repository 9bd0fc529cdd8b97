"""CloudFormation custom resource: make sure the pgvector extension exists, once per deploy.

Runs through whichever driver the index uses (the RDS Data API by default), so a cluster without the Data
API, a wrong secret or missing grants fail the deployment with the database's own message.
Workspace schemas are created later, on demand, by ``ensure_workspace``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.wiring import get_services

logger = Logger(service="quarry-workspace-setup")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("RequestType", "Create") in ("Create", "Update"):
        index = get_services().adapters.vector_index
        prepare = getattr(index, "prepare", None)  # pgvector has one; OpenSearch needs no setup
        if callable(prepare):
            prepare()
        logger.info("vector index ready", extra={"index": type(index).__name__})
    return {"PhysicalResourceId": "quarry-pg-schema"}
