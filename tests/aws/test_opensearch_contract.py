"""OpenSearchIndex under ``VectorIndexContract``, on the in-process emulator (``opensearch_emulator.py``).

The real opensearch-py client and the adapter's real request bodies and response parsing run; only the
connection is the emulator, which computes k-NN and BM25 answers over the documents it was sent. The
last tests hold the emulator to the recordings: the adapter's requests and the emulator's answers have
the recorded exchanges' shapes, status by status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opensearchpy import OpenSearch

from quarry import errors
from quarry.adapters import opensearch_bodies as bodies
from quarry.adapters.opensearch import OpenSearchIndex
from quarry.adapters.opensearch_bodies import IndexLayout
from quarry.filters import Filter
from quarry.models import Chunk
from tests.contracts.vector_index_contract import VectorIndexContract, make_chunk

from .opensearch_emulator import EmulatorConnection, OpenSearchEmulator, analyze

pytestmark = pytest.mark.aws

RECORDINGS = Path(__file__).parent / "recordings" / "opensearch"
HOST = {"host": "search-quarry.us-east-1.es.amazonaws.com", "port": 443}


def emulated_client(emulator: OpenSearchEmulator) -> OpenSearch:
    return OpenSearch(hosts=[HOST], connection_class=EmulatorConnection, emulator=emulator, max_retries=0)


class TestOpenSearchManagedDomain(VectorIndexContract):
    """Lucene HNSW, cosinesimil, deterministic ids, ``_delete_by_query``, refresh on write."""

    exact_bm25: ClassVar[bool] = False  # Lucene drops BM25's (k1 + 1) factor and stores lengths in one byte

    @pytest.fixture
    def index(self) -> OpenSearchIndex:
        return OpenSearchIndex(client=emulated_client(OpenSearchEmulator()))


class TestOpenSearchServerless(VectorIndexContract):
    """Faiss, inner product on unit vectors, server ids, stale chunks found by search and bulk-deleted.

    The emulator makes a Serverless collection's writes visible before the next read; a real collection
    shows them after its refresh interval (about a second), so read-your-writes holds there only then.
    """

    exact_bm25: ClassVar[bool] = False

    @pytest.fixture
    def index(self) -> OpenSearchIndex:
        return OpenSearchIndex(client=emulated_client(OpenSearchEmulator(serverless=True)), serverless=True)


# --------------------------------------------------------------------------- the emulator itself


def test_the_analyzer_is_englishs_minus_stemming() -> None:
    assert analyze("The Kinase's inhibitors, and BM25 k-NN!") == ["kinase", "inhibitors", "bm25", "k", "nn"]


def test_the_emulator_refuses_what_opensearch_refuses() -> None:
    emulator = OpenSearchEmulator()
    client = emulated_client(emulator)
    index = OpenSearchIndex(client=client)
    index.ensure_workspace("w1", dimensions=3)
    source = {"document_id": "d", "ordinal": 0, "metadata": {"page": "one"}, "embedding": [1.0, 0.0, 0.0]}
    ok = client.bulk(body=[{"index": {"_index": "quarry-w1", "_id": "d:0"}}, source], refresh="true")
    assert ok["errors"] is False
    bad_documents = [
        {**source, "embedding": [1.0, 0.0]},  # another dimension
        {**source, "embedding": [0.0, 0.0, 0.0]},  # zero under cosinesimil
        {**source, "metadata": {"page": {"n": 1}}},  # an object where a keyword is mapped
        {**source, "ordinal": "first"},  # not an integer
    ]
    for document in bad_documents:
        answer = client.bulk(body=[{"index": {"_index": "quarry-w1", "_id": "d:1"}}, document])
        assert answer["items"][0]["index"]["error"]["type"] == "mapper_parsing_exception", document
    with pytest.raises(Exception, match="parsing_exception"):
        client.search(index="quarry-w1", body={"query": {"match_phrase": {"text": "x"}}})
    assert client.count(index="quarry-w1")["count"] == 1


def test_the_emulator_maps_new_fields_as_opensearch_does() -> None:
    client = emulated_client(OpenSearchEmulator())
    vector = {"embedding": {"type": "knn_vector", "dimension": 1}}
    client.indices.create(
        index="plain", body={"settings": {"index": {"knn": True}}, "mappings": {"properties": vector}}
    )
    source = {"embedding": [1.0], "day": "2024-05-01", "n": 3, "x": 0.5, "flag": True, "word": "a", "tags": []}
    assert client.bulk(body=[{"index": {"_index": "plain", "_id": "1"}}, source], refresh="true")["errors"] is False

    properties = client.indices.get_mapping(index="plain")["plain"]["mappings"]["properties"]
    assert {name: properties[name]["type"] for name in ("day", "n", "x", "flag", "word")} == {
        "day": "date",  # date detection
        "n": "long",
        "x": "float",
        "flag": "boolean",
        "word": "text",
    }
    assert "tags" not in properties  # an empty list maps nothing
    later = {**source, "day": "not a date", "n": "three"}
    answer = client.bulk(body=[{"index": {"_index": "plain", "_id": "2"}}, later])
    assert answer["items"][0]["index"]["error"]["type"] == "mapper_parsing_exception"

    # quarry's index: dates stay keywords, user metadata is not indexed, its typed copies never conflict
    index = OpenSearchIndex(client=client)
    index.ensure_workspace("w1", dimensions=1)
    for n, fields in enumerate(({"day": "2024-05-01", "n": 3}, {"day": "not a date", "n": "three"})):
        chunk = make_chunk("w1", f"d{n}", 0, "text", (1.0,), metadata={"fields": fields})
        index.replace_document("w1", f"d{n}", [chunk])
    properties = client.indices.get_mapping(index="quarry-w1")["quarry-w1"]["mappings"]["properties"]
    typed = properties["filterable"]["properties"]
    assert typed["keyword"]["properties"] == {"day": {"type": "keyword"}, "n": {"type": "keyword"}}
    assert typed["number"]["properties"] == {"n": {"type": "double"}}
    assert typed["date"]["properties"] == {"day": {"type": "keyword"}}
    assert properties["metadata"]["properties"] == {"fields": {"type": "object", "enabled": False}}


# The index an older Quarry made: no filterable copies, date detection on, user metadata indexed dynamically.
PRE_FILTER_INDEX = {
    "settings": {"index": {"knn": True}},
    "mappings": {
        "dynamic_templates": [
            {
                "metadata_strings": {
                    "path_match": "metadata.*",
                    "match_mapping_type": "string",
                    "mapping": {"type": "keyword", "ignore_above": 1024},
                }
            }
        ],
        "properties": {
            "document_id": {"type": "keyword"},
            "ordinal": {"type": "integer"},
            "text": {"type": "text", "analyzer": "english"},
            "metadata": {"type": "object", "dynamic": True},
            "embedding": {"type": "knn_vector", "dimension": 1},
        },
    },
}


def test_an_index_from_before_filters_is_given_their_mapping_and_filters_work() -> None:
    client = emulated_client(OpenSearchEmulator())
    client.indices.create(index="quarry-w1", body=PRE_FILTER_INDEX)
    old = {"document_id": "d0", "ordinal": 0, "text": "text", "metadata": {"source": "a.md"}, "embedding": [1.0]}
    client.bulk(body=[{"index": {"_index": "quarry-w1", "_id": "d0:0"}}, old], refresh="true")

    index = OpenSearchIndex(client=client)  # a process of this Quarry, meeting the index first on a write
    for n, fields in enumerate(({"day": "2024-05-01", "n": 3}, {"day": "not a date", "n": "three"}), start=1):
        index.replace_document(
            "w1", f"d{n}", [make_chunk("w1", f"d{n}", 0, "text", (1.0,), metadata={"fields": fields})]
        )

    properties = client.indices.get_mapping(index="quarry-w1")["quarry-w1"]["mappings"]["properties"]
    typed = properties["filterable"]["properties"]
    assert typed["number"]["properties"] == {"n": {"type": "double"}}
    assert typed["date"]["properties"] == {"day": {"type": "keyword"}}  # not an OpenSearch date
    assert properties["metadata"]["properties"]["fields"] == {"type": "object", "enabled": False}
    assert [hit.chunk.id for hit in index.keyword("w1", "text", k=5, filters=Filter.parse({"n": {"gte": 3}}))] == [
        "d1:0"
    ]
    later = Filter.parse({"day": {"gte": "2024-01-01"}})
    assert [hit.chunk.id for hit in index.dense("w1", [1.0], k=5, filters=later)] == ["d1:0"]
    assert len(index.keyword("w1", "text", k=5)) == 3  # the older chunk is still there


def test_a_guessed_filterable_mapping_stops_writes_with_a_conflict() -> None:
    emulator = OpenSearchEmulator()
    client = emulated_client(emulator)
    client.indices.create(index="quarry-w1", body=PRE_FILTER_INDEX)
    chunk = make_chunk("w1", "d1", 0, "text", (1.0,), metadata={"fields": {"n": 3}})
    guessed = bodies.chunk_source(chunk, generation="g", layout=IndexLayout())  # as written before the fix
    client.bulk(body=[{"index": {"_index": "quarry-w1", "_id": "d1:0"}}, guessed], refresh="true")
    index = OpenSearchIndex(client=client)

    refused = r"made before metadata filters .*\[enabled\] parameter can't be updated .* \[metadata\.fields\]"
    with pytest.raises(errors.Conflict, match=refused):
        index.replace_document("w1", "d1", [chunk])
    sent = len(emulator.exchanges)
    with pytest.raises(errors.Conflict):
        index.set_document_fields("w1", "d1", {"n": 4})
    assert len(emulator.exchanges) == sent  # refused once per process, then known
    assert client.count(index="quarry-w1")["count"] == 1


def test_writes_are_searchable_only_after_a_refresh() -> None:
    emulator = OpenSearchEmulator()
    client = emulated_client(emulator)
    OpenSearchIndex(client=client).ensure_workspace("w1", dimensions=3)
    source = {"document_id": "d", "ordinal": 0, "text": "apple", "embedding": [1.0, 0.0, 0.0]}

    client.bulk(body=[{"index": {"_index": "quarry-w1", "_id": "d:0"}}, source])
    assert client.count(index="quarry-w1")["count"] == 0
    client.indices.refresh(index="quarry-w1")
    assert client.count(index="quarry-w1")["count"] == 1


def test_serverless_refuses_custom_ids_and_delete_by_query() -> None:
    client = emulated_client(OpenSearchEmulator(serverless=True))
    OpenSearchIndex(client=client, serverless=True).ensure_workspace("w1", dimensions=3)
    source = {"document_id": "d", "ordinal": 0, "embedding": [1.0, 0.0, 0.0]}

    answer = client.bulk(body=[{"index": {"_index": "quarry-w1", "_id": "d:0"}}, source])

    assert answer["items"][0]["index"]["status"] == 400
    with pytest.raises(Exception, match="illegal_argument_exception"):
        client.delete_by_query(index="quarry-w1", body={"query": {"match_all": {}}})
    with pytest.raises(Exception, match="illegal_argument_exception"):
        client.update_by_query(index="quarry-w1", body={"query": {"match_all": {}}})


# --------------------------------------------------------------------------- against the recordings


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys (recursively) and the shape of a list's first item, no values."""
    if isinstance(value, dict):
        return {key: shape(child) for key, child in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else "null"


def recorded(name: str) -> list[dict[str, Any]]:
    exchanges: list[dict[str, Any]] = json.loads((RECORDINGS / f"{name}.json").read_text())["exchanges"]
    return exchanges


def generations() -> Callable[[], str]:
    names = iter(["gen-1", "gen-2", "gen-3"])
    return lambda: next(names)


def recorded_chunk(ordinal: int, text: str, start: int, embedding: tuple[float, ...]) -> Chunk:
    """The chunks of the recordings (test_opensearch.py)."""
    return Chunk(
        workspace_id="ws1",
        document_id="doc1",
        ordinal=ordinal,
        text=text,
        start=start,
        end=start + len(text),
        title="Quarry guide",
        metadata={"source": "guide.md", "fields": {"lang": "en", "page": ordinal + 1}},
        embedding=embedding,
    )


CHUNKS = [
    recorded_chunk(0, "Quarry indexes documents into OpenSearch.", 0, (0.5, 0.5, 0.5, 0.5)),
    recorded_chunk(1, "Hybrid search fuses BM25 and k-NN rankings.", 42, (3.0, 4.0, 0.0, 0.0)),
]


def assert_like_the_recording(name: str, exchanges: list[dict[str, Any]]) -> None:
    expected = recorded(name)
    assert [e["request"] for e in exchanges] == [e["request"] for e in expected]
    for ours, theirs in zip(exchanges, expected, strict=True):
        where = f"{name}: {theirs['request']['method']} {theirs['request']['path']}"
        assert ours["response"]["status"] == theirs["response"]["status"], where
        assert shape(ours["response"]["body"]) == shape(theirs["response"]["body"]), where


def test_the_managed_lifecycle_matches_its_recording() -> None:
    emulator = OpenSearchEmulator()
    index = OpenSearchIndex(client=emulated_client(emulator), new_generation=generations())

    index.ensure_workspace("ws1", dimensions=4)
    index.replace_document("ws1", "doc1", CHUNKS)
    assert index.set_document_fields("ws1", "doc1", {"lang": "de", "page": 3}) == 2
    assert index.count("ws1", document_id="doc1") == 2
    assert index.count("ws1") == 2
    assert index.delete_document("ws1", "doc1") == 2
    index.drop_workspace("ws1")
    with pytest.raises(errors.NotFound):
        index.count("ws1")

    assert_like_the_recording("managed_lifecycle", emulator.exchanges)


def test_the_managed_searches_match_their_recording() -> None:
    emulator = OpenSearchEmulator()
    loader = OpenSearchIndex(client=emulated_client(emulator), new_generation=generations())
    loader.ensure_workspace("ws1", dimensions=4)
    loader.replace_document("ws1", "doc1", CHUNKS)
    del emulator.exchanges[:]
    index = OpenSearchIndex(client=emulated_client(emulator))  # another process: it has not seen the index

    dense = index.dense("ws1", [0.5, 0.5, 0.5, 0.5], k=2, filters=Filter.parse({"lang": "en", "document_id": "doc1"}))
    keyword = index.keyword(
        "ws1", "bm25 rankings", k=3, filters=Filter.parse({"$or": [{"page": {"gte": 2}}, {"source": "other.md"}]})
    )
    with pytest.raises(errors.NotFound):
        index.dense("empty", [0.5, 0.5, 0.5, 0.5], k=5)
    with pytest.raises(errors.NotFound):
        index.keyword("empty", "anything", k=5)

    assert [hit.chunk.id for hit in dense] == ["doc1:0", "doc1:1"]
    assert [hit.score for hit in dense] == pytest.approx([1.0, 0.7])  # the cosines, back from (1 + cos) / 2
    assert [hit.chunk.id for hit in keyword] == ["doc1:1"]
    assert_like_the_recording("managed_search", emulator.exchanges)


def test_a_bad_chunk_set_is_refused_before_anything_is_sent() -> None:
    emulator = OpenSearchEmulator()
    index = OpenSearchIndex(client=emulated_client(emulator))
    index.ensure_workspace("ws1", dimensions=3)
    sent = len(emulator.exchanges)

    with pytest.raises(errors.InvalidInput, match="2 dimensions"):
        index.replace_document("ws1", "d", [make_chunk("ws1", "d", 0, "x", (1.0, 0.0))])

    assert len(emulator.exchanges) == sent
