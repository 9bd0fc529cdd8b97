"""Pure request bodies and response parsing for the OpenSearch vector index.

Nothing here does I/O, so the exact JSON the adapter sends can be tested on its own
(``tests/aws/test_opensearch.py`` compares it with recorded exchanges).

Index layout, one index per workspace::

    workspace_id, document_id, chunk_id  keyword
    ordinal, start, end                  integer
    generation                           keyword   (which replace_document run wrote the chunk)
    title, text                          text, english analyzer (BM25)
    metadata.*                           object; strings mapped as keyword (``metadata.source`` filters)
    metadata.fields                      user metadata, kept in _source, not indexed (``enabled: false``)
    filterable.keys                      keyword: the user metadata keys the chunk has (``exists``)
    filterable.keyword.<key>             keyword: a string value, or each item of a list of strings
    filterable.number.<key>              double
    filterable.boolean.<key>             boolean
    filterable.date.<key>                keyword: a normalised date or date-time (``quarry.filters.is_date``)
    embedding                            knn_vector, HNSW

Why ``filterable`` and not ``metadata.fields`` itself: OpenSearch fixes a field's type with its first value,
so a key holding a number in one document and a string in another (which user metadata may) would make
the second document fail to index, and a keyword field would match the string ``"5"`` for the number 5.
Each type has its own field instead, which gives exactly the semantics of ``quarry.filters``: a number
bound ranges over ``number.<key>`` only, a date bound over ``date.<key>`` only (normalised dates compare
as text in time order; keyword ranges compare terms byte-wise, i.e. by code point, as Python does).
``date_detection`` is off so no string is ever mapped as an OpenSearch ``date``. An index made before
``filterable`` existed has none of this; ``filter_mapping`` is what the adapter adds to it before writing.

Scores of ``dense`` are turned back into cosine similarity whatever the space type, so the
domain's relevance threshold means the same thing on every VectorIndex.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from quarry import errors
from quarry.filters import RANGE_OPS, Condition, Filter, Op, is_date
from quarry.metadata import USER_METADATA_KEY
from quarry.models import Chunk
from quarry.ports import ScoredChunk

__all__ = [
    "IndexLayout",
    "bulk_delete_actions",
    "bulk_index_actions",
    "check_chunks",
    "check_k",
    "check_vector",
    "chunk_source",
    "cosine_from_score",
    "count_query",
    "dense_query",
    "document_query",
    "filter_clauses",
    "filter_mapping",
    "filterable_source",
    "has_filter_mapping",
    "hit_ids",
    "id_page_query",
    "index_body",
    "index_name",
    "keyword_query",
    "mapping_dimensions",
    "parse_hits",
    "set_fields_query",
    "source_chunk",
    "source_page_query",
]

Engine = Literal["lucene", "faiss", "nmslib"]
SpaceType = Literal["cosinesimil", "innerproduct", "l2"]

_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SOURCE_EXCLUDES = ["embedding"]
FILTERABLE = "filterable"
# Replaces a chunk's user metadata and its indexed copy (set_document_fields on a managed domain).
SET_FIELDS_SCRIPT = "ctx._source.metadata.fields = params.fields; ctx._source.filterable = params.filterable"


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """How vectors are indexed. Managed domains default to Lucene + cosine; Serverless vector
    collections to Faiss + inner product on unit vectors (Faiss is their native engine)."""

    engine: Engine = "lucene"
    space_type: SpaceType = "cosinesimil"
    m: int = 16
    ef_construction: int = 128
    ef_search: int = 100
    serverless: bool = False

    @classmethod
    def for_target(cls, *, serverless: bool) -> IndexLayout:
        if serverless:
            return cls(engine="faiss", space_type="innerproduct", serverless=True)
        return cls()

    @property
    def normalizes(self) -> bool:
        """Vectors are scaled to unit length when the space is not cosine itself."""
        return self.space_type != "cosinesimil"


def index_name(prefix: str, workspace_id: str) -> str:
    name = f"{prefix}-{workspace_id}".lower()
    if not _INDEX_NAME.match(name) or len(name) > 255:
        raise errors.InvalidInput(f"workspace id {workspace_id!r} cannot name an OpenSearch index")
    return name


_FILTER_TEMPLATES: tuple[dict[str, Any], ...] = (
    {"filter_keywords": {"path_match": f"{FILTERABLE}.keyword.*", "mapping": {"type": "keyword"}}},
    {"filter_numbers": {"path_match": f"{FILTERABLE}.number.*", "mapping": {"type": "double"}}},
    {"filter_booleans": {"path_match": f"{FILTERABLE}.boolean.*", "mapping": {"type": "boolean"}}},
    {"filter_dates": {"path_match": f"{FILTERABLE}.date.*", "mapping": {"type": "keyword"}}},
)
_METADATA_STRINGS_TEMPLATE: dict[str, Any] = {
    "metadata_strings": {
        "path_match": "metadata.*",
        "match_mapping_type": "string",
        "mapping": {"type": "keyword", "ignore_above": 1024},
    }
}


def filter_mapping() -> dict[str, Any]:
    """The part of the mapping metadata filters need: user metadata not indexed, its typed copies under
    ``filterable``, no date detection.

    ``index_body`` includes it; an index made before metadata filters gets it with PUT ``<index>/_mapping``
    (new fields may be added to a mapping; ``dynamic_templates`` given there replace the index's list, so
    the whole list is sent, the ``metadata_strings`` template older indexes already have included).
    """
    return {
        "date_detection": False,
        "dynamic_templates": [*_FILTER_TEMPLATES, _METADATA_STRINGS_TEMPLATE],
        "properties": {
            "metadata": {
                "type": "object",
                "dynamic": True,
                "properties": {USER_METADATA_KEY: {"type": "object", "enabled": False}},
            },
            FILTERABLE: {
                "properties": {
                    "keys": {"type": "keyword"},
                    "keyword": {"type": "object"},
                    "number": {"type": "object"},
                    "boolean": {"type": "object"},
                    "date": {"type": "object"},
                }
            },
        },
    }


def has_filter_mapping(mapping_response: Mapping[str, Any], index: str) -> bool:
    """Whether ``index`` in a GET ``<index>/_mapping`` answer already has ``filter_mapping`` (so needs no PUT)."""
    try:
        mappings = mapping_response[index]["mappings"]
        properties = mappings["properties"]
        keys_type = properties[FILTERABLE]["properties"]["keys"].get("type")
        user_metadata_enabled = properties["metadata"]["properties"][USER_METADATA_KEY].get("enabled")
        templates = mappings.get("dynamic_templates") or []
    except (KeyError, TypeError, AttributeError):
        return False
    return (
        keys_type == "keyword"
        and str(user_metadata_enabled).lower() == "false"
        and all(template in templates for template in _FILTER_TEMPLATES)
    )


def index_body(dimensions: int, layout: IndexLayout) -> dict[str, Any]:
    if not 1 <= dimensions <= 16_000:
        raise errors.InvalidInput(f"an OpenSearch knn_vector takes 1 to 16000 dimensions, not {dimensions}")
    index_settings: dict[str, Any] = {"knn": True}
    if not layout.serverless:  # Serverless manages shards and rejects most index settings
        index_settings["knn.algo_param.ef_search"] = layout.ef_search
    filters = filter_mapping()
    return {
        "settings": {"index": index_settings},
        "mappings": {
            **filters,
            "properties": {
                "workspace_id": {"type": "keyword"},
                "document_id": {"type": "keyword"},
                "chunk_id": {"type": "keyword"},
                "generation": {"type": "keyword"},
                "ordinal": {"type": "integer"},
                "start": {"type": "integer"},
                "end": {"type": "integer"},
                "title": {"type": "text", "analyzer": "english"},
                "text": {"type": "text", "analyzer": "english"},
                **filters["properties"],
                "embedding": {
                    "type": "knn_vector",
                    "dimension": dimensions,
                    "method": {
                        "name": "hnsw",
                        "space_type": layout.space_type,
                        "engine": layout.engine,
                        "parameters": {"m": layout.m, "ef_construction": layout.ef_construction},
                    },
                },
            },
        },
    }


def mapping_dimensions(mapping_response: Mapping[str, Any], index: str) -> int | None:
    """The knn_vector dimension of ``index`` in a GET ``<index>/_mapping`` answer."""
    try:
        return int(mapping_response[index]["mappings"]["properties"]["embedding"]["dimension"])
    except (KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- writing


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        raise errors.InvalidInput("cannot index or search with a zero vector")
    return [value / norm for value in vector]


def _vector(vector: Sequence[float], layout: IndexLayout) -> list[float]:
    values = [float(value) for value in vector]
    if not values:
        raise errors.InvalidInput("empty vector")
    return _unit(values) if layout.normalizes else values


def filterable_source(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The indexed copy of a chunk's user metadata, one field per type (see the module docstring);
    empty for none."""
    if not fields:
        return {}
    typed: dict[str, dict[str, Any]] = {"keyword": {}, "number": {}, "boolean": {}, "date": {}}
    for key, value in fields.items():
        if isinstance(value, bool):
            typed["boolean"][key] = value
        elif isinstance(value, int | float):
            typed["number"][key] = value
        elif isinstance(value, str):
            typed["keyword"][key] = value
            if is_date(value):
                typed["date"][key] = value
        elif isinstance(value, list):
            typed["keyword"][key] = [item for item in value if isinstance(item, str)]
    return {"keys": sorted(fields), **{kind: values for kind, values in typed.items() if values}}


def _user_fields(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    fields = metadata.get(USER_METADATA_KEY)
    return fields if isinstance(fields, Mapping) else {}


def chunk_source(chunk: Chunk, *, generation: str, layout: IndexLayout) -> dict[str, Any]:
    if chunk.embedding is None:
        raise errors.InvalidInput(f"chunk {chunk.id} has no embedding")
    filterable = filterable_source(_user_fields(chunk.metadata))
    return {
        "workspace_id": chunk.workspace_id,
        "document_id": chunk.document_id,
        "chunk_id": chunk.id,
        "generation": generation,
        "ordinal": chunk.ordinal,
        "start": chunk.start,
        "end": chunk.end,
        "title": chunk.title,
        "text": chunk.text,
        "metadata": dict(chunk.metadata),
        **({FILTERABLE: filterable} if filterable else {}),
        "embedding": _vector(chunk.embedding, layout),
    }


def bulk_index_actions(
    index: str, chunks: Iterable[Chunk], *, generation: str, layout: IndexLayout
) -> list[dict[str, Any]]:
    """Bulk ``index`` actions; ``_id`` is ``document:ordinal`` except on Serverless vector
    collections, which only take server-generated ids."""
    actions: list[dict[str, Any]] = []
    for chunk in chunks:
        meta: dict[str, Any] = {"_index": index}
        if not layout.serverless:
            meta["_id"] = chunk.id
        actions.append({"index": meta})
        actions.append(chunk_source(chunk, generation=generation, layout=layout))
    return actions


def bulk_delete_actions(index: str, ids: Iterable[str]) -> list[dict[str, Any]]:
    return [{"delete": {"_index": index, "_id": doc_id}} for doc_id in ids]


# --------------------------------------------------------------------------- querying


def filter_clauses(filters: Filter | None) -> list[dict[str, Any]]:
    """The ``bool.filter`` clauses selecting what ``filters`` selects (none for an empty filter).

    An AND group is a list of clauses; OR of groups is one ``should`` clause (``minimum_should_match`` 1).
    Every clause is in filter context, so it never changes a score. A mapping is taken as the filter's JSON
    form (``Filter.parse``), so a bad one is ``InvalidInput``.
    """
    parsed = Filter.parse(filters)
    groups = [_group_clauses(group) for group in parsed.any_of]
    if len(groups) <= 1:
        return groups[0] if groups else []
    return [{"bool": {"should": [{"bool": {"filter": group}} for group in groups], "minimum_should_match": 1}}]


def _group_clauses(group: tuple[Condition, ...]) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = []
    ranges: dict[str, dict[str, Any]] = {}  # field -> bounds, one range query per field
    for condition in group:
        if condition.op in RANGE_OPS:
            bound = condition.value
            kind = "date" if isinstance(bound, str) else "number"
            ranges.setdefault(f"{FILTERABLE}.{kind}.{condition.key}", {})[condition.op.value] = bound
        else:
            clauses.append(_clause(condition))
    clauses.extend({"range": {name: bounds}} for name, bounds in ranges.items())
    return clauses


def _clause(condition: Condition) -> dict[str, Any]:
    key = condition.key
    if condition.op is Op.EXISTS:
        present: dict[str, Any] = {"match_all": {}} if condition.system else {"term": {f"{FILTERABLE}.keys": key}}
        return present if condition.value else {"bool": {"must_not": [present]}}
    if condition.system:
        return _equals("document_id" if key == "document_id" else "metadata.source", list(condition.values))
    by_field: dict[str, list[Any]] = {}
    for value in condition.values:
        kind = "boolean" if isinstance(value, bool) else "keyword" if isinstance(value, str) else "number"
        by_field.setdefault(f"{FILTERABLE}.{kind}.{key}", []).append(value)
    alternatives = [_equals(name, values) for name, values in by_field.items()]
    return alternatives[0] if len(alternatives) == 1 else {"bool": {"should": alternatives, "minimum_should_match": 1}}


def _equals(field_name: str, values: list[Any]) -> dict[str, Any]:
    return {"term": {field_name: values[0]}} if len(values) == 1 else {"terms": {field_name: values}}


def check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 10_000:
        raise errors.InvalidInput("k must be between 1 and 10000")


def check_vector(vector: Sequence[float], dimensions: int, what: str) -> None:
    """A vector the index can hold or be searched with: its dimensions, finite, not zero."""
    if len(vector) != dimensions:
        raise errors.InvalidInput(f"{what} has {len(vector)} dimensions; the index takes {dimensions}")
    if not all(isinstance(value, int | float) and math.isfinite(value) for value in vector):
        raise errors.InvalidInput(f"{what} holds a value that is not a finite number")
    if not any(vector):
        raise errors.InvalidInput(f"{what} is a zero vector")


def check_chunks(chunks: Sequence[Chunk], *, workspace_id: str, document_id: str) -> None:
    """The chunks are the document's, each with an embedding, each ordinal once (dimensions: ``check_vector``)."""
    ordinals: set[int] = set()
    for chunk in chunks:
        if chunk.workspace_id != workspace_id or chunk.document_id != document_id:
            raise errors.InvalidInput(f"chunk {chunk.id} does not belong to {workspace_id}/{document_id}")
        if chunk.embedding is None:
            raise errors.InvalidInput(f"chunk {chunk.id} has no embedding")
        if chunk.ordinal in ordinals:
            raise errors.InvalidInput(f"chunk {chunk.id} appears twice")
        ordinals.add(chunk.ordinal)


def dense_query(vector: Sequence[float], *, k: int, filters: Filter | None, layout: IndexLayout) -> dict[str, Any]:
    check_k(k)
    knn: dict[str, Any] = {"vector": _vector(vector, layout), "k": k}
    clauses = filter_clauses(filters)
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}  # efficient (in-graph) filtering
    return {"size": k, "_source": {"excludes": _SOURCE_EXCLUDES}, "query": {"knn": {"embedding": knn}}}


def keyword_query(query: str, *, k: int, filters: Filter | None) -> dict[str, Any]:
    check_k(k)
    if not query.strip():
        raise errors.InvalidInput("keyword query must not be empty")
    match = {"multi_match": {"query": query, "fields": ["text", "title"], "type": "best_fields", "tie_breaker": 0.3}}
    body_query: dict[str, Any] = {"bool": {"must": [match]}}
    clauses = filter_clauses(filters)
    if clauses:
        body_query["bool"]["filter"] = clauses
    return {"size": k, "_source": {"excludes": _SOURCE_EXCLUDES}, "query": body_query}


def document_query(document_id: str | None = None, *, keep_generation: str | None = None) -> dict[str, Any]:
    """Chunks of one document (or all), except those written by ``keep_generation``."""
    query: dict[str, Any] = {"bool": {"filter": []}}
    if document_id is not None:
        query["bool"]["filter"].append({"term": {"document_id": document_id}})
    if keep_generation is not None:
        query["bool"]["must_not"] = [{"term": {"generation": keep_generation}}]
    if not query["bool"]["filter"] and "must_not" not in query["bool"]:
        return {"match_all": {}}
    return query


def id_page_query(query: dict[str, Any], *, size: int, after: Sequence[Any] | None = None) -> dict[str, Any]:
    """One page of matching ids, in a stable order (ordinal, generation) for ``search_after``."""
    body: dict[str, Any] = {
        "size": size,
        "_source": False,
        "query": query,
        "sort": [{"ordinal": "asc"}, {"generation": "asc"}],
    }
    if after:
        body["search_after"] = list(after)
    return body


def source_page_query(query: dict[str, Any], *, size: int, after: Sequence[Any] | None = None) -> dict[str, Any]:
    """``id_page_query`` with the whole documents, vectors included (to write them again)."""
    return {**id_page_query(query, size=size, after=after), "_source": True}


def set_fields_query(document_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``_update_by_query`` body making ``fields`` the user metadata of every chunk of the document."""
    return {
        "query": document_query(document_id),
        "script": {
            "lang": "painless",
            "source": SET_FIELDS_SCRIPT,
            "params": {"fields": dict(fields), "filterable": filterable_source(fields)},
        },
    }


def count_query(document_id: str | None = None) -> dict[str, Any]:
    return {"query": document_query(document_id)}


# --------------------------------------------------------------------------- parsing


def cosine_from_score(score: float, space_type: SpaceType) -> float:
    """Undo OpenSearch's k-NN score translation (vectors are unit length unless cosinesimil)."""
    if space_type == "cosinesimil":  # score = (2 - (1 - cos)) / 2
        return 2.0 * score - 1.0
    if space_type == "innerproduct":  # score = ip + 1 when ip > 0, else 1 / (1 - ip)
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    squared = 1.0 / score - 1.0  # l2: score = 1 / (1 + |x - y|^2), and |x - y|^2 = 2 - 2 cos
    return 1.0 - squared / 2.0


def source_chunk(source: Mapping[str, Any], workspace_id: str) -> Chunk:
    """The chunk a stored document holds (its embedding too, when the document has it)."""
    embedding = source.get("embedding")
    return _chunk(source, workspace_id, embedding=tuple(float(v) for v in embedding) if embedding else None)


def _chunk(source: Mapping[str, Any], workspace_id: str, *, embedding: tuple[float, ...] | None = None) -> Chunk:
    return Chunk(
        workspace_id=str(source.get("workspace_id") or workspace_id),
        document_id=str(source["document_id"]),
        ordinal=int(source["ordinal"]),
        text=str(source.get("text", "")),
        start=int(source.get("start", 0)),
        end=int(source.get("end", 0)),
        title=str(source.get("title", "")),
        metadata=dict(source.get("metadata") or {}),
        embedding=embedding,
    )


def parse_hits(
    response: Mapping[str, Any], *, workspace_id: str, space_type: SpaceType | None = None
) -> list[ScoredChunk]:
    """Hits in rank order, one per chunk id (a Serverless replace may briefly show two copies).

    ``space_type`` given: scores are k-NN scores, returned as cosine similarity; else BM25.
    """
    results: list[ScoredChunk] = []
    seen: set[str] = set()
    for hit in response.get("hits", {}).get("hits", []):
        source = hit.get("_source") or {}
        try:
            chunk = _chunk(source, workspace_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.UpstreamError(f"OpenSearch hit {hit.get('_id')!r} is not a quarry chunk") from exc
        if chunk.id in seen:
            continue
        seen.add(chunk.id)
        raw = float(hit.get("_score") or 0.0)
        results.append(ScoredChunk(chunk=chunk, score=cosine_from_score(raw, space_type) if space_type else raw))
    return results


def hit_ids(response: Mapping[str, Any]) -> list[str]:
    return [str(hit["_id"]) for hit in response.get("hits", {}).get("hits", [])]
