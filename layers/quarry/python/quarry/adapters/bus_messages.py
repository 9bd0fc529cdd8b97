"""What a ``Bus`` message is on the wire, the same for SNS and the local bus.

The body is compact JSON (datetimes as ISO 8601, enums by value, sets and tuples as lists); the
attributes are non-empty strings, at most ``MAX_ATTRIBUTES`` of them, and ``topic`` is always the
topic published to (a caller's own ``topic`` attribute cannot override it). Body plus attributes
must fit SNS's 256 KiB. Subscriptions select on the attributes with SNS-style filter policies.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from quarry.errors import InvalidInput, PayloadTooLarge

__all__ = ["MAX_ATTRIBUTES", "MAX_MESSAGE_BYTES", "EncodedMessage", "encode_message", "matches_filter"]

MAX_MESSAGE_BYTES = 256 * 1024  # SNS: message body plus attributes
MAX_ATTRIBUTES = 10  # SNS limit per message


@dataclass(frozen=True, slots=True)
class EncodedMessage:
    body: str
    attributes: dict[str, str]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_message(topic: str, message: Mapping[str, Any], attributes: Mapping[str, str] | None) -> EncodedMessage:
    """The body and attributes to publish; ``InvalidInput`` or ``PayloadTooLarge`` when SNS would refuse them."""
    if not topic:
        raise InvalidInput("topic must not be empty")
    try:
        body = json.dumps(message, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"bus message is not JSON serialisable: {exc}") from exc
    values = {**(attributes or {}), "topic": topic}
    if len(values) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} message attributes")
    for name, value in values.items():
        if not isinstance(name, str) or not name or not isinstance(value, str) or not value:
            raise InvalidInput(f"message attribute {name!r} must be a non-empty string")
    size = len(body.encode("utf-8")) + sum(len(name) + len(value) + len("String") for name, value in values.items())
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(f"bus message is {size} bytes; SNS takes at most {MAX_MESSAGE_BYTES}")
    return EncodedMessage(body=body, attributes=values)


def matches_filter(policy: Mapping[str, Collection[str]] | None, attributes: Mapping[str, str]) -> bool:
    """SNS filter-policy matching on message attributes, for exact string values (AND of keys, OR of values)."""
    return all(attributes.get(name) in allowed for name, allowed in (policy or {}).items())
