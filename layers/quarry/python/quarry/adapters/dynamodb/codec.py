"""Python values to DynamoDB JSON and back, expression helpers, and the fixed-width timestamps in keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from quarry.errors import InvalidInput

__all__ = [
    "Item",
    "attribute_values",
    "epoch_ms",
    "from_item",
    "parse_timestamp",
    "timestamp",
    "to_item",
    "update_params",
]

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]


def timestamp(value: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: fixed width, so timestamps sort as strings (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidInput("datetimes must be timezone-aware")
    return int(moment.timestamp() * 1000)


def to_item(values: Mapping[str, Any]) -> Item:
    """Python values to DynamoDB JSON; None values are left out (absent, not NULL)."""
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def from_item(item: Mapping[str, Any]) -> Item:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def attribute_values(**values: Any) -> Item:
    """``ExpressionAttributeValues`` from keywords: ``attribute_values(pk=...)`` gives ``{":pk": {...}}``."""
    return {f":{name}": _serializer.serialize(value) for name, value in values.items()}


def update_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """An UpdateExpression setting every non-None value and removing every None one."""
    sets: list[str] = []
    removes: list[str] = []
    names: dict[str, str] = {}
    expression_values: Item = {}
    for i, (name, value) in enumerate(values.items()):
        names[f"#a{i}"] = name
        if value is None:
            removes.append(f"#a{i}")
        else:
            sets.append(f"#a{i} = :v{i}")
            expression_values[f":v{i}"] = _serializer.serialize(value)
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    params: dict[str, Any] = {"UpdateExpression": expression, "ExpressionAttributeNames": names}
    if expression_values:
        params["ExpressionAttributeValues"] = expression_values
    return params
