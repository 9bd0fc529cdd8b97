"""$connect: remember who holds the connection and until when their token is valid (the authorizer verified it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.auth import user_from_event
from quarry.errors import Unauthorized
from quarry.wiring import get_services

logger = Logger(service="quarry-ws-connect")


def _token_expiry(event: dict[str, Any]) -> datetime | None:
    """The token's ``exp`` the authorizer put in its context (API Gateway hands context values over as strings)."""
    value = ((event.get("requestContext") or {}).get("authorizer") or {}).get("expires_at")
    try:
        return datetime.fromtimestamp(int(value), UTC) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        user = user_from_event(event)
    except Unauthorized:
        return {"statusCode": 401}
    get_services().adapters.connections.add(
        event["requestContext"]["connectionId"], user, token_expires_at=_token_expiry(event)
    )
    return {"statusCode": 200}
