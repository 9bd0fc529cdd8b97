"""Request bodies: JSON only, and parsed within bounds, so a hostile body is a 4xx and never a 500.

- A body sent with another media type (``text/plain``, a form) is ``415 unsupported_media_type``. A body
  without ``Content-Type`` is read as JSON, as API Gateway (which defaults it to ``application/json``) and
  Powertools do.
- A JSON body nesting deeper than :data:`MAX_JSON_DEPTH` is ``400 malformed_json``: the parser's own
  recursion limit (a ``RecursionError``) is turned into the same answer. No request model nests more than
  a few levels.

API Gateway checks the same bodies against the request models of ``quarry.protocol`` (``stacks/api.py``)
for ``application/json``; this module is what holds when it does not (other content types) and locally.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from quarry.errors import QuarryError

__all__ = [
    "MAX_JSON_DEPTH",
    "MalformedJson",
    "UnsupportedMediaType",
    "json_bodies_only",
    "parse_json",
    "unsupported_media_type",
]

MAX_JSON_DEPTH = 64


class MalformedJson(QuarryError):
    status = 400
    code = "malformed_json"


class UnsupportedMediaType(QuarryError):
    status = 415
    code = "unsupported_media_type"


def _too_deep(value: Any, limit: int) -> bool:
    """Whether arrays/objects nest more than ``limit`` levels (iterative: no recursion of its own)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json(text: str) -> Any:
    """The resolver's JSON body deserializer. A syntax error stays a ``JSONDecodeError`` (Powertools turns
    it into a validation error, answered 400 ``malformed_json``); too deep a body raises ``MalformedJson``."""
    too_deep = MalformedJson(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep from None
    if isinstance(value, (dict, list)) and _too_deep(value, MAX_JSON_DEPTH):
        raise too_deep
    return value


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def unsupported_media_type(event: BaseProxyEvent, *, empty_too: bool = False) -> UnsupportedMediaType | None:
    """The error for a request whose body is not JSON, or None (no body unless ``empty_too``, no
    Content-Type, or JSON)."""
    if not event.body and not empty_too:
        return None
    header = event.headers.get("content-type") or ""  # Powertools' headers are case-insensitive
    media_type = header.split(";", 1)[0].strip().lower()
    if not media_type or _is_json(media_type):
        return None
    return UnsupportedMediaType(f"request bodies must be JSON (Content-Type: application/json), not {media_type}")


def json_bodies_only(app: ApiGatewayResolver, next_middleware: Callable[[ApiGatewayResolver], Response[Any]]) -> Any:
    """Global middleware: a non-JSON body that still validated (a form whose fields match) is refused too."""
    error = unsupported_media_type(app.current_event)
    if error is not None:
        raise error
    return next_middleware(app)
