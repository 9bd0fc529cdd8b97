"""The one filter language of search, chat and summary jobs, parsed once at the edge.

JSON form (REST bodies, WebSocket ``chat`` actions, ``--filter-json``)::

    {}                                              every chunk
    {"product": "X"}                                equality (a list field matches when it holds "X")
    {"product": ["X", "Y"]}                         in (same as {"product": {"in": ["X", "Y"]}})
    {"rating": {"gte": 4, "lt": 5}}                 ranges on numbers ...
    {"published": {"gte": "2024-01-01"}}            ... and on dates (ISO 8601)
    {"reviewed": {"exists": true}}                  the key is set (false: it is not)
    {"product": "X", "rating": {"gte": 4}}          AND across keys
    {"$or": [{"product": "X"}, {"rating": {"lt": 2}}]}   OR at the top level, of AND groups

Keys name user metadata (``quarry.metadata``), except the system keys ``document_id`` and ``source``
(equality and ``in`` only). A date in a range or an equality is normalised as metadata dates are, so
``"2024-05-01T10:00:00+02:00"`` and the stored ``"2024-05-01T08:00:00Z"`` are equal.

Semantics every store implements (``tests/contracts/vector_index_contract.py`` runs them on each):

- equality: a scalar field equal to the value (numbers by value; ``true`` is not ``1``), or a list field
  holding it;
- ranges: a number bound matches number fields only, a date bound matches date fields only (dates
  compare in time order; a date ``2024-05-01`` sorts before any time on that day);
- ``exists``: whether the key is set at all;
- a chunk without the key matches no equality, ``in`` or range on it.

Command-line form (``quarry search --filter ...``, repeated = AND): ``key=value``, ``key=[a,b]`` (in),
``key>=value``, ``key>value``, ``key<=value``, ``key<value``, ``key?`` (exists), ``!key?`` (not set).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from quarry.errors import InvalidInput
from quarry.metadata import (
    MAX_STRING_CHARS,
    RESERVED_KEYS,
    USER_METADATA_KEY,
    MetadataValue,
    as_date,
    parse_meta_assignment,
    validate_key,
)

__all__ = ["MAX_CONDITIONS", "Condition", "Filter", "Op", "Scalar", "is_date", "parse_cli_filters"]

Scalar = str | int | float | bool

MAX_CONDITIONS = 32
MAX_BRANCHES = 16
MAX_IN_VALUES = 100

_NORMALISED_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?")


class Op(StrEnum):
    EQ = "eq"
    IN = "in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EXISTS = "exists"


RANGE_OPS = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})


def is_date(value: object) -> bool:
    """A stored (normalised) date or date-time string: what date ranges compare against."""
    return isinstance(value, str) and _NORMALISED_DATE.fullmatch(value) is not None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on one key. ``value``: a scalar (eq, ranges), a tuple of scalars (in), a bool (exists)."""

    key: str
    op: Op
    value: Any

    @property
    def system(self) -> bool:
        return self.key in RESERVED_KEYS

    @property
    def values(self) -> tuple[Scalar, ...]:
        """The values an ``eq`` or ``in`` accepts."""
        return tuple(self.value) if self.op is Op.IN else (self.value,)

    def matches(self, fields: Mapping[str, Any], system: Mapping[str, Any]) -> bool:
        present = self.key in (system if self.system else fields)
        field = (system if self.system else fields).get(self.key)
        if self.op is Op.EXISTS:
            return present is bool(self.value)
        if not present or field is None:
            return False
        if self.op in (Op.EQ, Op.IN):
            return any(_equal(field, value) for value in self.values)
        return _in_range(field, self.op, self.value)


def _equal(field: Any, value: Scalar) -> bool:
    if isinstance(field, list):
        return isinstance(value, str) and value in field
    if isinstance(field, bool) or isinstance(value, bool):
        return isinstance(field, bool) and isinstance(value, bool) and field is value
    if _is_number(field) and _is_number(value):
        return bool(field == value)
    return isinstance(field, str) and isinstance(value, str) and field == value


def _in_range(field: Any, op: Op, bound: Scalar) -> bool:
    if _is_number(bound):
        if not _is_number(field):
            return False
    elif not (is_date(field) and is_date(bound)):
        return False
    if op is Op.GT:
        return bool(field > bound)
    if op is Op.GTE:
        return bool(field >= bound)
    if op is Op.LT:
        return bool(field < bound)
    return bool(field <= bound)


@dataclass(frozen=True, slots=True)
class Filter:
    """OR of AND groups (disjunctive normal form, one level). No groups: every chunk matches."""

    any_of: tuple[tuple[Condition, ...], ...] = ()

    @classmethod
    def parse(cls, raw: object, *, where: str = "filter") -> Filter:
        """The filter in ``raw`` (the JSON form), or 422 naming the field that is wrong."""
        if raw is None:
            return cls()
        if isinstance(raw, Filter):
            return raw
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{where}: must be an object of key -> condition")
        if "$or" in raw:
            if len(raw) != 1:
                raise InvalidInput(f"{where}: '$or' must be the only key at its level (AND goes inside each branch)")
            branches = raw["$or"]
            if not isinstance(branches, list) or not branches:
                raise InvalidInput(f"{where}.$or: must be a non-empty list of objects")
            if len(branches) > MAX_BRANCHES:
                raise InvalidInput(f"{where}.$or: at most {MAX_BRANCHES} branches")
            groups = tuple(_group(branch, f"{where}.$or[{i}]") for i, branch in enumerate(branches))
        else:
            group = _group(raw, where)
            groups = (group,) if group else ()
        if sum(len(group) for group in groups) > MAX_CONDITIONS:
            raise InvalidInput(f"{where}: at most {MAX_CONDITIONS} conditions")
        if any(not group for group in groups):
            return cls()  # an empty branch matches everything, so the OR does too
        return cls(groups)

    @property
    def is_empty(self) -> bool:
        return not self.any_of

    def matches(self, fields: Mapping[str, Any], *, document_id: str = "", source: str = "") -> bool:
        """Python evaluation (fakes, catalog selection); the stores evaluate the same inside the database."""
        if self.is_empty:
            return True
        system = {"document_id": document_id, "source": source}
        return any(all(c.matches(fields, system) for c in group) for group in self.any_of)

    def matches_chunk_metadata(self, metadata: Mapping[str, Any], *, document_id: str) -> bool:
        fields = metadata.get(USER_METADATA_KEY)
        source = metadata.get("source")
        return self.matches(
            fields if isinstance(fields, Mapping) else {},
            document_id=document_id,
            source=source if isinstance(source, str) else "",
        )

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (``parse(to_json())`` gives an equal filter)."""
        groups = [_group_json(group) for group in self.any_of]
        if not groups:
            return {}
        return groups[0] if len(groups) == 1 else {"$or": groups}

    def describe(self) -> str:
        """Human form for CLI output and job listings: ``product = X and rating >= 4``."""
        if self.is_empty:
            return "all documents"
        return " or ".join(" and ".join(_describe(c) for c in group) for group in self.any_of)


def _group_json(group: tuple[Condition, ...]) -> dict[str, Any]:
    by_key: dict[str, list[Condition]] = {}
    for c in group:
        by_key.setdefault(c.key, []).append(c)
    out: dict[str, Any] = {}
    for key, conditions in by_key.items():
        if len(conditions) == 1 and conditions[0].op is Op.EQ:
            out[key] = conditions[0].value
        else:
            out[key] = {c.op.value: list(c.value) if c.op is Op.IN else c.value for c in conditions}
    return out


def _describe(c: Condition) -> str:
    symbol = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}
    if c.op is Op.EXISTS:
        return f"{c.key} is set" if c.value else f"{c.key} is not set"
    if c.op is Op.IN:
        return f"{c.key} in ({', '.join(str(v) for v in c.value)})"
    if c.op is Op.EQ:
        return f"{c.key} = {c.value}"
    return f"{c.key} {symbol[c.op]} {c.value}"


def _group(raw: object, where: str) -> tuple[Condition, ...]:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: must be an object of key -> condition")
    conditions: list[Condition] = []
    for key, spec in raw.items():
        field = f"{where}.{key}"
        if isinstance(key, str) and key.startswith("$"):
            raise InvalidInput(f"{field}: unknown operator (only '$or', at the top level)")
        if key not in RESERVED_KEYS:
            validate_key(key, where=where)
        conditions.extend(_conditions(key, spec, field))
    return tuple(conditions)


def _conditions(key: str, spec: object, field: str) -> list[Condition]:
    if isinstance(spec, list):
        return [Condition(key, Op.IN, _in_values(key, spec, field))]
    if not isinstance(spec, Mapping):
        return [Condition(key, Op.EQ, _scalar(key, spec, field))]
    if not spec:
        raise InvalidInput(f"{field}: an empty condition (use eq, in, gt, gte, lt, lte or exists)")
    out: list[Condition] = []
    for name, value in spec.items():
        try:
            op = Op(name)
        except ValueError:
            raise InvalidInput(f"{field}.{name}: unknown operator (use eq, in, gt, gte, lt, lte or exists)") from None
        where = f"{field}.{name}"
        if op is Op.EQ:
            out.append(Condition(key, op, _scalar(key, value, where)))
        elif op is Op.IN:
            if not isinstance(value, list):
                raise InvalidInput(f"{where}: must be a list of values")
            out.append(Condition(key, op, _in_values(key, value, where)))
        elif op is Op.EXISTS:
            if not isinstance(value, bool):
                raise InvalidInput(f"{where}: must be true or false")
            out.append(Condition(key, op, value))
        else:
            if key in RESERVED_KEYS:
                raise InvalidInput(f"{where}: {key!r} takes equality and 'in' only")
            out.append(Condition(key, op, _bound(value, where)))
    return out


def _scalar(key: str, value: object, where: str) -> Scalar:
    if key in RESERVED_KEYS:
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"{where}: {key!r} takes a non-empty string")
        return value
    if isinstance(value, bool):
        return value
    if _is_number(value):
        number: int | float = value  # type: ignore[assignment]
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidInput(f"{where}: numbers must be finite")
        return number
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise InvalidInput(f"{where}: strings are at most {MAX_STRING_CHARS} characters")
        return as_date(value) or value
    kind = "null" if value is None else type(value).__name__
    raise InvalidInput(f"{where}: compare with a string, number, boolean or date (got {kind})")


def _in_values(key: str, values: Sequence[object], where: str) -> tuple[Scalar, ...]:
    if not values:
        raise InvalidInput(f"{where}: 'in' needs at least one value")
    if len(values) > MAX_IN_VALUES:
        raise InvalidInput(f"{where}: 'in' takes at most {MAX_IN_VALUES} values")
    return tuple(_scalar(key, value, f"{where}[{i}]") for i, value in enumerate(values))


def _bound(value: object, where: str) -> Scalar:
    if _is_number(value):
        return _scalar("", value, where)
    date = as_date(value)
    if date is None:
        raise InvalidInput(f"{where}: ranges take a number or an ISO 8601 date (got {value!r})")
    return date


_CLI = re.compile(r"^(?P<not>!)?(?P<key>[^=<>!?]+?)\s*(?:(?P<op>>=|<=|>|<|=)\s*(?P<value>.*)|(?P<exists>\?))$")


def parse_cli_filters(expressions: Iterable[str]) -> Filter:
    """``--filter`` options (AND of all): see the module docstring for the forms."""
    raw: dict[str, Any] = {}
    for text in expressions:
        match = _CLI.match(text.strip())
        if not match:
            raise InvalidInput(f"--filter {text!r}: expected key=value, key>=value, key<value, key? ...")
        key = match["key"].strip()
        if match["exists"]:
            condition: Any = {"exists": not match["not"]}
        elif match["not"]:
            raise InvalidInput(f"--filter {text!r}: '!' goes only before 'key?'")
        else:
            value = _cli_value(key, match["value"].strip())
            op = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}.get(match["op"])
            if op is not None:
                condition = {op: value}
            elif isinstance(value, list):
                condition = {"in": value}
            else:
                condition = {"eq": value}
        existing = raw.setdefault(key, {})
        for name in condition:
            if name in existing:
                raise InvalidInput(f"--filter {text!r}: {key} already has a {name!r} condition")
        existing.update(condition)
    return Filter.parse(raw, where="--filter")


def _cli_value(key: str, value: str) -> MetadataValue:
    if key in RESERVED_KEYS:
        return value
    return parse_meta_assignment(f"x={value}")[1] if value else value
