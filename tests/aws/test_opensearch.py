"""OpenSearchIndex against recorded OpenSearch exchanges.

No OpenSearch server exists here. The real ``opensearch-py`` client runs (serialisation,
bulk NDJSON, query parameters, status-code exceptions); only its connection is replaced by
``ReplayConnection``, which checks every request against ``recordings/opensearch/*.json``
(method, path, query parameters and the exact JSON body) and answers with the recorded
response. The recordings are written in the documented OpenSearch request/response shapes;
they were not captured from a live cluster.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from opensearchpy import Connection, OpenSearch

from quarry import errors
from quarry.adapters import opensearch_bodies as bodies
from quarry.adapters.opensearch import OpenSearchIndex
from quarry.adapters.opensearch_bodies import IndexLayout
from quarry.filters import Filter
from quarry.models import Chunk
from quarry.ports import VectorIndex
from quarry.settings import Settings
from tests.aws.opensearch_emulator import decode_body

pytestmark = pytest.mark.aws

RECORDINGS = Path(__file__).parent / "recordings" / "opensearch"


class Recording:
    """The exchanges of one recording, answered in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.exchanges: list[dict[str, Any]] = json.loads((RECORDINGS / f"{name}.json").read_text())["exchanges"]
        self.position = 0

    def answer(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> tuple[int, str]:
        assert self.position < len(self.exchanges), f"{self.name}: unexpected {method} {path}"
        exchange = self.exchanges[self.position]
        self.position += 1
        expected = exchange["request"]
        where = f"{self.name} exchange {self.position}"
        assert (method, path) == (expected["method"], expected["path"]), where
        sent = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (params or {}).items()}
        assert sent == expected.get("params", {}), where
        assert decode_body(body) == expected.get("body"), where
        response = exchange["response"]
        return int(response["status"]), json.dumps(response["body"])

    def assert_done(self) -> None:
        assert self.position == len(self.exchanges), f"{self.name}: {len(self.exchanges) - self.position} left"


class ReplayConnection(Connection):
    """An opensearch-py connection that answers from a Recording instead of the network."""

    def __init__(self, *args: Any, recording: Recording, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recording = recording

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
        status, data = self.recording.answer(method, url, params, body)
        if not 200 <= status < 300 and status not in ignore:
            self._raise_error(status, data, "application/json")  # as a real connection passes it on
        return status, {"content-type": "application/json"}, data


@pytest.fixture
def replay() -> Iterator[Any]:
    recordings: list[Recording] = []

    def client_for(name: str) -> OpenSearch:
        recording = Recording(name)
        recordings.append(recording)
        return OpenSearch(
            hosts=[{"host": "search-quarry.us-east-1.es.amazonaws.com", "port": 443}],
            connection_class=ReplayConnection,
            recording=recording,
            max_retries=0,
        )

    yield client_for
    for recording in recordings:
        recording.assert_done()


def generations(*names: str) -> Any:
    it = iter(names)
    return lambda: next(it)


def chunk(ordinal: int, embedding: tuple[float, ...], workspace: str = "ws1") -> Chunk:
    texts = {
        0: (
            "Quarry indexes documents into OpenSearch.",
            0,
            41,
            {"source": "guide.md", "fields": {"lang": "en", "page": 1}},
        ),
        1: (
            "Hybrid search fuses BM25 and k-NN rankings.",
            42,
            85,
            {"source": "guide.md", "fields": {"lang": "en", "page": 2}},
        ),
    }
    text, start, end, metadata = texts[ordinal]
    return Chunk(
        workspace_id=workspace,
        document_id="doc1",
        ordinal=ordinal,
        text=text,
        start=start,
        end=end,
        title="Quarry guide",
        metadata=metadata,
        embedding=embedding,
    )


CHUNKS = [chunk(0, (0.5, 0.5, 0.5, 0.5)), chunk(1, (3.0, 4.0, 0.0, 0.0))]


# --------------------------------------------------------------------------- recorded flows


def test_managed_domain_lifecycle(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("managed_lifecycle"), new_generation=generations("gen-1"))
    assert isinstance(index, VectorIndex)
    index.ensure_workspace("ws1", dimensions=4)
    index.ensure_workspace("ws1", dimensions=4)  # known now: no request
    index.replace_document("ws1", "doc1", CHUNKS)
    assert index.set_document_fields("ws1", "doc1", {"lang": "de", "page": 3}) == 2
    assert index.count("ws1", document_id="doc1") == 2
    assert index.count("ws1") == 2
    assert index.delete_document("ws1", "doc1") == 2
    index.drop_workspace("ws1")
    with pytest.raises(errors.NotFound):  # no index: the workspace is gone
        index.count("ws1")


def test_managed_domain_searches(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("managed_search"))
    dense = index.dense("ws1", [0.5, 0.5, 0.5, 0.5], k=2, filters=Filter.parse({"lang": "en", "document_id": "doc1"}))
    assert [hit.chunk.id for hit in dense] == ["doc1:0", "doc1:1"]
    assert [hit.score for hit in dense] == [1.0, 0.5]  # cosine, back from (1 + cos) / 2
    first = dense[0].chunk
    assert first == Chunk(
        workspace_id="ws1",
        document_id="doc1",
        ordinal=0,
        text="Quarry indexes documents into OpenSearch.",
        start=0,
        end=41,
        title="Quarry guide",
        metadata={"source": "guide.md", "fields": {"lang": "en", "page": 1}},
    )
    keyword = index.keyword(
        "ws1", "bm25 rankings", k=3, filters=Filter.parse({"$or": [{"page": {"gte": 2}}, {"source": "other.md"}]})
    )
    assert [(hit.chunk.id, hit.score) for hit in keyword] == [("doc1:1", 2.3107)]
    with pytest.raises(errors.NotFound):  # the mapping is read first: no index, no search
        index.dense("empty", [0.5, 0.5, 0.5, 0.5], k=5)
    with pytest.raises(errors.NotFound):
        index.keyword("empty", "anything", k=5)


def test_serverless_collection_replace_search_delete(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("serverless_replace"), serverless=True, new_generation=generations("gen-2"))
    assert (index.layout.engine, index.layout.space_type) == ("faiss", "innerproduct")
    index.replace_document("ws1", "doc1", CHUNKS)
    hits = index.dense("ws1", [3.0, 4.0, 0.0, 0.0], k=3)
    # the stale copy of doc1:1 (not yet deleted when searched) is dropped; scores are cosine
    assert [hit.chunk.id for hit in hits] == ["doc1:1", "doc1:0"]
    assert [hit.score for hit in hits] == [1.0, pytest.approx(0.7)]
    assert index.delete_document("ws1", "doc1") == 2


def test_failures_become_typed_errors(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("errors"), new_generation=generations("gen-1"))
    with pytest.raises(errors.Conflict, match="384-dimensional"):
        index.ensure_workspace("ws1", dimensions=4)
    with pytest.raises(errors.Conflict, match="no knn_vector 'embedding' field"):
        index.ensure_workspace("ws3", dimensions=4)
    with pytest.raises(errors.UpstreamError, match=r"1 bulk operations: failed to parse field \[metadata.source\]"):
        index.replace_document("ws2", "doc1", [chunk(0, (0.5, 0.5, 0.5, 0.5), workspace="ws2")])
    with pytest.raises(errors.UpstreamError, match="data access policy"):
        index.keyword("ws1", "quarry", k=1)
    with pytest.raises(errors.Throttled):
        index.keyword("ws1", "quarry", k=1)
    with pytest.raises(errors.UpstreamError, match="'legacy-1' is not a quarry chunk"):
        index.keyword("ws1", "quarry", k=1)


def test_an_index_from_before_filters_gets_their_mapping_once(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("filter_mapping_added"), new_generation=generations("gen-1"))
    # the recording holds the exact PUT _mapping body: filter_mapping, before the first chunk is written
    index.replace_document("ws1", "doc1", CHUNKS)
    index.ensure_workspace("ws1", dimensions=4)  # mapping known and complete now: no request
    assert index.set_document_fields("ws1", "doc1", {"lang": "de"}) == 2  # no second PUT _mapping either
    index.ensure_workspace("ws2", dimensions=4)  # an existing index found by ensure_workspace: the same PUT
    index.ensure_workspace("ws2", dimensions=4)


def test_an_index_with_the_filter_mapping_gets_no_put_mapping(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("filter_mapping_current"), new_generation=generations("gen-1"))
    index.ensure_workspace("ws1", dimensions=4)  # created with index_body, which holds filter_mapping
    index.replace_document("ws1", "doc1", CHUNKS)
    assert index.set_document_fields("ws2", "doc1", {"lang": "de"}) == 2  # made elsewhere, mapping read once

    mappings = bodies.index_body(4, IndexLayout())["mappings"]
    filters = bodies.filter_mapping()
    assert {key: mappings[key] for key in ("date_detection", "dynamic_templates")} == {
        key: filters[key] for key in ("date_detection", "dynamic_templates")
    }
    assert {name: mappings["properties"][name] for name in filters["properties"]} == filters["properties"]
    assert bodies.has_filter_mapping({"i": {"mappings": mappings}}, "i")


def test_a_mapping_that_cannot_take_the_filters_is_a_clear_error(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("filter_mapping_conflict"), new_generation=generations("gen-1"))
    refused = r"quarry-ws1 was made before metadata filters .*\[filterable\.keys\] cannot be changed"
    with pytest.raises(errors.Conflict, match=refused):
        index.replace_document("ws1", "doc1", CHUNKS)  # nothing written
    with pytest.raises(errors.Conflict, match=refused):  # known now: refused again without a request
        index.replace_document("ws1", "doc1", CHUNKS)
    with pytest.raises(errors.Conflict, match=refused):
        index.ensure_workspace("ws1", dimensions=4)
    with pytest.raises(errors.Conflict, match=refused):
        index.set_document_fields("ws1", "doc1", {"lang": "de"})
    with pytest.raises(errors.UpstreamError, match="data access policy"):  # not a mapping conflict
        index.ensure_workspace("ws2", dimensions=4)


def test_bad_input_never_reaches_opensearch(replay: Any) -> None:
    index = OpenSearchIndex(client=replay("managed_search"))
    replay_recording = index._client.transport.connection_pool.connection.recording  # type: ignore[union-attr]
    replay_recording.position = len(replay_recording.exchanges)  # any request would fail the test
    with pytest.raises(errors.InvalidInput, match="k must be"):
        index.dense("ws1", [1.0], k=0)
    assert index.keyword("ws1", "  ", k=3) == []  # no terms: no matches, and no request
    with pytest.raises(errors.InvalidInput, match=r"filter\.lang\.\$ne: unknown operator"):  # the JSON form is parsed
        index.keyword("ws1", "x", k=3, filters={"lang": {"$ne": "en"}})
    with pytest.raises(errors.InvalidInput, match="'document_id' takes a non-empty string"):
        index.dense("ws1", [1.0], k=3, filters={"document_id": 7})
    with pytest.raises(errors.InvalidInput, match=r"fields\.bad key: keys start with a letter"):
        index.set_document_fields("ws1", "doc1", {"bad key": 1})
    with pytest.raises(errors.InvalidInput, match="cannot name an OpenSearch index"):
        index.count("Work Space/1")
    with pytest.raises(errors.InvalidInput, match="does not belong"):
        index.replace_document("ws1", "other", CHUNKS)
    with pytest.raises(errors.InvalidInput, match="no embedding"):
        index.replace_document("ws1", "doc1", [dataclasses.replace(CHUNKS[0], embedding=None)])


# --------------------------------------------------------------------------- pure bodies


def test_index_body_managed_and_serverless() -> None:
    managed = bodies.index_body(384, IndexLayout())
    assert managed["settings"] == {"index": {"knn": True, "knn.algo_param.ef_search": 100}}
    vector = managed["mappings"]["properties"]["embedding"]
    assert vector == {
        "type": "knn_vector",
        "dimension": 384,
        "method": {
            "name": "hnsw",
            "space_type": "cosinesimil",
            "engine": "lucene",
            "parameters": {"m": 16, "ef_construction": 128},
        },
    }
    assert managed["mappings"]["properties"]["text"] == {"type": "text", "analyzer": "english"}
    serverless = bodies.index_body(1024, IndexLayout.for_target(serverless=True))
    assert serverless["settings"] == {"index": {"knn": True}}
    assert serverless["mappings"]["properties"]["embedding"]["method"]["engine"] == "faiss"
    with pytest.raises(errors.InvalidInput):
        bodies.index_body(0, IndexLayout())


def test_filters_compile_to_bool_queries_on_typed_fields() -> None:
    def clauses(raw: dict[str, Any]) -> list[dict[str, Any]]:
        return bodies.filter_clauses(Filter.parse(raw))

    assert clauses({}) == []
    assert bodies.filter_clauses(None) == []
    assert clauses({"document_id": "d1", "lang": "en", "page": 3, "draft": False, "w": 0.5}) == [
        {"term": {"document_id": "d1"}},
        {"term": {"filterable.keyword.lang": "en"}},
        {"term": {"filterable.number.page": 3}},
        {"term": {"filterable.boolean.draft": False}},
        {"term": {"filterable.number.w": 0.5}},
    ]
    assert clauses({"tags": ["a", "b"], "source": ["x.md", "y.md"], "document_id": {"in": ["d1"]}}) == [
        {"terms": {"filterable.keyword.tags": ["a", "b"]}},
        {"terms": {"metadata.source": ["x.md", "y.md"]}},
        {"term": {"document_id": "d1"}},
    ]
    assert clauses({"rating": [5, "5", True]}) == [
        {
            "bool": {
                "should": [
                    {"term": {"filterable.number.rating": 5}},
                    {"term": {"filterable.keyword.rating": "5"}},
                    {"term": {"filterable.boolean.rating": True}},
                ],
                "minimum_should_match": 1,
            }
        }
    ]
    # ranges: numbers and dates on their own fields, the bounds of one field in one range query
    assert clauses({"rating": {"gte": 4, "lt": 5}, "published": {"gt": "2024-05-01T10:00:00+02:00"}}) == [
        {"range": {"filterable.number.rating": {"gte": 4, "lt": 5}}},
        {"range": {"filterable.date.published": {"gt": "2024-05-01T08:00:00Z"}}},
    ]
    assert clauses({"reviewed": {"exists": True}, "draft": {"exists": False}, "document_id": {"exists": True}}) == [
        {"term": {"filterable.keys": "reviewed"}},
        {"bool": {"must_not": [{"term": {"filterable.keys": "draft"}}]}},
        {"match_all": {}},
    ]
    assert clauses({"$or": [{"a": "x"}, {"b": 1, "c": {"exists": False}}]}) == [
        {
            "bool": {
                "should": [
                    {"bool": {"filter": [{"term": {"filterable.keyword.a": "x"}}]}},
                    {
                        "bool": {
                            "filter": [
                                {"term": {"filterable.number.b": 1}},
                                {"bool": {"must_not": [{"term": {"filterable.keys": "c"}}]}},
                            ]
                        }
                    },
                ],
                "minimum_should_match": 1,
            }
        }
    ]
    with pytest.raises(errors.InvalidInput):
        bodies.filter_clauses({"w": math.nan})


def test_user_metadata_is_indexed_one_field_per_type() -> None:
    fields = {"product": "Kettle", "rating": 4.5, "count": 3, "ok": True, "tags": ["a", "b"], "day": "2024-05-01"}
    assert bodies.filterable_source(fields) == {
        "keys": ["count", "day", "ok", "product", "rating", "tags"],
        "keyword": {"product": "Kettle", "tags": ["a", "b"], "day": "2024-05-01"},
        "number": {"rating": 4.5, "count": 3},
        "boolean": {"ok": True},
        "date": {"day": "2024-05-01"},
    }
    assert bodies.filterable_source({}) == {}
    source = bodies.chunk_source(CHUNKS[0], generation="g", layout=IndexLayout())
    assert source["metadata"] == {"source": "guide.md", "fields": {"lang": "en", "page": 1}}
    assert source["filterable"] == {"keys": ["lang", "page"], "keyword": {"lang": "en"}, "number": {"page": 1}}
    plain = bodies.chunk_source(
        dataclasses.replace(CHUNKS[0], metadata={"source": "x"}), generation="g", layout=IndexLayout()
    )
    assert "filterable" not in plain
    mappings = bodies.index_body(4, IndexLayout())["mappings"]
    assert mappings["date_detection"] is False
    assert mappings["properties"]["metadata"]["properties"]["fields"] == {"type": "object", "enabled": False}
    assert bodies.set_fields_query("d", {"a": 1})["script"]["params"] == {
        "fields": {"a": 1},
        "filterable": {"keys": ["a"], "number": {"a": 1}},
    }


def test_serverless_writes_unit_vectors_without_ids() -> None:
    layout = IndexLayout.for_target(serverless=True)
    actions = bodies.bulk_index_actions("quarry-ws1", CHUNKS, generation="g", layout=layout)
    assert actions[0] == {"index": {"_index": "quarry-ws1"}}
    assert actions[3]["embedding"] == [0.6, 0.8, 0.0, 0.0]
    with pytest.raises(errors.InvalidInput, match="zero vector"):
        bodies.dense_query([0.0, 0.0], k=1, filters=None, layout=layout)


@given(st.floats(min_value=-1.0, max_value=1.0))
def test_scores_map_back_to_cosine(cosine: float) -> None:
    lucene_cosine = (2 - (1 - cosine)) / 2
    assert bodies.cosine_from_score(lucene_cosine, "cosinesimil") == pytest.approx(cosine, abs=1e-9)
    inner = cosine + 1 if cosine > 0 else 1 / (1 - cosine)
    assert bodies.cosine_from_score(inner, "innerproduct") == pytest.approx(cosine, abs=1e-9)
    l2 = 1 / (1 + (2 - 2 * cosine))
    assert bodies.cosine_from_score(l2, "l2") == pytest.approx(cosine, abs=1e-9)


def test_document_query_variants() -> None:
    assert bodies.document_query() == {"match_all": {}}
    assert bodies.document_query("d") == {"bool": {"filter": [{"term": {"document_id": "d"}}]}}
    assert bodies.id_page_query({"match_all": {}}, size=10, after=[3, "g"])["search_after"] == [3, "g"]


# --------------------------------------------------------------------------- client building


@pytest.mark.parametrize(("serverless", "service"), [(False, "es"), (True, "aoss")])
def test_client_is_built_lazily_with_sigv4(serverless: bool, service: str) -> None:
    settings = Settings(
        opensearch_endpoint="https://abc123.eu-west-1.aoss.amazonaws.com",
        opensearch_serverless=serverless,
        aws_region="eu-west-1",
    )
    index = OpenSearchIndex.from_settings(settings)
    assert index._client is None
    client = index._os()
    connection = client.transport.connection_pool.connection
    assert connection.host == "https://abc123.eu-west-1.aoss.amazonaws.com:443"
    signed = connection.session.auth(requests.Request("GET", f"{connection.host}/quarry-ws1/_count").prepare())
    assert f"/eu-west-1/{service}/aws4_request" in signed.headers["Authorization"]
    assert index._os() is client
    assert math.isclose(connection.timeout, 30.0)


def test_no_endpoint_configured() -> None:
    with pytest.raises(errors.ModelUnavailable, match="QUARRY_OPENSEARCH_ENDPOINT"):
        OpenSearchIndex.from_settings(Settings())
