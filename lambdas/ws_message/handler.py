"""$default: validate a client message; `chat` is published on the bus, `ping` and `cancel` answered here.

A malformed, oversized or binary message gets an `error` event and the connection stays open; a chat whose
`filters` are wrong gets `invalid_input` naming the field, before anything is queued. Once the
token the connection was opened with has expired, any message gets a `token_expired` error and the
connection is closed (code 4401): the token is checked at `$connect` only, so its expiry is checked here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from quarry.auth import user_from_event
from quarry.errors import QuarryError
from quarry.protocol import (
    MAX_WS_MESSAGE_BYTES,
    CancelAction,
    ChatAction,
    ErrorEvent,
    PingAction,
    PongEvent,
    client_message_adapter,
)
from quarry.wiring import get_services

logger = Logger(service="quarry-ws-message")

TOKEN_EXPIRED_CLOSE_CODE = 4401  # the 4000-4999 range is the application's; 401 as in HTTP


def _error(code: str, message: str) -> dict[str, Any]:
    return ErrorEvent(code=code, message=message).model_dump(mode="json")


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "message"
    if first.get("type") == "union_tag_invalid":
        return "unknown action (expected chat, ping or cancel)"
    if first.get("type") == "union_tag_not_found":
        return "message needs an 'action' field"
    return f"{where}: {first.get('msg')}"


def _about_filters(exc: ValidationError) -> bool:
    return any(part in ("filters", "filter") for part in exc.errors()[0].get("loc", ()))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    stream = get_services().chat_stream
    connection_id = event["requestContext"]["connectionId"]
    if stream.token_expired(connection_id):
        logger.info("closing a connection whose token expired", extra={"connection_id": connection_id})
        stream.send(connection_id, _error("token_expired", "your sign-in has expired: reconnect with a new token"))
        stream.close(connection_id, code=TOKEN_EXPIRED_CLOSE_CODE, reason="token expired")
        return {"statusCode": 200}
    body = event.get("body") or ""
    if event.get("isBase64Encoded") or not isinstance(body, str):
        stream.send(connection_id, _error("unsupported_frame", "binary frames are not accepted: send JSON as text"))
        return {"statusCode": 200}
    if len(body.encode("utf-8")) > MAX_WS_MESSAGE_BYTES:
        stream.send(connection_id, _error("payload_too_large", f"messages are limited to {MAX_WS_MESSAGE_BYTES} bytes"))
        return {"statusCode": 200}
    try:
        message = client_message_adapter.validate_json(body)
    except ValidationError as exc:
        code = "malformed_json" if any(e.get("type") == "json_invalid" for e in exc.errors()) else "invalid_message"
        if code == "invalid_message" and _about_filters(exc):
            code = "invalid_input"  # as a filter that is an object but does not parse (``ChatStreamService.submit``)
        text = "message is not valid JSON" if code == "malformed_json" else _describe(exc)
        stream.send(connection_id, _error(code, text))
        return {"statusCode": 200}
    try:
        if isinstance(message, PingAction):
            stream.send(connection_id, PongEvent().model_dump(mode="json"))
        elif isinstance(message, CancelAction):
            stream.cancel(user_from_event(event), message.session_id)
        elif isinstance(message, ChatAction):
            job = stream.submit(connection_id, user_from_event(event), message)
            logger.info("chat queued", extra={"session_id": job.session_id, "message_id": job.message_id})
    except QuarryError as exc:
        stream.send(connection_id, _error(exc.code, exc.message))
    return {"statusCode": 200}
