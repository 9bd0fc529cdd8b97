"""Page sizes and opaque page cursors, the same for every ``Catalog``/``ChatHistory`` implementation.

A listing takes ``limit`` (1..``MAX_PAGE``) and an optional ``cursor`` it handed out before. A cursor is
the URL-safe base64 (unpadded) of the JSON array ``[tag, *values]``: the tag names the listing that made
it (``"documents"``, ``"fake"``...), the values say where the next page starts (a keyset, a DynamoDB key,
an offset). ``decode_cursor`` gives the values back only for the same tag and the expected number and
kinds of values; anything else is ``InvalidInput("invalid page cursor")``, so a forged or foreign cursor
is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from quarry.errors import InvalidInput

__all__ = ["INVALID_CURSOR", "MAX_PAGE", "check_limit", "decode_cursor", "encode_cursor"]

MAX_PAGE = 1000
INVALID_CURSOR = "invalid page cursor"

CursorValue = str | int


def check_limit(limit: int) -> int:
    """``limit`` if it is an integer in 1..``MAX_PAGE`` (not a bool), else ``InvalidInput``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def encode_cursor(tag: str, *values: CursorValue) -> str:
    """An opaque cursor for the listing ``tag`` holding ``values``."""
    raw = json.dumps([tag, *values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, tag: str, kinds: Sequence[type[CursorValue]]) -> list[Any]:
    """The values of a cursor ``encode_cursor(tag, ...)`` made, one per entry of ``kinds`` and of that kind."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error) as exc:  # bad base64, bad UTF-8, bad JSON
        raise InvalidInput(INVALID_CURSOR) from exc
    if not isinstance(decoded, list) or len(decoded) != len(kinds) + 1 or decoded[0] != tag:
        raise InvalidInput(INVALID_CURSOR)
    values = decoded[1:]
    if not all(
        isinstance(value, kind) and not isinstance(value, bool) for value, kind in zip(values, kinds, strict=True)
    ):
        raise InvalidInput(INVALID_CURSOR)
    return values
