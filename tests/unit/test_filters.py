"""quarry.filters: parsing (422 naming the field), the reference semantics, JSON round trips, ``--filter`` forms.

Every store is held to the same semantics by ``tests/contracts/vector_index_contract.py``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from quarry.errors import InvalidInput
from quarry.filters import MAX_CONDITIONS, Condition, Filter, Op, is_date, parse_cli_filters
from tests.contracts.vector_index_contract import PRODUCTS, random_filter

# --------------------------------------------------------------------------- parsing


def test_the_json_forms() -> None:
    assert Filter.parse(None) == Filter() == Filter.parse({})
    assert Filter.parse({}).is_empty
    assert Filter.parse({"product": "X"}).any_of == ((Condition("product", Op.EQ, "X"),),)
    assert Filter.parse({"product": ["X", "Y"]}) == Filter.parse({"product": {"in": ["X", "Y"]}})
    assert Filter.parse({"product": ["X", "Y"]}).any_of == ((Condition("product", Op.IN, ("X", "Y")),),)
    assert Filter.parse({"rating": {"gte": 4, "lt": 5}}).any_of == (
        (Condition("rating", Op.GTE, 4), Condition("rating", Op.LT, 5)),
    )
    assert Filter.parse({"reviewed": {"exists": False}}).any_of == ((Condition("reviewed", Op.EXISTS, False),),)
    both = Filter.parse({"$or": [{"product": "X"}, {"rating": {"lt": 2}, "document_id": "d1"}]})
    assert both.any_of == (
        (Condition("product", Op.EQ, "X"),),
        (Condition("rating", Op.LT, 2), Condition("document_id", Op.EQ, "d1")),
    )
    assert both.any_of[1][1].system and not both.any_of[0][0].system
    already = Filter.parse({"a": 1})
    assert Filter.parse(already) is already


def test_dates_in_filters_are_normalised_like_stored_dates() -> None:
    parsed = Filter.parse({"published": "2024-05-01T10:00:00+02:00", "day": {"gte": "2024-05-01"}})
    assert parsed.any_of == (
        (Condition("published", Op.EQ, "2024-05-01T08:00:00Z"), Condition("day", Op.GTE, "2024-05-01")),
    )
    assert Filter.parse({"t": ["2024-05-01T00:00:00-01:00"]}).any_of[0][0].value == ("2024-05-01T01:00:00Z",)
    assert Filter.parse({"document_id": "2024-05-01T10:00:00+02:00"}).any_of[0][0].value == (
        "2024-05-01T10:00:00+02:00"  # system keys are compared as given
    )


def test_an_empty_branch_makes_the_whole_or_match_everything() -> None:
    assert Filter.parse({"$or": [{"a": 1}, {}]}).is_empty


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (5, "filter: must be an object of key -> condition"),
        ([{"a": 1}], "filter: must be an object of key -> condition"),
        ({"$or": []}, "filter.$or: must be a non-empty list of objects"),
        ({"$or": {"a": 1}}, "filter.$or: must be a non-empty list of objects"),
        ({"$or": [{"a": 1}], "b": 2}, "filter: '$or' must be the only key at its level"),
        ({"$or": [{"a": 1}, "x"]}, "filter.$or[1]: must be an object of key -> condition"),
        ({"$or": [{"$or": [{"a": 1}]}]}, "filter.$or[0].$or: unknown operator (only '$or', at the top level)"),
        ({"$or": [{"a": n} for n in range(17)]}, "filter.$or: at most 16 branches"),
        ({"$and": [{"a": 1}]}, "filter.$and: unknown operator"),
        ({"rating": {}}, "filter.rating: an empty condition"),
        ({"rating": {"between": [1, 2]}}, "filter.rating.between: unknown operator"),
        ({"rating": {"$gte": 1}}, "filter.rating.$gte: unknown operator"),
        ({"rating": {"in": 4}}, "filter.rating.in: must be a list of values"),
        ({"rating": []}, "filter.rating: 'in' needs at least one value"),
        ({"rating": list(range(101))}, "filter.rating: 'in' takes at most 100 values"),
        ({"rating": [1, None]}, "filter.rating[1]: compare with a string, number, boolean or date (got null)"),
        ({"rating": {"in": [{"a": 1}]}}, "filter.rating.in[0]: compare with a string, number, boolean or date"),
        ({"rating": None}, "filter.rating: compare with a string, number, boolean or date (got null)"),
        ({"rating": math.nan}, "filter.rating: numbers must be finite"),
        ({"rating": {"gte": math.inf}}, "filter.rating.gte: numbers must be finite"),
        ({"rating": {"gte": "high"}}, "filter.rating.gte: ranges take a number or an ISO 8601 date (got 'high')"),
        ({"rating": {"gte": True}}, "filter.rating.gte: ranges take a number or an ISO 8601 date (got True)"),
        ({"reviewed": {"exists": "yes"}}, "filter.reviewed.exists: must be true or false"),
        ({"name": "x" * 1001}, "filter.name: strings are at most 1000 characters"),
        ({"bad-key": 1}, "filter.bad-key: keys start with a letter"),
        ({"": 1}, "filter: keys must be non-empty strings"),
        ({"document_id": 7}, "filter.document_id: 'document_id' takes a non-empty string"),
        ({"source": ""}, "filter.source: 'source' takes a non-empty string"),
        ({"document_id": {"gte": "a"}}, "filter.document_id.gte: 'document_id' takes equality and 'in' only"),
        ({"source": {"exists": 1}}, "filter.source.exists: must be true or false"),
        ({f"k{n}": n for n in range(MAX_CONDITIONS + 1)}, "filter: at most 32 conditions"),
    ],
)
def test_bad_filters_are_a_422_naming_the_field(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Filter.parse(raw)
    assert message in str(caught.value)


def test_the_field_prefix_follows_where_the_filter_came_from() -> None:
    with pytest.raises(InvalidInput, match=r"^filters\.rating\.gte: ranges take"):
        Filter.parse({"rating": {"gte": "x"}}, where="filters")


# --------------------------------------------------------------------------- semantics


def matches(raw: dict[str, Any], fields: dict[str, Any], **system: str) -> bool:
    return Filter.parse(raw).matches(fields, **system)


def test_equality_is_typed() -> None:
    assert matches({"a": 4}, {"a": 4.0})
    assert matches({"a": 4.0}, {"a": 4})
    assert not matches({"a": 1}, {"a": True})
    assert not matches({"a": True}, {"a": 1})
    assert not matches({"a": 0}, {"a": False})
    assert matches({"a": False}, {"a": False})
    assert not matches({"a": "4"}, {"a": 4})
    assert not matches({"a": 4}, {"a": "4"})
    assert not matches({"a": "x"}, {"a": "X"})


def test_a_list_field_matches_when_it_holds_the_value() -> None:
    assert matches({"tags": "a"}, {"tags": ["a", "b"]})
    assert matches({"tags": ["c", "b"]}, {"tags": ["a", "b"]})
    assert not matches({"tags": "c"}, {"tags": ["a", "b"]})
    assert not matches({"tags": 1}, {"tags": ["1"]})
    assert not matches({"tags": "a"}, {"tags": []})


def test_ranges_are_typed() -> None:
    assert matches({"a": {"gt": 1, "lte": 2}}, {"a": 2})
    assert not matches({"a": {"gt": 1, "lte": 2}}, {"a": 2.5})
    assert not matches({"a": {"gte": 0}}, {"a": True})  # booleans are not numbers
    assert not matches({"a": {"gte": 0}}, {"a": "5"})
    assert not matches({"a": {"gte": 0}}, {"a": "2024-05-01"})
    assert not matches({"a": {"gte": "2024-01-01"}}, {"a": 20240501})
    assert not matches({"a": {"gte": "2024-01-01"}}, {"a": "zzz"})  # above it as text, but not a date
    assert not matches({"a": {"gte": "2024-01-01"}}, {"a": ["2024-05-01"]})


def test_dates_compare_in_time_order_and_a_date_precedes_its_times() -> None:
    day = {"d": "2024-05-01"}
    morning = {"d": "2024-05-01T08:00:00Z"}
    assert matches({"d": {"lt": "2024-05-01T00:00:00Z"}}, day)
    assert matches({"d": {"gte": "2024-05-01"}}, morning)
    assert matches({"d": {"gt": "2024-05-01"}}, morning)
    assert not matches({"d": {"gt": "2024-05-01"}}, day)
    assert matches({"d": {"gte": "2024-05-01T10:00:00+02:00"}}, morning)
    assert not matches({"d": {"gt": "2024-05-01T10:00:00+02:00"}}, morning)
    assert matches({"d": "2024-05-01T10:00:00+02:00"}, morning)
    assert not matches({"d": "2024-05-01"}, morning)


def test_exists_and_missing_keys() -> None:
    assert matches({"a": {"exists": True}}, {"a": []})
    assert matches({"a": {"exists": False}}, {"b": 1})
    assert not matches({"a": {"exists": False}}, {"a": False})
    for raw in ({"a": "x"}, {"a": ["x"]}, {"a": {"gte": 0}}, {"a": {"lt": "2030-01-01"}}):
        assert not matches(raw, {})
    assert not matches({"a": 1}, {"a": None})  # a null (never stored) matches nothing but exists
    assert matches({"a": {"exists": True}}, {"a": None})


def test_system_keys() -> None:
    assert matches({"document_id": "d1"}, {}, document_id="d1")
    assert matches({"document_id": ["d0", "d1"]}, {}, document_id="d1")
    assert not matches({"document_id": "d1"}, {"document_id": "d1"}, document_id="d2")  # never user metadata
    assert matches({"source": "web"}, {}, source="web")
    assert not matches({"source": "web"}, {})
    assert matches({"source": {"exists": True}}, {})  # a chunk always has the system fields
    assert not matches({"document_id": {"exists": False}}, {}, document_id="d1")


def test_and_or() -> None:
    raw = {"$or": [{"a": 1, "b": 2}, {"c": {"exists": True}}]}
    assert matches(raw, {"a": 1, "b": 2})
    assert not matches(raw, {"a": 1, "b": 3})
    assert matches(raw, {"a": 1, "b": 3, "c": "x"})
    assert matches({}, {})


def test_chunk_metadata_holds_the_fields_and_the_source() -> None:
    f = Filter.parse({"product": "Kettle", "source": "upload", "document_id": "p1"})
    assert f.matches_chunk_metadata(PRODUCTS["p1"], document_id="p1")
    assert not f.matches_chunk_metadata(PRODUCTS["p1"], document_id="p2")
    assert not f.matches_chunk_metadata({"product": "Kettle", "source": "upload"}, document_id="p1")
    assert not Filter.parse({"source": "x"}).matches_chunk_metadata({"source": ["x"]}, document_id="d")
    assert Filter.parse({"a": {"exists": False}}).matches_chunk_metadata({"fields": "junk"}, document_id="d")


def test_is_date_is_the_stored_form_only() -> None:
    assert is_date("2024-05-01")
    assert is_date("2024-05-01T08:00:00Z")
    arabic_indic_digits = "\u0662\u0660\u0662\u0664-\u0660\u0665-\u0660\u0661"  # 2024-05-01, not ASCII digits
    for value in ("2024-05-01T08:00:00+00:00", "2024-05-01T08:00Z", "2024-5-01", arabic_indic_digits, 20240501, None):
        assert not is_date(value)


# --------------------------------------------------------------------------- canonical JSON, description


@pytest.mark.parametrize(
    ("raw", "canonical", "description"),
    [
        ({}, {}, "all documents"),
        ({"product": {"eq": "X"}}, {"product": "X"}, "product = X"),
        ({"product": ["X", "Y"]}, {"product": {"in": ["X", "Y"]}}, "product in (X, Y)"),
        ({"rating": {"gte": 4, "lt": 5}}, {"rating": {"gte": 4, "lt": 5}}, "rating >= 4 and rating < 5"),
        ({"day": {"gt": "2024-05-01T10:00:00+02:00"}}, {"day": {"gt": "2024-05-01T08:00:00Z"}}, None),
        ({"a": {"exists": True}, "b": {"exists": False}}, None, "a is set and b is not set"),
        ({"$or": [{"a": 1}, {"b": True}]}, {"$or": [{"a": 1}, {"b": True}]}, "a = 1 or b = True"),
        ({"$or": [{"a": 1}]}, {"a": 1}, "a = 1"),
    ],
)
def test_to_json_and_describe(raw: dict[str, Any], canonical: dict[str, Any] | None, description: str | None) -> None:
    parsed = Filter.parse(raw)
    if canonical is not None:
        assert parsed.to_json() == canonical
    if description is not None:
        assert parsed.describe() == description
    assert Filter.parse(parsed.to_json()) == parsed


def test_to_json_round_trips_random_filters() -> None:
    rng = random.Random(1919)
    fields_rng = random.Random(7)
    corpus = [
        {"a": fields_rng.choice([1, "x", True, ["x"], "2024-01-01"]), "b": fields_rng.random()} for _ in range(20)
    ]
    for _ in range(300):
        parsed = Filter.parse(random_filter(rng))
        again = Filter.parse(parsed.to_json())
        assert again == parsed
        assert [again.matches(f, document_id="r1") for f in corpus] == [
            parsed.matches(f, document_id="r1") for f in corpus
        ]


# --------------------------------------------------------------------------- command line


def test_cli_forms() -> None:
    parsed = parse_cli_filters(
        [
            "product=Kettle",
            "rating>=4",
            "rating<5",
            "price>9.5",
            "price<=20",
            "tags=[kitchen, steel]",
            "reviewed=true",
            "published>2024-05-01T10:00:00+02:00",
            "note?",
            "!draft?",
            "document_id=123",
        ]
    )
    assert parsed.to_json() == {
        "product": "Kettle",
        "rating": {"gte": 4, "lt": 5},
        "price": {"gt": 9.5, "lte": 20},
        "tags": {"in": ["kitchen", "steel"]},
        "reviewed": True,
        "published": {"gt": "2024-05-01T08:00:00Z"},
        "note": {"exists": True},
        "draft": {"exists": False},
        "document_id": "123",  # system keys stay strings
    }
    assert parse_cli_filters([]) == Filter()
    assert parse_cli_filters([" a = 1 "]) == Filter.parse({"a": 1})


@pytest.mark.parametrize(
    ("expressions", "message"),
    [
        (["product"], "--filter 'product': expected key=value, key>=value, key<value, key? ..."),
        (["=5"], "--filter '=5': expected key=value"),
        (["!draft=1"], "--filter '!draft=1': '!' goes only before 'key?'"),
        (["a>=1", "a>=2"], "--filter 'a>=2': a already has a 'gte' condition"),
        (["a=1", "a=2"], "--filter 'a=2': a already has a 'eq' condition"),
        (["rating>=high"], "--filter.rating.gte: ranges take a number or an ISO 8601 date (got 'high')"),
        (["bad-key=1"], "--filter.bad-key: keys start with a letter"),
        (["document_id>=a"], "--filter.document_id.gte: 'document_id' takes equality and 'in' only"),
    ],
)
def test_bad_cli_filters(expressions: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_cli_filters(expressions)
    assert message in str(caught.value)
