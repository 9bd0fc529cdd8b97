"""quarry.metadata: validation (422 naming the field), date normalisation, merge patches, ``--meta`` forms."""

from __future__ import annotations

import math
from typing import Any

import pytest

from quarry.errors import InvalidInput
from quarry.metadata import (
    MAX_KEYS,
    MAX_LIST_ITEMS,
    MAX_METADATA_BYTES,
    USER_METADATA_KEY,
    as_date,
    merge_metadata,
    parse_meta_assignment,
    user_metadata,
    validate_key,
    validate_metadata,
)


def test_every_type_is_accepted_and_kept() -> None:
    raw = {"product": "Kettle", "rating": 4, "price": 19.5, "reviewed": True, "tags": ["a", "b"], "empty": []}
    assert validate_metadata(raw) == raw
    assert validate_metadata(None) == {}
    assert validate_metadata({}) == {}
    assert validate_metadata({"flag": False})["flag"] is False  # a boolean stays a boolean, never 0


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2024-05-01", "2024-05-01"),
        (" 2024-05-01 ", "2024-05-01"),
        ("2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z"),
        ("2024-05-01T10:00:00+0200", "2024-05-01T08:00:00Z"),
        ("2024-05-01T10:00Z", "2024-05-01T10:00:00Z"),
        ("2024-05-01 10:00:30Z", "2024-05-01T10:00:30Z"),
        ("2024-05-01T10:00:30.999-01:00", "2024-05-01T11:00:30Z"),
        ("2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00Z"),
    ],
)
def test_dates_are_stored_normalised(given: str, stored: str) -> None:
    assert as_date(given) == stored
    assert validate_metadata({"published": given}) == {"published": stored}


@pytest.mark.parametrize(
    "text",
    ["2024-02-30", "2024-13-01", "2024-05-01T10:00:00", "May 1, 2024", "20240501", "2024-5-1", "", "not a date"],
)
def test_what_is_not_a_date_stays_a_string(text: str) -> None:
    """A date-time needs its offset (no guessing the time zone); impossible dates are plain strings."""
    assert as_date(text) is None
    assert validate_metadata({"x": text}) == {"x": text}


def test_as_date_takes_strings_only() -> None:
    assert as_date(20240501) is None
    assert as_date(None) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "metadata: must be an object of key -> value"),
        ({"": 1}, "metadata: keys must be non-empty strings"),
        ({"1st": 1}, "metadata.1st: keys start with a letter"),
        ({"has space": 1}, "metadata.has space: keys start with a letter"),
        ({"dotted.key": 1}, "metadata.dotted.key: keys start with a letter"),
        ({"k" * 65: 1}, "keys are at most 64 characters"),
        ({"document_id": "x"}, "metadata.document_id: 'document_id' is a system field"),
        ({"source": "x"}, "metadata.source: 'source' is a system field"),
        ({"a": None}, "metadata.a: values are a string, number, boolean, date or list of strings (got null)"),
        ({"a": {"b": 1}}, "metadata.a: values are a string, number, boolean, date or list of strings (got dict)"),
        ({"a": math.nan}, "metadata.a: numbers must be finite"),
        ({"a": math.inf}, "metadata.a: numbers must be finite"),
        ({"a": "x" * 1001}, "metadata.a: strings are at most 1000 characters"),
        ({"a": ["x", 1]}, "metadata.a: lists hold strings only (got int)"),
        ({"a": ["x"] * (MAX_LIST_ITEMS + 1)}, "metadata.a: lists hold at most 100 items"),
        ({"a": ["x" * 201]}, "metadata.a: list items are at most 200 characters"),
        ({f"k{n}": n for n in range(MAX_KEYS + 1)}, "metadata: at most 32 keys (got 33)"),
    ],
)
def test_bad_metadata_is_a_422_naming_the_field(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_metadata(raw)
    assert message in str(caught.value)


def test_the_field_prefix_follows_where_it_came_from() -> None:
    with pytest.raises(InvalidInput, match=r"^body\.metadata\.a: numbers must be finite"):
        validate_metadata({"a": math.inf}, where="body.metadata")
    with pytest.raises(InvalidInput, match=r"^--meta\.bad-key: keys start"):
        validate_key("bad-key", where="--meta")


def test_the_whole_mapping_has_a_size_limit() -> None:
    big = {f"k{n}": "x" * 1000 for n in range(17)}
    with pytest.raises(InvalidInput, match=rf"metadata: at most {MAX_METADATA_BYTES} bytes as JSON"):
        validate_metadata(big)


def test_merge_is_a_json_merge_patch() -> None:
    current: dict[str, Any] = {"product": "Kettle", "rating": 4, "tags": ["a"]}
    merged = merge_metadata(current, {"rating": 5, "tags": None, "published": "2024-05-01T10:00:00+02:00"})
    assert merged == {"product": "Kettle", "rating": 5, "published": "2024-05-01T08:00:00Z"}
    assert current == {"product": "Kettle", "rating": 4, "tags": ["a"]}  # not changed in place
    assert merge_metadata(current, {"missing": None}) == current
    with pytest.raises(InvalidInput, match=r"metadata\.rating: numbers must be finite"):
        merge_metadata(current, {"rating": math.nan})


def test_user_metadata_is_read_from_the_fields_key() -> None:
    assert USER_METADATA_KEY == "fields"
    assert user_metadata({"fields": {"a": 1}, "url": "https://x"}) == {"a": 1}
    assert user_metadata({"url": "https://x"}) == {}
    assert user_metadata({"fields": "not a mapping"}) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("product=Kettle", ("product", "Kettle")),
        (" rating = 4 ", ("rating", 4)),
        ("price=19.5", ("price", 19.5)),
        ("reviewed=true", ("reviewed", True)),
        ("draft=false", ("draft", False)),
        ("tags=[a, b ,c]", ("tags", ["a", "b", "c"])),
        ("tags=[]", ("tags", [])),
        ("csv=a,b", ("csv", "a,b")),
        ("published=2024-05-01T10:00:00+02:00", ("published", "2024-05-01T08:00:00Z")),
        ("ratio=nan", ("ratio", "nan")),
        ("big=inf", ("big", "inf")),
        ("version=1.2.3", ("version", "1.2.3")),
        ("note=", ("note", "")),
        ("eq=a=b", ("eq", "a=b")),
    ],
)
def test_meta_assignments_from_the_command_line(text: str, expected: tuple[str, Any]) -> None:
    assert parse_meta_assignment(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("noequals", "--meta 'noequals': expected key=value"),
        ("=value", "--meta: keys must be non-empty strings"),
        ("bad key=1", "--meta.bad key: keys start with a letter"),
        ("source=x", "--meta.source: 'source' is a system field"),
    ],
)
def test_bad_meta_assignments(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_meta_assignment(text)
    assert message in str(caught.value)
