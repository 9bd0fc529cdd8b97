"""$disconnect: forget the connection."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.wiring import get_services

logger = Logger(service="quarry-ws-disconnect")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_services().adapters.connections.remove(event["requestContext"]["connectionId"])
    return {"statusCode": 200}
