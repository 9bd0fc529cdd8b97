"""An in-process OpenSearch for the endpoints ``OpenSearchIndex`` uses, answering at opensearch-py's connection.

No OpenSearch server exists offline, and recorded exchanges (``recordings/opensearch``) only replay
the calls they hold. To run the whole ``VectorIndexContract`` on the adapter, this emulator *computes*
the answers from the documents it was sent, in the response shapes of those recordings:

- ``PUT /{index}`` (the ``knn_vector`` mapping: dimension, space type), ``DELETE /{index}``,
  ``GET /{index}/_mapping`` (with the fields mapped dynamically since), ``PUT /{index}/_mapping`` (new fields
  added, ``date_detection`` and ``dynamic_templates`` replaced, a field of another type or ``enabled`` refused),
  ``POST /{index}/_refresh``;
- ``POST /_bulk`` (``index`` with or without ``_id``, ``delete``), every document checked against the
  mapping: vector length, zero vectors under ``cosinesimil``, field types fixed by their first value
  (dynamic mapping: the index's ``dynamic_templates`` by ``path_match`` and ``match_mapping_type``, date
  detection unless ``date_detection`` is false, OpenSearch's defaults otherwise; objects with
  ``enabled: false`` are kept in ``_source`` and not indexed);
- ``POST /{index}/_search``: ``knn`` (exact nearest neighbours under the index's space type, the score
  translation of the k-NN plugin, ``filter`` applied before the top k), ``bool`` (``must``, ``filter``,
  ``should`` + ``minimum_should_match``, ``must_not``) with ``multi_match`` ``best_fields`` (Lucene's BM25:
  per-field statistics, k1 1.2, b 0.75, no ``(k1 + 1)`` factor), ``term``, ``terms`` and ``range`` (numbers
  by value, keywords by term order), ``match_all``, ``sort`` + ``search_after``, ``_source`` excludes;
- ``POST /{index}/_count``, ``POST /{index}/_delete_by_query`` (``conflicts=proceed``) and
  ``POST /{index}/_update_by_query`` with a painless script of ``ctx._source.<path> = params.<name>``
  assignments.

Near-real-time search is kept: writes become visible to search, count and delete-by-query at a refresh
(the ``refresh`` parameter, or ``_refresh``). A Serverless collection (``serverless=True``) refreshes on
its own schedule, which the emulator takes as "before every read"; it refuses custom ``_id``\\ s and
``_delete_by_query`` as Serverless vector collections do.

Not modelled, and why it does not matter here: HNSW's approximation (exact search is what a filtered or
small Lucene k-NN search does anyway), stemming in the ``english`` analyzer (the contract's corpora
use uninflected words), Lucene's one-byte length norms and float32 arithmetic (so BM25 scores are
close to, not bit-equal with, a real cluster's), shards. Anything the adapter sends that the emulator
does not understand is answered with an error, never guessed at.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import Connection

__all__ = ["EmulatorConnection", "OpenSearchEmulator", "analyze", "decode_body"]

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET
ENGLISH_STOP_WORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there these
    they this to was will with""".split()  # noqa: SIM905 - the list as Lucene ships it
)
_APOSTROPHES = "'\u2019"
_TOKEN = re.compile(rf"[^\W_]+(?:[{_APOSTROPHES}][^\W_]+)*")
BM25_K1, BM25_B = 1.2, 0.75  # OpenSearch's defaults
TEXT_FIELDS = ("text", "title")


def analyze(text: str) -> list[str]:
    """The ``english`` analyzer without its Porter stemmer: standard tokens, possessives, lower case, stop words."""
    tokens = (re.sub(rf"[{_APOSTROPHES}]s$", "", token.lower()) for token in _TOKEN.findall(text))
    return [token for token in tokens if token and token not in ENGLISH_STOP_WORDS]


class OpenSearchError(Exception):
    def __init__(self, status: int, kind: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason, self.extra = status, kind, reason, extra

    def body(self) -> dict[str, Any]:
        cause = {"type": self.kind, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


def _missing_index(name: str) -> OpenSearchError:
    return OpenSearchError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        index=name,
        **{"resource.id": name, "resource.type": "index_or_alias", "index_uuid": "_na_"},
    )


def _parsing(reason: str) -> OpenSearchError:
    return OpenSearchError(400, "parsing_exception", reason)


# --------------------------------------------------------------------------- mapping


_SCALAR_TYPES = {"keyword", "text", "long", "integer", "float", "double", "boolean", "date"}
_NUMERIC_TYPES = {"long", "integer", "float", "double"}
# What date detection recognises (``strict_date_optional_time``, roughly).
_DETECTED_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
_DEFAULT_TYPES = {"boolean": "boolean", "long": "long", "double": "float", "string": "text", "date": "date"}
_DISABLED = "disabled"  # an object mapped with enabled: false


def _json_type(value: Any) -> str:
    """The ``match_mapping_type`` of a JSON value (before date detection)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    raise TypeError(type(value).__name__)


def _coerce(kind: str, value: Any) -> Any:
    """A value as the field of type ``kind`` indexes it (OpenSearch coerces numbers and strings); ValueError if not."""
    if kind in ("keyword", "text"):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
    elif kind in _NUMERIC_TYPES:
        return _coerce_number(kind, value)
    elif kind == "date":
        if isinstance(value, str) and _DETECTED_DATE.fullmatch(value):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    raise ValueError(f"cannot be indexed as [{kind}]")


def _coerce_number(kind: str, value: Any) -> int | float:
    """Numbers and numeric strings, truncated for the integer types; ValueError for anything else."""
    if isinstance(value, bool) or not (isinstance(value, int | float) or (isinstance(value, str) and value.strip())):
        raise ValueError(f"cannot be indexed as [{kind}]")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"cannot be indexed as [{kind}]")
    return int(number) if kind in ("long", "integer") else number


@dataclass
class _Doc:
    version: int
    source: dict[str, Any]
    seq_no: int


@dataclass
class _Index:
    name: str
    body: dict[str, Any]
    dimension: int
    space_type: str
    fields: dict[str, str] = field(default_factory=dict)  # dotted path -> type, declared and dynamic
    dynamic: dict[str, dict[str, Any]] = field(default_factory=dict)  # dotted path -> its dynamic mapping
    live: dict[str, _Doc] = field(default_factory=dict)
    visible: dict[str, _Doc] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, body: Mapping[str, Any]) -> _Index:
        settings = body.get("settings", {}).get("index", {})
        properties = body.get("mappings", {}).get("properties", {})
        vector = properties.get("embedding", {})
        if settings.get("knn") is not True or vector.get("type") != "knn_vector":
            raise OpenSearchError(400, "emulator_limitation", "the emulator only holds k-NN indices with 'embedding'")
        dimension = int(vector["dimension"])
        space_type = str(vector.get("method", {}).get("space_type", "l2"))
        if space_type not in ("cosinesimil", "innerproduct", "l2"):
            raise OpenSearchError(400, "illegal_argument_exception", f"unsupported space type [{space_type}]")
        index = cls(name=name, body=copy.deepcopy(dict(body)), dimension=dimension, space_type=space_type)
        index.fields.update(_declared(properties))
        return index

    def put_mapping(self, body: Mapping[str, Any]) -> None:
        """New fields are added; a field already mapped with another type is refused, and nothing changes."""
        unknown = sorted(set(body) - {"date_detection", "dynamic_templates", "properties"})
        if unknown:
            raise OpenSearchError(400, "emulator_limitation", f"the emulator does not update {unknown}")
        declared = _declared(body.get("properties", {}))
        for path, kind in declared.items():
            known = self.fields.get(path, kind)
            if known != kind and _DISABLED in (known, kind):  # a MapperException: 500, not 400
                raise OpenSearchError(
                    500, "mapper_exception", f"the [enabled] parameter can't be updated for the object mapping [{path}]"
                )
            if known != kind:
                raise OpenSearchError(
                    400,
                    "illegal_argument_exception",
                    f"mapper [{path}] cannot be changed from type [{known}] to [{kind}]",
                )
        mappings = self.body.setdefault("mappings", {})
        for name in ("date_detection", "dynamic_templates"):  # replaced, not merged, as on a mapping update
            if name in body:
                mappings[name] = copy.deepcopy(body[name])
        _merge_properties(mappings.setdefault("properties", {}), body.get("properties", {}))
        self.fields.update(declared)

    def _disabled(self, path: str) -> bool:
        parts = path.split(".")
        return any(self.fields.get(".".join(parts[:n])) == _DISABLED for n in range(1, len(parts) + 1))

    def _dynamic_mapping_of(self, path: str, value: Any) -> dict[str, Any]:
        """The mapping OpenSearch gives a new field: the first dynamic template that matches, else the default."""
        mappings = self.body.get("mappings", {})
        detected = _json_type(value)
        if detected == "string" and mappings.get("date_detection", True) and _DETECTED_DATE.fullmatch(value):
            detected = "date"
        for template in mappings.get("dynamic_templates", []):
            ((_, rule),) = template.items()
            if "path_match" in rule and not fnmatch.fnmatchcase(path, rule["path_match"]):
                continue
            if rule.get("match_mapping_type", "*") not in ("*", detected):
                continue
            if detected != "object" or rule["mapping"].get("type", "object") == "object":
                return dict(rule["mapping"])
        if detected == "string":  # text, with a keyword sub-field (not searched by the emulator)
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        return {"type": "object" if detected == "object" else _DEFAULT_TYPES[detected]}

    # -------------------------------------------------------------- documents in
    def check(self, source: Mapping[str, Any]) -> dict[str, str]:
        """The fields a document would add to the mapping; ``mapper_parsing_exception`` if it does not fit."""
        added: dict[str, str] = {}
        for path, value in _leaves(source):
            if path == "embedding":
                self._check_vector(value)
                continue
            if self._disabled(path):
                continue
            known = self.fields.get(path) or added.get(path)
            is_object = isinstance(value, Mapping)
            try:
                if known is None:
                    mapping = self._dynamic_mapping_of(path, value)
                    added[path] = str(mapping.get("type", "object"))
                    self.dynamic[path] = mapping
                    if not is_object:
                        _coerce(added[path], value)
                elif (known == "object") != is_object:
                    raise ValueError(
                        f"[{path}] is mapped as [{known}], not as {'an object' if is_object else 'a value'}"
                    )
                elif not is_object:
                    _coerce(known, value)
            except (ValueError, TypeError) as exc:
                raise OpenSearchError(
                    400, "mapper_parsing_exception", f"failed to parse field [{path}] of type [{known}]: {exc}"
                ) from exc
        return added

    def _check_vector(self, value: Any) -> None:
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise OpenSearchError(400, "mapper_parsing_exception", "[embedding] must be an array of numbers")
        if len(value) != self.dimension:
            raise OpenSearchError(
                400,
                "mapper_parsing_exception",
                f"Vector dimension mismatch. Expected: {self.dimension}, Given: {len(value)}",
            )
        if not all(math.isfinite(v) for v in value):
            raise OpenSearchError(400, "mapper_parsing_exception", "KNN vector values cannot be NaN or Infinity")
        if self.space_type == "cosinesimil" and not any(value):
            raise OpenSearchError(
                400, "mapper_parsing_exception", "zero vector is not supported when space type is [cosinesimil]"
            )

    def mapping(self) -> dict[str, Any]:
        """What ``GET _mapping`` shows: the declared mapping plus every field mapped dynamically since."""
        mappings = copy.deepcopy(self.body.get("mappings", {}))
        properties = mappings.setdefault("properties", {})
        for spec in properties.values():
            if isinstance(spec.get("dynamic"), bool):
                spec["dynamic"] = str(spec["dynamic"]).lower()  # OpenSearch answers it as a string
        for path, kind in sorted(self.fields.items()):
            node = properties
            *parents, leaf = path.split(".")
            for parent in parents:
                node = node.setdefault(parent, {"type": "object"}).setdefault("properties", {})
            if kind == "object":
                node.setdefault(leaf, {"type": "object"})
            elif kind != _DISABLED:
                node.setdefault(leaf, dict(self.dynamic.get(path, {"type": kind})))
        _show_objects(properties)
        return mappings


def _declared(properties: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted path -> type of every field a mapping declares (``_DISABLED`` for ``enabled: false``)."""
    fields: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if spec.get("enabled") is False:
            fields[path] = _DISABLED
            continue
        fields[path] = str(spec.get("type", "object"))
        fields.update(_declared(spec.get("properties", {}), f"{path}."))
    return fields


def _merge_properties(properties: dict[str, Any], added: Mapping[str, Any]) -> None:
    for name, spec in added.items():
        current = properties.setdefault(name, {})
        for key, value in spec.items():
            if key == "properties":
                _merge_properties(current.setdefault("properties", {}), value)
            else:
                current[key] = copy.deepcopy(value)


def _show_objects(properties: dict[str, Any]) -> None:
    """An object with fields is shown by its properties, without ``"type": "object"``."""
    for spec in properties.values():
        if "properties" in spec:
            if spec.get("type") == "object":
                spec.pop("type")
            _show_objects(spec["properties"])


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every indexed leaf; a list indexes each element; nulls index nothing."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if path == "embedding":
                yield path, child
            elif isinstance(child, Mapping):
                yield path, {}  # the object itself, then its leaves
                yield from _leaves(child, path)
            else:
                yield from _leaves(child, path)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, prefix)
    elif value is not None:
        yield prefix, value


def _values(source: Mapping[str, Any], path: str) -> list[Any]:
    """The values of a dotted field in a document (flattening lists)."""
    nodes: list[Any] = [source]
    for part in path.split("."):
        found: list[Any] = []
        for node in nodes:
            if isinstance(node, Mapping) and part in node:
                child = node[part]
                found.extend(child if isinstance(child, list) else [child])
        nodes = found
    return [node for node in nodes if node is not None and not isinstance(node, Mapping)]


# --------------------------------------------------------------------------- queries


class _Searcher:
    """Queries over one refreshed view of an index."""

    def __init__(self, index: _Index) -> None:
        self.index = index
        self.docs = index.visible
        self._stats: dict[str, tuple[int, float, Counter[str]]] = {}
        self._tokens: dict[tuple[str, str], list[str]] = {}

    # -------------------------------------------------------------- filter context
    def matches(self, doc_id: str, query: Mapping[str, Any]) -> bool:
        if not isinstance(query, Mapping) or len(query) != 1:
            raise _parsing(f"a query is an object with one key, not {query!r}")
        ((kind, spec),) = query.items()
        source = self.docs[doc_id].source
        if kind == "match_all":
            return True
        if kind == "term":
            ((path, wanted),) = spec.items()
            wanted = wanted.get("value") if isinstance(wanted, Mapping) else wanted
            return self._has(source, path, [wanted])
        if kind == "terms":
            ((path, wanted),) = spec.items()
            if not isinstance(wanted, list):
                raise _parsing("[terms] query needs an array of values")
            return self._has(source, path, wanted)
        if kind == "range":
            ((path, bounds),) = spec.items()
            return self._in_range(source, path, bounds)
        if kind == "bool":
            return self._bool_matches(doc_id, spec)
        if kind == "multi_match":
            return self._multi_match(doc_id, spec) is not None
        raise _parsing(f"unknown query [{kind}]")

    def _bool_matches(self, doc_id: str, spec: Mapping[str, Any]) -> bool:
        unknown = set(spec) - {"must", "filter", "must_not", "should", "minimum_should_match"}
        if unknown:
            raise _parsing(f"[bool] query does not support {sorted(unknown)}")
        must = _clauses(spec.get("must")) + _clauses(spec.get("filter"))
        if not all(self.matches(doc_id, clause) for clause in must):
            return False
        if any(self.matches(doc_id, clause) for clause in _clauses(spec.get("must_not"))):
            return False
        should = _clauses(spec.get("should"))
        needed = spec.get("minimum_should_match", 0 if must else 1)
        return not should or sum(self.matches(doc_id, clause) for clause in should) >= int(needed)

    def _has(self, source: Mapping[str, Any], path: str, wanted: Iterable[Any]) -> bool:
        kind = self.index.fields.get(path)
        if kind is None or kind not in _SCALAR_TYPES:
            return False  # an unmapped field matches nothing
        accepted = set()
        for value in wanted:
            try:
                accepted.add(_coerce(kind, value))
            except ValueError as exc:
                raise OpenSearchError(400, "query_shard_exception", f"[{path}] of type [{kind}]: {exc}") from exc
        return any(_coerce(kind, value) in accepted for value in _values(source, path))

    def _in_range(self, source: Mapping[str, Any], path: str, bounds: Mapping[str, Any]) -> bool:
        unknown = set(bounds) - {"gt", "gte", "lt", "lte"}
        if unknown:
            raise _parsing(f"[range] query does not support {sorted(unknown)}")
        kind = self.index.fields.get(path)
        if kind is None or kind not in _SCALAR_TYPES:
            return False
        if kind not in _NUMERIC_TYPES and kind not in ("keyword", "date"):
            raise OpenSearchError(
                400, "emulator_limitation", f"the emulator ranges over numbers and keywords, not [{kind}]"
            )
        try:
            limits = {
                op: _coerce(kind, bound) if kind in _NUMERIC_TYPES else str(bound) for op, bound in bounds.items()
            }
        except ValueError as exc:
            raise OpenSearchError(400, "query_shard_exception", f"[{path}] of type [{kind}]: {exc}") from exc
        tests = {
            "gt": lambda v, b: v > b,
            "gte": lambda v, b: v >= b,
            "lt": lambda v, b: v < b,
            "lte": lambda v, b: v <= b,
        }
        return any(
            all(tests[op](_coerce(kind, value), bound) for op, bound in limits.items())
            for value in _values(source, path)
        )

    # -------------------------------------------------------------- scoring
    def score(self, doc_id: str, query: Mapping[str, Any]) -> float | None:
        """The document's score for a query (None: no match); filter-only clauses score nothing."""
        ((kind, spec),) = query.items()
        if kind == "multi_match":
            return self._multi_match(doc_id, spec)
        if kind == "bool":
            if not self._bool_matches(doc_id, spec):
                return None
            scored = _clauses(spec.get("must")) + _clauses(spec.get("should"))
            return sum(self.score(doc_id, clause) or 0.0 for clause in scored)
        return 0.0 if self.matches(doc_id, query) else None

    def _multi_match(self, doc_id: str, spec: Mapping[str, Any]) -> float | None:
        unknown = set(spec) - {"query", "fields", "type", "tie_breaker"}
        if unknown or spec.get("type", "best_fields") != "best_fields":
            raise _parsing(f"the emulator's [multi_match] is best_fields only, without {sorted(unknown)}")
        fields = [str(name) for name in spec["fields"]]
        if any(name not in TEXT_FIELDS for name in fields):
            raise _parsing(f"the emulator analyses only {TEXT_FIELDS}, not {fields}")
        terms = analyze(str(spec["query"]))
        scores = [self._bm25(doc_id, name, terms) for name in fields]
        matched = [score for score in scores if score is not None]
        if not matched:
            return None
        best = max(matched)
        return best + float(spec.get("tie_breaker", 0.0)) * (sum(matched) - best)

    def _field_tokens(self, doc_id: str, name: str) -> list[str]:
        key = (doc_id, name)
        if key not in self._tokens:
            self._tokens[key] = [t for value in _values(self.docs[doc_id].source, name) for t in analyze(str(value))]
        return self._tokens[key]

    def _field_stats(self, name: str) -> tuple[int, float, Counter[str]]:
        """Lucene's collection statistics of a field: docCount, average length, document frequencies."""
        if name not in self._stats:
            lengths, frequencies = [], Counter[str]()
            for doc_id in self.docs:
                tokens = self._field_tokens(doc_id, name)
                if tokens:
                    lengths.append(len(tokens))
                    frequencies.update(set(tokens))
            count = len(lengths)
            self._stats[name] = (count, sum(lengths) / count if count else 0.0, frequencies)
        return self._stats[name]

    def _bm25(self, doc_id: str, name: str, terms: list[str]) -> float | None:
        tokens = self._field_tokens(doc_id, name)
        counts = Counter(tokens)
        if not any(term in counts for term in terms):
            return None
        doc_count, avgdl, frequencies = self._field_stats(name)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(tokens) / avgdl)
        total = 0.0
        for term in terms:  # a repeated query term is a repeated clause
            tf = counts[term]
            if tf:
                df = frequencies[term]
                idf = math.log(1 + (doc_count - df + 0.5) / (df + 0.5))
                total += idf * tf / (tf + norm)
        return total

    def knn(self, spec: Mapping[str, Any]) -> list[tuple[str, float]]:
        ((path, params),) = spec.items()
        unknown = set(params) - {"vector", "k", "filter"}
        if path != "embedding" or unknown:
            raise _parsing(f"[knn] on [{path}] with {sorted(unknown)} is not what the adapter sends")
        vector = [float(v) for v in params["vector"]]
        if len(vector) != self.index.dimension:
            raise OpenSearchError(
                400,
                "search_phase_execution_exception",
                f"Query vector has invalid dimension: {len(vector)}. Dimension should be: {self.index.dimension}",
            )
        candidates = [d for d in self.docs if "filter" not in params or self.matches(d, params["filter"])]
        scored = [(d, self._similarity(vector, self.docs[d].source["embedding"])) for d in candidates]
        scored.sort(key=lambda pair: -pair[1])  # stable: ties keep index order, as Lucene's doc ids do
        return scored[: int(params["k"])]

    def _similarity(self, query: list[float], stored: list[float]) -> float:
        """The k-NN plugin's score for each space type."""
        dot = sum(a * b for a, b in zip(query, stored, strict=True))
        if self.index.space_type == "cosinesimil":
            cosine = dot / (math.hypot(*query) * math.hypot(*stored))
            return (1.0 + cosine) / 2.0
        if self.index.space_type == "innerproduct":
            return dot + 1.0 if dot >= 0 else 1.0 / (1.0 - dot)
        squared = sum((a - b) ** 2 for a, b in zip(query, stored, strict=True))
        return 1.0 / (1.0 + squared)


def _clauses(value: Any) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- the cluster


class OpenSearchEmulator:
    """One OpenSearch domain (or Serverless collection) in memory."""

    def __init__(self, *, serverless: bool = False) -> None:
        self.serverless = serverless
        self.indices: dict[str, _Index] = {}
        self.exchanges: list[dict[str, Any]] = []  # as recordings/opensearch/*.json write them
        self._seq = itertools.count()

    def handle(self, method: str, path: str, params: Mapping[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        request: dict[str, Any] = {"method": method, "path": path}
        if params:
            request["params"] = dict(params)
        if body is not None:
            request["body"] = copy.deepcopy(body)
        try:
            status, answer = 200, self._route(method, path.strip("/").split("/"), dict(params), body)
        except OpenSearchError as exc:
            status, answer = exc.status, exc.body()
        self.exchanges.append({"request": request, "response": {"status": status, "body": copy.deepcopy(answer)}})
        return status, answer

    def _route(self, method: str, parts: list[str], params: dict[str, Any], body: Any) -> dict[str, Any]:
        if parts == ["_bulk"] and method in ("POST", "PUT"):
            return self._bulk(body, params)
        if len(parts) == 1 and method == "PUT":
            return self._create(parts[0], body)
        if len(parts) == 1 and method == "DELETE":
            self._index(parts[0])
            del self.indices[parts[0]]
            return {"acknowledged": True}
        if len(parts) == 2:
            index, action = parts
            if action == "_mapping" and method == "GET":
                return {index: {"mappings": self._index(index).mapping()}}
            if action == "_mapping" and method == "PUT":
                self._index(index).put_mapping(body or {})
                return {"acknowledged": True}
            if action == "_refresh" and method == "POST":
                self._refresh(self._index(index))
                return {"_shards": _shards()}
            if action == "_search" and method in ("GET", "POST"):
                return self._search(self._readable(index), body or {})
            if action == "_count" and method in ("GET", "POST"):
                searcher = _Searcher(self._readable(index))
                query = (body or {}).get("query", {"match_all": {}})
                count = sum(searcher.matches(d, query) for d in searcher.docs)
                return {"count": count, "_shards": _shards(searched=True)}
            if action == "_delete_by_query" and method == "POST":
                return self._delete_by_query(index, body or {}, params)
            if action == "_update_by_query" and method == "POST":
                return self._update_by_query(index, body or {}, params)
        raise OpenSearchError(400, "emulator_limitation", f"no handler for [{method}] /{'/'.join(parts)}")

    def _index(self, name: str) -> _Index:
        if name not in self.indices:
            raise _missing_index(name)
        return self.indices[name]

    def _readable(self, name: str) -> _Index:
        index = self._index(name)
        if self.serverless:  # its refresh interval has passed by the time anyone reads
            self._refresh(index)
        return index

    @staticmethod
    def _refresh(index: _Index) -> None:
        index.visible = dict(index.live)

    def _after_write(self, index: _Index, params: Mapping[str, Any]) -> None:
        if str(params.get("refresh", "false")).lower() in ("true", "wait_for", ""):
            self._refresh(index)

    # -------------------------------------------------------------- indices
    def _create(self, name: str, body: Any) -> dict[str, Any]:
        if name in self.indices:
            raise OpenSearchError(
                400, "resource_already_exists_exception", f"index [{name}/{uuid.uuid4().hex[:22]}] already exists"
            )
        if self.serverless and set(body.get("settings", {}).get("index", {})) - {"knn"}:
            raise OpenSearchError(400, "illegal_argument_exception", "Serverless manages index settings itself")
        self.indices[name] = _Index.create(name, body)
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    # -------------------------------------------------------------- writes
    def _bulk(self, lines: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(lines, list):
            raise _parsing("the bulk body is newline-delimited JSON")
        items: list[dict[str, Any]] = []
        touched: set[str] = set()
        position = 0
        while position < len(lines):
            ((action, meta),) = lines[position].items()
            position += 1
            if action in ("index", "create"):
                source = lines[position]
                position += 1
                items.append({action: self._index_one(meta, source)})
            elif action == "delete":
                items.append({action: self._delete_one(meta)})
            else:
                raise OpenSearchError(400, "illegal_argument_exception", f"Malformed action/metadata line [{action}]")
            touched.add(str(meta.get("_index")))
        for name in touched & set(self.indices):
            self._after_write(self.indices[name], params)
        return {"took": 1, "errors": any("error" in item[op] for item in items for op in item), "items": items}

    def _index_one(self, meta: Mapping[str, Any], source: dict[str, Any]) -> dict[str, Any]:
        name = str(meta.get("_index"))
        doc_id = meta.get("_id")
        try:
            if name not in self.indices:
                raise OpenSearchError(400, "emulator_limitation", f"[{name}] does not exist; no auto-creation here")
            index = self.indices[name]
            if doc_id is not None and self.serverless:
                raise OpenSearchError(
                    400, "illegal_argument_exception", "Document ID is not supported in create/index operation request"
                )
            index.fields.update(index.check(source))
        except OpenSearchError as exc:
            error = {"type": exc.kind, "reason": exc.reason}
            return {"_index": name, "_id": doc_id, "status": exc.status, "error": error}
        doc_id = str(doc_id) if doc_id is not None else uuid.uuid4().hex[:20]
        previous = index.live.get(doc_id)
        version = previous.version + 1 if previous else 1
        index.live[doc_id] = _Doc(version=version, source=copy.deepcopy(source), seq_no=next(self._seq))
        return {
            "_index": name,
            "_id": doc_id,
            "_version": version,
            "result": "updated" if previous else "created",
            "_shards": _shards(),
            "_seq_no": index.live[doc_id].seq_no,
            "_primary_term": 1,
            "status": 200 if previous else 201,
        }

    def _delete_one(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        name, doc_id = str(meta.get("_index")), str(meta.get("_id"))
        index = self.indices.get(name)
        if index is None:
            error = _missing_index(name)
            return {"_index": name, "_id": doc_id, "status": 404, "error": {"type": error.kind, "reason": error.reason}}
        found = index.live.pop(doc_id, None)
        return {
            "_index": name,
            "_id": doc_id,
            "_version": (found.version + 1) if found else 1,
            "result": "deleted" if found else "not_found",
            "_shards": _shards(),
            "_seq_no": next(self._seq),
            "_primary_term": 1,
            "status": 200 if found else 404,
        }

    def _delete_by_query(self, name: str, body: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        if self.serverless:
            raise OpenSearchError(
                400, "illegal_argument_exception", "_delete_by_query is not supported by vector search collections"
            )
        index = self._index(name)
        searcher = _Searcher(index)
        query = body.get("query", {"match_all": {}})
        matched = [doc_id for doc_id in searcher.docs if searcher.matches(doc_id, query)]
        deleted = conflicts = 0
        for doc_id in matched:
            current = index.live.get(doc_id)
            if current is not None and current.version == searcher.docs[doc_id].version:
                del index.live[doc_id]
                deleted += 1
            else:  # changed (or gone) since the refresh the query ran on
                conflicts += 1
        if conflicts and params.get("conflicts") != "proceed":
            raise OpenSearchError(409, "version_conflict_engine_exception", f"{conflicts} version conflicts")
        self._after_write(index, {"refresh": params.get("refresh", "false")})
        return {
            "took": 1,
            "timed_out": False,
            "total": len(matched),
            "deleted": deleted,
            "batches": 1,
            "version_conflicts": conflicts,
            "noops": 0,
            "retries": {"bulk": 0, "search": 0},
            "throttled_millis": 0,
            "requests_per_second": -1.0,
            "throttled_until_millis": 0,
            "failures": [],
        }

    def _update_by_query(self, name: str, body: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        if self.serverless:
            raise OpenSearchError(
                400, "illegal_argument_exception", "_update_by_query is not supported by vector search collections"
            )
        index = self._index(name)
        assignments = _painless_assignments(body.get("script"))
        searcher = _Searcher(index)
        matched = [doc_id for doc_id in searcher.docs if searcher.matches(doc_id, body.get("query", {"match_all": {}}))]
        updated = conflicts = 0
        failures: list[dict[str, Any]] = []
        for doc_id in matched:
            current = index.live.get(doc_id)
            if current is None or current.version != searcher.docs[doc_id].version:
                conflicts += 1  # changed (or gone) since the refresh the query ran on
                continue
            source = copy.deepcopy(current.source)
            for path, value in assignments:
                *parents, leaf = path
                node = source
                for part in parents:
                    node = node[part]  # painless would throw a null pointer exception on a missing parent
                node[leaf] = copy.deepcopy(value)
            try:
                index.fields.update(index.check(source))
            except OpenSearchError as exc:
                failures.append({"index": name, "id": doc_id, "cause": {"type": exc.kind, "reason": exc.reason}})
                continue
            index.live[doc_id] = _Doc(version=current.version + 1, source=source, seq_no=next(self._seq))
            updated += 1
        if conflicts and params.get("conflicts") != "proceed":
            raise OpenSearchError(409, "version_conflict_engine_exception", f"{conflicts} version conflicts")
        self._after_write(index, {"refresh": params.get("refresh", "false")})
        return {
            "took": 1,
            "timed_out": False,
            "total": len(matched),
            "updated": updated,
            "deleted": 0,
            "batches": 1,
            "version_conflicts": conflicts,
            "noops": 0,
            "retries": {"bulk": 0, "search": 0},
            "throttled_millis": 0,
            "requests_per_second": -1.0,
            "throttled_until_millis": 0,
            "failures": failures,
        }

    # -------------------------------------------------------------- search
    def _search(self, index: _Index, body: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"size", "_source", "query", "sort", "search_after"}
        if unknown:
            raise _parsing(f"the emulator's search does not take {sorted(unknown)}")
        searcher = _Searcher(index)
        query = body.get("query", {"match_all": {}})
        size = int(body.get("size", 10))
        sort = _sort_keys(body.get("sort"))
        if "knn" in query:
            ranked: list[tuple[str, float | None]] = list(searcher.knn(query["knn"]))
        else:
            scores = {doc_id: searcher.score(doc_id, query) for doc_id in searcher.docs}
            ranked = [(doc_id, score) for doc_id, score in scores.items() if score is not None]
            ranked.sort(key=lambda pair: -(pair[1] or 0.0))  # stable: ties keep index order
        if sort:
            ranked = [(doc_id, None) for doc_id, _ in ranked]
            ranked.sort(key=lambda pair: _sort_values(searcher.docs[pair[0]].source, sort))
            after = body.get("search_after")
            if after:
                ranked = [p for p in ranked if _sort_values(searcher.docs[p[0]].source, sort) > list(after)]
        hits = [self._hit(index, searcher.docs[doc_id], doc_id, score, body, sort) for doc_id, score in ranked[:size]]
        scored = [score for _, score in ranked if score is not None]
        return {
            "took": 1,
            "timed_out": False,
            "_shards": _shards(searched=True),
            "hits": {
                "total": {"value": len(ranked), "relation": "eq"},
                "max_score": max(scored) if scored else None,
                "hits": hits,
            },
        }

    @staticmethod
    def _hit(
        index: _Index, doc: _Doc, doc_id: str, score: float | None, body: Mapping[str, Any], sort: list[str]
    ) -> dict[str, Any]:
        hit: dict[str, Any] = {"_index": index.name, "_id": doc_id, "_score": score}
        selection = body.get("_source", True)
        if selection is not False:
            excludes: Collection[str] = selection.get("excludes", []) if isinstance(selection, Mapping) else []
            hit["_source"] = {k: copy.deepcopy(v) for k, v in doc.source.items() if k not in excludes}
        if sort:
            hit["sort"] = _sort_values(doc.source, sort)
        return hit


_ASSIGNMENT = re.compile(r"ctx\._source((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*=\s*params\.([A-Za-z_][A-Za-z0-9_]*)")


def _painless_assignments(script: Any) -> list[tuple[list[str], Any]]:
    """The ``ctx._source.<path> = params.<name>`` statements of a painless script, with their values."""
    if not isinstance(script, Mapping) or script.get("lang", "painless") != "painless":
        raise _parsing("[script] must be a painless script object")
    parameters = script.get("params", {})
    statements = [part.strip() for part in str(script.get("source", "")).split(";") if part.strip()]
    assignments: list[tuple[list[str], Any]] = []
    for statement in statements:
        match = _ASSIGNMENT.fullmatch(statement)
        if match is None:
            raise OpenSearchError(400, "emulator_limitation", f"the emulator runs no painless like [{statement}]")
        if match[2] not in parameters:
            raise OpenSearchError(400, "script_exception", f"params.{match[2]} is not defined")
        assignments.append((match[1].strip(".").split("."), parameters[match[2]]))
    return assignments


def _sort_keys(sort: Any) -> list[str]:
    keys: list[str] = []
    for entry in sort or []:
        ((name, order),) = entry.items()
        order = order.get("order", "asc") if isinstance(order, Mapping) else order
        if order != "asc":
            raise _parsing("the emulator sorts ascending only")
        keys.append(str(name))
    return keys


def _sort_values(source: Mapping[str, Any], keys: list[str]) -> list[Any]:
    values = []
    for key in keys:
        found = _values(source, key)
        if len(found) != 1:
            raise OpenSearchError(400, "emulator_limitation", f"sorting on [{key}] needs one value per document")
        values.append(found[0])
    return values


def _shards(*, searched: bool = False) -> dict[str, int]:
    """The ``_shards`` block: a write's, or a read's (which also counts skipped shards)."""
    return {"total": 2, "successful": 2, "failed": 0, **({"skipped": 0} if searched else {})}


# --------------------------------------------------------------------------- the client side


def decode_body(body: Any) -> Any:
    """A request body as JSON: one document, or the list of NDJSON lines of a bulk request."""
    if body is None:
        return None
    text = body.decode() if isinstance(body, bytes) else str(body)
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > 1 or text.endswith("\n"):
        return [json.loads(line) for line in lines]
    return json.loads(text)


class EmulatorConnection(Connection):
    """An opensearch-py connection that hands every request to an ``OpenSearchEmulator``."""

    def __init__(self, *args: Any, emulator: OpenSearchEmulator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.emulator = emulator

    def perform_request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        ignore: Collection[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        path = url.split("?", 1)[0]
        sent = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (params or {}).items()}
        status, answer = self.emulator.handle(method, path, sent, decode_body(body))
        data = json.dumps(answer)
        if not 200 <= status < 300 and status not in ignore:
            self._raise_error(status, data, "application/json")
        return status, {"content-type": "application/json"}, data
