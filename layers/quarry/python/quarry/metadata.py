"""Metadata users set on a document: typed, validated fields that search filters and summary jobs select on.

A document's user metadata is a flat mapping ``key -> value``. Values are one of five types:

- **string** (at most 1,000 characters),
- **number** (a finite int or float; booleans are not numbers),
- **boolean**,
- **date**: a string in ISO 8601 form, ``YYYY-MM-DD`` or a date-time with an offset
  (``2024-05-01T10:00:00+02:00``); stored normalised (a date as ``YYYY-MM-DD``, a date-time in UTC as
  ``YYYY-MM-DDTHH:MM:SSZ``) so that the stores compare dates as text in time order,
- **list of strings** (at most 100, each at most 200 characters).

Where it lives. The catalog keeps it in ``Document.metadata[USER_METADATA_KEY]`` (beside the system
fields the platform records there), and every chunk of the document carries the same mapping in
``Chunk.metadata[USER_METADATA_KEY]``, so the vector stores filter on it inside the database.

Keys start with a letter and hold letters, digits and ``_`` (at most 64 characters): they become JSON
paths in Postgres and field names in OpenSearch, so nothing that needs quoting. The system filter keys
(``RESERVED_KEYS``) are not allowed as user keys.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from quarry.errors import InvalidInput

__all__ = [
    "MAX_KEYS",
    "MAX_LIST_ITEMS",
    "MAX_METADATA_BYTES",
    "RESERVED_KEYS",
    "USER_METADATA_KEY",
    "MetadataValue",
    "as_date",
    "merge_metadata",
    "parse_meta_assignment",
    "user_metadata",
    "validate_key",
    "validate_metadata",
]

MetadataValue = str | int | float | bool | list[str]

#: Where user metadata sits inside ``Document.metadata`` and ``Chunk.metadata``.
USER_METADATA_KEY = "fields"
#: Filter keys that name system fields of a chunk, not user metadata.
RESERVED_KEYS = frozenset({"document_id", "source"})

MAX_KEYS = 32
MAX_KEY_CHARS = 64
MAX_STRING_CHARS = 1_000
MAX_LIST_ITEMS = 100
MAX_LIST_ITEM_CHARS = 200
MAX_METADATA_BYTES = 16_384

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})")


def validate_key(key: object, *, where: str = "metadata") -> str:
    """A user metadata key, or 422 naming what is wrong with it."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{where}: keys must be non-empty strings")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidInput(f"{where}.{key[:MAX_KEY_CHARS]}...: keys are at most {MAX_KEY_CHARS} characters")
    if not _KEY.fullmatch(key):
        raise InvalidInput(
            f"{where}.{key}: keys start with a letter and hold only letters, digits and '_' (got {key!r})"
        )
    if key in RESERVED_KEYS:
        raise InvalidInput(f"{where}.{key}: {key!r} is a system field and cannot be set")
    return key


def as_date(value: object) -> str | None:
    """The normalised form of an ISO 8601 date or date-time string, or None when ``value`` is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            return None
    if _DATETIME.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _value(key: str, value: object, where: str) -> MetadataValue:
    field = f"{where}.{key}"
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInput(f"{field}: numbers must be finite")
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise InvalidInput(f"{field}: strings are at most {MAX_STRING_CHARS} characters")
        return as_date(value) or value
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST_ITEMS:
            raise InvalidInput(f"{field}: lists hold at most {MAX_LIST_ITEMS} items")
        items: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise InvalidInput(f"{field}: lists hold strings only (got {type(item).__name__})")
            if len(item) > MAX_LIST_ITEM_CHARS:
                raise InvalidInput(f"{field}: list items are at most {MAX_LIST_ITEM_CHARS} characters")
            items.append(item)
        return items
    kind = "null" if value is None else type(value).__name__
    raise InvalidInput(f"{field}: values are a string, number, boolean, date or list of strings (got {kind})")


def validate_metadata(raw: object, *, where: str = "metadata") -> dict[str, MetadataValue]:
    """Checked, normalised user metadata; 422 naming the field on the first problem."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: must be an object of key -> value")
    if len(raw) > MAX_KEYS:
        raise InvalidInput(f"{where}: at most {MAX_KEYS} keys (got {len(raw)})")
    checked = {validate_key(key, where=where): _value(key, value, where) for key, value in raw.items()}
    size = len(json.dumps(checked, ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(f"{where}: at most {MAX_METADATA_BYTES} bytes as JSON (got {size})")
    return checked


def merge_metadata(
    current: Mapping[str, MetadataValue], changes: Mapping[str, MetadataValue | None]
) -> dict[str, MetadataValue]:
    """``current`` with ``changes`` applied: a None value removes the key (JSON merge patch, RFC 7386)."""
    merged: dict[str, Any] = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return validate_metadata(merged)


def user_metadata(metadata: Mapping[str, Any]) -> dict[str, MetadataValue]:
    """The user metadata inside a document's or chunk's ``metadata`` (empty when none was set)."""
    fields = metadata.get(USER_METADATA_KEY)
    return dict(fields) if isinstance(fields, Mapping) else {}


def parse_meta_assignment(text: str) -> tuple[str, MetadataValue]:
    """``key=value`` from a command line: numbers, ``true``/``false`` and ``a,b,c`` lists (``key=[a,b]``)
    are typed; anything else is a string (dates are recognised by ``validate_metadata``)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"--meta {text!r}: expected key=value")
    key = validate_key(key.strip(), where="--meta")
    value = value.strip()
    typed: MetadataValue
    if value.startswith("[") and value.endswith("]"):
        typed = [item.strip() for item in value[1:-1].split(",") if item.strip()]
    elif value in {"true", "false"}:
        typed = value == "true"
    else:
        typed = _number(value)
    return key, _value(key, typed, "--meta")


def _number(value: str) -> str | int | float:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else value
