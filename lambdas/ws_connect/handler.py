"""$connect: remember who holds the connection (the authorizer verified them)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.auth import user_from_event
from quarry.errors import Unauthorized
from quarry.wiring import get_services

logger = Logger(service="quarry-ws-connect")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        user = user_from_event(event)
    except Unauthorized:
        return {"statusCode": 401}
    get_services().adapters.connections.add(event["requestContext"]["connectionId"], user)
    return {"statusCode": 200}
