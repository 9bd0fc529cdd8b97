"""Page limits and opaque cursors, shared by the SQL and DynamoDB adapters and the fakes."""

from __future__ import annotations

import base64
import json

import pytest

from quarry.adapters.paging import MAX_PAGE, check_limit, decode_cursor, encode_cursor
from quarry.errors import InvalidInput


def test_limits_are_whole_numbers_from_one_to_max_page() -> None:
    assert check_limit(1) == 1
    assert check_limit(MAX_PAGE) == MAX_PAGE
    for bad in (0, -1, MAX_PAGE + 1, True, 2.0, "5"):
        with pytest.raises(InvalidInput, match=f"limit must be between 1 and {MAX_PAGE}"):
            check_limit(bad)  # type: ignore[arg-type]


def test_a_cursor_gives_back_its_values_to_its_own_listing() -> None:
    cursor = encode_cursor("messages", "2026-01-01T00:00:00+00:00", 42)
    assert "=" not in cursor and all(c.isalnum() or c in "-_" for c in cursor)  # safe in a query string
    assert decode_cursor(cursor, "messages", (str, int)) == ["2026-01-01T00:00:00+00:00", 42]
    unicode = encode_cursor("documents", "WS#ünï/cødé", "DOC#x")
    assert decode_cursor(unicode, "documents", (str, str)) == ["WS#ünï/cødé", "DOC#x"]


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "###",
        "not a cursor",
        "bm90IGpzb24",  # "not json"
        _raw({"tag": "messages"}),
        _raw(["messages", "2026-01-01", 1, 2]),  # one value too many
        _raw(["messages", "2026-01-01"]),  # one too few
        _raw(["sessions", "2026-01-01", 1]),  # another listing's
        _raw(["messages", "2026-01-01", "1"]),  # a value of the wrong kind
        _raw(["messages", "2026-01-01", True]),  # bools are not ints here
        "ü",
    ],
)
def test_forged_or_foreign_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="invalid page cursor"):
        decode_cursor(cursor, "messages", (str, int))


def test_a_truncated_cursor_is_invalid_input() -> None:
    cursor = encode_cursor("messages", "2026-01-01T00:00:00+00:00", 42)
    with pytest.raises(InvalidInput, match="invalid page cursor"):
        decode_cursor(cursor[:-3], "messages", (str, int))
