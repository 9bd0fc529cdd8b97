"""Every error is JSON ``{"error": {"code", "message"}}`` with its status; never a stack trace.

A ``QuarryError`` that knows when to retry (``retry_after``: a waking database's 503) also sends
``Retry-After`` in seconds, as the local runtime's 429 does.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from quarry.errors import QuarryError
from routes.body import unsupported_media_type

logger = Logger(service="quarry-rest", child=True)


def error_response(status: int, code: str, message: str, *, retry_after: int | None = None) -> Response[Any]:
    """The error body; ``retry_after`` (seconds) becomes a ``Retry-After`` header (429, 503)."""
    body = json.dumps({"error": {"code": code, "message": message}})
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _describe(errors: Any) -> str:
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",)) or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)[:1000]


def install(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(QuarryError)
    def _domain(exc: QuarryError) -> Response[Any]:
        return error_response(exc.status, exc.code, exc.message, retry_after=exc.retry_after)

    @app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
    def _validation(exc: RequestValidationError | RequestUnsupportedContentType) -> Response[Any]:
        # A body of another media type is refused as such, whatever its parse or validation came to.
        media = unsupported_media_type(app.current_event, empty_too=isinstance(exc, RequestUnsupportedContentType))
        if media is not None:
            return error_response(media.status, media.code, media.message)
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            return error_response(400, "malformed_json", "request body is not valid JSON")
        return error_response(422, "invalid_input", _describe(errs))

    @app.exception_handler(json.JSONDecodeError)
    def _json(exc: json.JSONDecodeError) -> Response[Any]:
        return error_response(400, "malformed_json", "request body is not valid JSON")

    @app.exception_handler(ValueError)
    def _value(exc: ValueError) -> Response[Any]:
        return error_response(422, "invalid_input", str(exc))

    @app.not_found
    def _not_found(exc: Exception) -> Response[Any]:
        return error_response(404, "not_found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal error")
