"""What every ``VectorIndex`` must do. Supply a fixture ``index``.

Set ``exact_bm25 = True`` on the test class when the adapter computes Lucene's BM25 exactly
(with ``bm25_k1`` / ``bm25_b``); the ranking tests hold for any sane BM25 either way.
The keyword corpora use plain, uninflected words that are not stop words, so any analyser
(Snowball, Lucene's standard or english analyser, a fake) sees the same terms.

Filters (``quarry.filters``) are evaluated inside each store; the filter tests hold every store to the
semantics of ``Filter.matches_chunk_metadata``, on hand-picked cases and on seeded random filters over a
corpus that mixes value types under one key (a number here, a string there), as user metadata may.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest

from quarry.errors import Conflict, InvalidInput, NotFound
from quarry.filters import Filter
from quarry.metadata import USER_METADATA_KEY
from quarry.models import Chunk, new_id
from quarry.ports import ScoredChunk, VectorIndex


def make_chunk(
    workspace_id: str,
    document_id: str,
    ordinal: int,
    text: str,
    embedding: Sequence[float] = (1.0, 0.0, 0.0),
    *,
    title: str = "",
    metadata: dict[str, Any] | None = None,
) -> Chunk:
    return Chunk(
        workspace_id=workspace_id,
        document_id=document_id,
        ordinal=ordinal,
        text=text,
        start=ordinal * 100,
        end=ordinal * 100 + len(text),
        title=title,
        metadata=metadata or {},
        embedding=tuple(float(x) for x in embedding),
    )


def ids(hits: Sequence[ScoredChunk]) -> list[str]:
    return [hit.chunk.id for hit in hits]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


# A tiny corpus whose BM25 can be checked by hand (lengths 2, 3, 4, 2; N = 4; avgdl = 2.75).
FRUIT = {
    "d1": "apple banana",
    "d2": "apple apple cherry",
    "d3": "banana cherry date elderberry",
    "d4": "fig grape",
}


def bm25(tf: int, dl: int, df: int, *, n: int, avgdl: float, k1: float, b: float) -> float:
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


def where(raw: dict[str, Any]) -> Filter:
    return Filter.parse(raw)


# Products with user metadata of every type. One key may hold different types in different documents
# ("rating": a number, or the string "5"), a list may be empty, a string may look like a date or not.
PRODUCTS: dict[str, dict[str, Any]] = {
    "p1": {
        "source": "upload",
        "fields": {
            "product": "Kettle",
            "rating": 5,
            "price": 19.5,
            "reviewed": True,
            "tags": ["kitchen", "steel"],
            "published": "2024-05-01",
        },
    },
    "p2": {
        "source": "upload",
        "fields": {
            "product": "Toaster",
            "rating": 3,
            "price": 25,
            "reviewed": False,
            "tags": ["kitchen"],
            "published": "2024-05-01T08:00:00Z",
        },
    },
    "p3": {
        "source": "upload",
        "fields": {"product": "Lamp", "rating": 4.5, "reviewed": 1, "tags": [], "published": "2023-12-31T23:59:59Z"},
    },
    "p4": {"source": "crawl", "fields": {"product": "kettle", "rating": "5", "published": "not a date"}},
    "p5": {"source": "crawl", "fields": {}},
    "p6": {"lang": "en"},
}

# (filter, the documents it selects): the semantics of quarry.filters, case by case.
FILTER_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"p1", "p2", "p3", "p4", "p5", "p6"}),
    # equality on strings (exact, case-sensitive), numbers (by value), booleans (not numbers)
    ({"product": "Kettle"}, {"p1"}),
    ({"product": {"eq": "kettle"}}, {"p4"}),
    ({"rating": 5}, {"p1"}),
    ({"rating": 5.0}, {"p1"}),
    ({"rating": "5"}, {"p4"}),
    ({"price": 25}, {"p2"}),
    ({"price": 19.5}, {"p1"}),
    ({"reviewed": True}, {"p1"}),
    ({"reviewed": False}, {"p2"}),
    ({"reviewed": 1}, {"p3"}),
    # a list field holds the value
    ({"tags": "kitchen"}, {"p1", "p2"}),
    ({"tags": "steel"}, {"p1"}),
    ({"tags": "garden"}, set()),
    # in, also across types
    ({"product": ["Kettle", "Lamp"]}, {"p1", "p3"}),
    ({"tags": {"in": ["steel", "garden"]}}, {"p1"}),
    ({"rating": [5, "5"]}, {"p1", "p4"}),
    # number ranges match numbers only
    ({"rating": {"gte": 4}}, {"p1", "p3"}),
    ({"rating": {"gt": 3, "lt": 5}}, {"p3"}),
    ({"rating": {"lte": 3}}, {"p2"}),
    ({"price": {"lte": 19.5}}, {"p1"}),
    ({"published": {"gt": 0}}, set()),
    # date ranges match dates only; a date sorts before any time on its day; offsets are normalised
    ({"published": {"gte": "2024-05-01"}}, {"p1", "p2"}),
    ({"published": {"gt": "2024-05-01"}}, {"p2"}),
    ({"published": {"lt": "2024-05-01T00:00:00Z"}}, {"p1", "p3"}),
    ({"published": {"gte": "2024-05-01T10:00:00+02:00"}}, {"p2"}),
    ({"published": {"lte": "2024-01-01"}}, {"p3"}),
    ({"published": "2024-05-01T10:00:00+02:00"}, {"p2"}),
    ({"rating": {"gt": "2020-01-01"}}, set()),
    # exists: the key is set (even to an empty list)
    ({"tags": {"exists": True}}, {"p1", "p2", "p3"}),
    ({"tags": {"exists": False}}, {"p4", "p5", "p6"}),
    # AND across keys, OR at the top level
    ({"product": "Kettle", "rating": {"gte": 5}}, {"p1"}),
    ({"tags": "kitchen", "reviewed": False}, {"p2"}),
    ({"tags": "kitchen", "rating": {"gte": 4, "lt": 5}}, set()),
    ({"$or": [{"product": "Lamp"}, {"rating": {"lt": 4}}]}, {"p2", "p3"}),
    (
        {"$or": [{"source": "crawl", "rating": "5"}, {"tags": {"exists": True}, "published": {"lt": "2024-01-01"}}]},
        {"p3", "p4"},
    ),
    # system keys
    ({"document_id": "p2"}, {"p2"}),
    ({"document_id": ["p1", "p3", "nope"]}, {"p1", "p3"}),
    ({"source": "crawl"}, {"p4", "p5"}),
    ({"source": "upload", "rating": {"gte": 4.5}}, {"p1", "p3"}),
    ({"document_id": "p1", "product": "Lamp"}, set()),
    # keys no chunk has
    ({"nothing": "x"}, set()),
    ({"nothing": {"gte": 1}}, set()),
    ({"nothing": {"exists": False}}, {"p1", "p2", "p3", "p4", "p5", "p6"}),
]

# Random corpora and filters (seeded): keys, values of every type, and bounds to draw from.
_KEYS = ("a", "b", "c")
_STRINGS = ("x", "y", "2024-01-01", "2024-01-01T12:00:00Z", "2024-06-30")
_NUMBERS = (-1, 0, 1, 2.5, 3)
_DATES = ("2023-12-31", "2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T12:00:00Z", "2024-03-01")


def _random_value(rng: random.Random) -> Any:
    kind = rng.choice(("string", "number", "bool", "list"))
    if kind == "string":
        return rng.choice(_STRINGS)
    if kind == "number":
        return rng.choice(_NUMBERS)
    if kind == "bool":
        return rng.choice((True, False))
    return rng.sample(["x", "y", "z", "2024-01-01"], rng.randint(0, 3))


def _random_fields(rng: random.Random) -> dict[str, Any]:
    return {key: _random_value(rng) for key in _KEYS if rng.random() < 0.7}


def _random_condition(rng: random.Random) -> tuple[str, Any]:
    key = rng.choice((*_KEYS, "document_id", "source")) if rng.random() < 0.9 else "missing"
    if key == "document_id":
        return key, rng.choice((f"r{rng.randrange(12)}", [f"r{rng.randrange(12)}" for _ in range(3)]))
    if key == "source":
        return key, rng.choice(("web", "upload"))
    shape = rng.choice(("eq", "in", "number", "date", "exists"))
    if shape == "eq":
        return key, rng.choice((*_STRINGS, *_NUMBERS, True, False, "z"))
    if shape == "in":
        return key, [rng.choice((*_STRINGS, *_NUMBERS, True, "z")) for _ in range(rng.randint(1, 3))]
    if shape == "exists":
        return key, {"exists": rng.random() < 0.5}
    bounds = _NUMBERS if shape == "number" else _DATES
    ops = rng.sample(["gt", "gte", "lt", "lte"], rng.randint(1, 2))
    return key, {op: rng.choice(bounds) for op in ops}


def _random_group(rng: random.Random) -> dict[str, Any]:
    group: dict[str, Any] = {}
    for _ in range(rng.randint(1, 3)):
        key, condition = _random_condition(rng)
        group[key] = condition
    return group


def random_filter(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.3:
        return {"$or": [_random_group(rng) for _ in range(rng.randint(2, 3))]}
    return _random_group(rng)


class VectorIndexContract:
    exact_bm25: ClassVar[bool] = False
    bm25_k1: ClassVar[float] = 0.9
    bm25_b: ClassVar[float] = 0.4

    @pytest.fixture
    def workspace_id(self, index: VectorIndex) -> Iterator[str]:
        workspace_id = f"c{new_id()[:20]}"
        index.ensure_workspace(workspace_id, dimensions=3)
        yield workspace_id
        index.drop_workspace(workspace_id)

    def _fruit(self, index: VectorIndex, workspace_id: str) -> None:
        for document_id, text in FRUIT.items():
            index.replace_document(workspace_id, document_id, [make_chunk(workspace_id, document_id, 0, text)])

    # ------------------------------------------------------------------ workspaces

    def test_is_a_vector_index(self, index: VectorIndex) -> None:
        assert isinstance(index, VectorIndex)

    def test_ensure_workspace_is_idempotent_and_keeps_its_dimensions(
        self, index: VectorIndex, workspace_id: str
    ) -> None:
        index.replace_document(workspace_id, "d", [make_chunk(workspace_id, "d", 0, "kept")])
        index.ensure_workspace(workspace_id, dimensions=3)
        assert index.count(workspace_id) == 1
        with pytest.raises(Conflict):
            index.ensure_workspace(workspace_id, dimensions=4)

    def test_unknown_workspace(self, index: VectorIndex) -> None:
        missing = f"m{new_id()[:20]}"
        with pytest.raises(NotFound):
            index.count(missing)
        with pytest.raises(NotFound):
            index.dense(missing, [1.0, 0.0, 0.0], k=3)
        with pytest.raises(NotFound):
            index.keyword(missing, "apple", k=3)
        with pytest.raises(NotFound):
            index.replace_document(missing, "d", [make_chunk(missing, "d", 0, "x")])
        assert index.delete_document(missing, "d") == 0
        index.drop_workspace(missing)  # idempotent

    def test_drop_workspace_removes_everything(self, index: VectorIndex) -> None:
        workspace_id = f"c{new_id()[:20]}"
        index.ensure_workspace(workspace_id, dimensions=3)
        index.replace_document(workspace_id, "d", [make_chunk(workspace_id, "d", 0, "apple")])
        index.drop_workspace(workspace_id)
        with pytest.raises(NotFound):
            index.count(workspace_id)
        index.ensure_workspace(workspace_id, dimensions=5)  # the id can be reused, with other dimensions
        assert index.count(workspace_id) == 0
        assert index.keyword(workspace_id, "apple", k=5) == []
        index.drop_workspace(workspace_id)

    def test_workspaces_are_isolated_and_may_differ_in_dimensions(self, index: VectorIndex) -> None:
        small, large = f"c{new_id()[:20]}", f"c{new_id()[:20]}"
        index.ensure_workspace(small, dimensions=3)
        index.ensure_workspace(large, dimensions=5)
        try:
            index.replace_document(small, "d", [make_chunk(small, "d", 0, "apple")])
            index.replace_document(large, "d", [make_chunk(large, "d", 0, "banana", (0, 0, 0, 0, 1))])
            assert ids(index.keyword(small, "apple banana", k=5)) == ["d:0"]
            assert [h.chunk.text for h in index.keyword(large, "apple banana", k=5)] == ["banana"]
            assert index.dense(large, [0, 0, 0, 0, 1], k=5)[0].chunk.workspace_id == large
        finally:
            index.drop_workspace(small)
            index.drop_workspace(large)

    # ------------------------------------------------------------------ writes

    def test_replace_then_count(self, index: VectorIndex, workspace_id: str) -> None:
        index.replace_document(workspace_id, "a", [make_chunk(workspace_id, "a", i, f"part {i}") for i in range(3)])
        index.replace_document(workspace_id, "b", [make_chunk(workspace_id, "b", 0, "other")])
        assert index.count(workspace_id) == 4
        assert index.count(workspace_id, document_id="a") == 3
        assert index.count(workspace_id, document_id="missing") == 0

    def test_hits_carry_the_whole_chunk(self, index: VectorIndex, workspace_id: str) -> None:
        chunk = make_chunk(
            workspace_id,
            "paper-1",
            4,
            "Kinase inhibitors slow tumour growth.",
            (0.2, 0.9, 0.1),
            title="Kinases",
            metadata={"page": 3, "lang": "en", "tags": ["bio"], "score": 0.5},
        )
        index.replace_document(workspace_id, "paper-1", [chunk])
        for hit in (index.dense(workspace_id, [0.2, 0.9, 0.1], k=1)[0], index.keyword(workspace_id, "kinase", k=1)[0]):
            found = hit.chunk
            assert (found.workspace_id, found.document_id, found.ordinal) == (workspace_id, "paper-1", 4)
            assert (found.text, found.title, found.start, found.end) == (chunk.text, "Kinases", 400, chunk.end)
            assert found.metadata == chunk.metadata
            assert found.id == "paper-1:4"

    def test_replace_replaces_the_whole_set(self, index: VectorIndex, workspace_id: str) -> None:
        index.replace_document(
            workspace_id, "doc", [make_chunk(workspace_id, "doc", i, f"apple {i}") for i in range(3)]
        )
        index.replace_document(workspace_id, "keep", [make_chunk(workspace_id, "keep", 0, "apple kept")])

        index.replace_document(workspace_id, "doc", [make_chunk(workspace_id, "doc", 0, "cherry changed")])

        assert index.count(workspace_id, document_id="doc") == 1
        assert index.count(workspace_id) == 2
        assert ids(index.keyword(workspace_id, "apple", k=10)) == ["keep:0"]
        assert ids(index.keyword(workspace_id, "cherry", k=10)) == ["doc:0"]
        assert sorted(ids(index.dense(workspace_id, [1, 0, 0], k=10))) == ["doc:0", "keep:0"]

    def test_replacing_again_never_duplicates(self, index: VectorIndex, workspace_id: str) -> None:
        chunks = [make_chunk(workspace_id, "doc", i, f"banana {i}") for i in range(2)]
        index.replace_document(workspace_id, "doc", chunks)
        index.replace_document(workspace_id, "doc", chunks)
        assert index.count(workspace_id) == 2
        assert sorted(ids(index.keyword(workspace_id, "banana", k=10))) == ["doc:0", "doc:1"]
        assert sorted(ids(index.dense(workspace_id, [1, 0, 0], k=10))) == ["doc:0", "doc:1"]

    def test_replace_with_nothing_empties_the_document(self, index: VectorIndex, workspace_id: str) -> None:
        index.replace_document(workspace_id, "doc", [make_chunk(workspace_id, "doc", 0, "apple")])
        index.replace_document(workspace_id, "doc", [])
        assert index.count(workspace_id) == 0
        assert index.keyword(workspace_id, "apple", k=5) == []

    def test_delete_document(self, index: VectorIndex, workspace_id: str) -> None:
        index.replace_document(workspace_id, "gone", [make_chunk(workspace_id, "gone", i, "apple") for i in range(3)])
        index.replace_document(workspace_id, "kept", [make_chunk(workspace_id, "kept", 0, "apple")])
        assert index.delete_document(workspace_id, "gone") == 3
        assert index.delete_document(workspace_id, "gone") == 0
        assert index.count(workspace_id) == 1
        assert ids(index.keyword(workspace_id, "apple", k=5)) == ["kept:0"]
        assert ids(index.dense(workspace_id, [1, 0, 0], k=5)) == ["kept:0"]

    def test_bad_chunks_are_rejected_and_change_nothing(self, index: VectorIndex, workspace_id: str) -> None:
        good = make_chunk(workspace_id, "doc", 0, "apple")
        index.replace_document(workspace_id, "doc", [good])
        bad_sets = [
            [make_chunk(workspace_id, "doc", 0, "wrong size", (1.0, 0.0))],
            [Chunk(workspace_id, "doc", 0, "no vector", 0, 9)],
            [make_chunk(workspace_id, "other", 0, "another document's chunk")],
            [make_chunk(workspace_id, "doc", 0, "twice"), make_chunk(workspace_id, "doc", 0, "twice")],
            [make_chunk(workspace_id, "doc", 0, "zero vector", (0.0, 0.0, 0.0))],
            [make_chunk(workspace_id, "doc", 0, "not a number", (math.nan, 0.0, 1.0))],
        ]
        for chunks in bad_sets:
            with pytest.raises(InvalidInput):
                index.replace_document(workspace_id, "doc", chunks)
        assert index.count(workspace_id) == 1
        assert ids(index.keyword(workspace_id, "apple", k=5)) == ["doc:0"]

    # ------------------------------------------------------------------ dense

    def test_dense_ranks_by_cosine_similarity(self, index: VectorIndex, workspace_id: str) -> None:
        vectors = {"same": (2, 0, 0), "near": (1, 1, 0), "orthogonal": (0, 0, 3), "opposite": (-1, 0, 0)}
        for name, vector in vectors.items():
            index.replace_document(workspace_id, name, [make_chunk(workspace_id, name, 0, name, vector)])
        query = [1.0, 0.0, 0.0]

        hits = index.dense(workspace_id, query, k=4)

        assert [h.chunk.document_id for h in hits] == ["same", "near", "orthogonal", "opposite"]
        for hit in hits:
            assert hit.score == pytest.approx(cosine(query, vectors[hit.chunk.document_id]), abs=1e-5)
        assert [h.chunk.document_id for h in index.dense(workspace_id, query, k=2)] == ["same", "near"]

    def test_filters_do_not_starve_dense_results(self, index: VectorIndex, workspace_id: str) -> None:
        """The only matches lie far from the query, behind hundreds of better non-matching chunks."""
        rng = random.Random(7)
        for d in range(30):
            chunks = []
            for o in range(10):
                needle = d % 6 == 0 and o == 0  # 5 needles
                vector = (
                    (-1.0, rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1))
                    if needle
                    else (
                        1.0,
                        rng.uniform(-0.3, 0.3),
                        rng.uniform(-0.3, 0.3),
                    )
                )
                metadata = {USER_METADATA_KEY: {"needle": needle}}
                chunks.append(make_chunk(workspace_id, f"d{d}", o, f"chunk {d} {o}", vector, metadata=metadata))
            index.replace_document(workspace_id, f"d{d}", chunks)

        hits = index.dense(workspace_id, [1.0, 0.0, 0.0], k=5, filters=where({"needle": True}))

        assert sorted(ids(hits)) == sorted(f"d{d}:0" for d in range(0, 30, 6))
        assert all(hit.score < 0 for hit in hits)

    def test_dense_rejects_bad_queries(self, index: VectorIndex, workspace_id: str) -> None:
        index.replace_document(workspace_id, "d", [make_chunk(workspace_id, "d", 0, "x")])
        for vector in ([1.0, 0.0], [0.0, 0.0, 0.0], [math.inf, 0.0, 0.0]):
            with pytest.raises(InvalidInput):
                index.dense(workspace_id, vector, k=3)
        with pytest.raises(InvalidInput):
            index.dense(workspace_id, [1.0, 0.0, 0.0], k=0)

    # ------------------------------------------------------------------ keyword

    def test_keyword_prefers_more_occurrences(self, index: VectorIndex, workspace_id: str) -> None:
        self._fruit(index, workspace_id)
        assert ids(index.keyword(workspace_id, "apple", k=10)) == ["d2:0", "d1:0"]

    def test_keyword_prefers_rare_terms(self, index: VectorIndex, workspace_id: str) -> None:
        self._fruit(index, workspace_id)
        assert ids(index.keyword(workspace_id, "apple date", k=10)) == ["d3:0", "d2:0", "d1:0"]
        assert ids(index.keyword(workspace_id, "apple date", k=2)) == ["d3:0", "d2:0"]

    def test_keyword_exact_bm25(self, index: VectorIndex, workspace_id: str) -> None:
        if not self.exact_bm25:
            pytest.skip("this adapter's BM25 is not Lucene-exact with the contract's parameters")
        self._fruit(index, workspace_id)
        k1, b = self.bm25_k1, self.bm25_b
        hits = {h.chunk.document_id: h.score for h in index.keyword(workspace_id, "apple date", k=10)}
        expected = {
            "d3": bm25(1, 4, 1, n=4, avgdl=2.75, k1=k1, b=b),
            "d2": bm25(2, 3, 2, n=4, avgdl=2.75, k1=k1, b=b),
            "d1": bm25(1, 2, 2, n=4, avgdl=2.75, k1=k1, b=b),
        }
        assert hits == pytest.approx(expected, rel=1e-9)
        if (k1, b) == (0.9, 0.4):  # worked out by hand
            assert hits == pytest.approx({"d3": 1.10850, "d2": 0.89813, "d1": 0.73092}, abs=1e-5)

        # the corpus statistics follow deletes and replacements at once
        index.delete_document(workspace_id, "d4")
        index.replace_document(workspace_id, "d1", [make_chunk(workspace_id, "d1", 0, "apple banana banana fig")])
        hits = {h.chunk.document_id: h.score for h in index.keyword(workspace_id, "apple", k=10)}
        avgdl = (4 + 3 + 4) / 3
        assert hits == pytest.approx(
            {
                "d2": bm25(2, 3, 2, n=3, avgdl=avgdl, k1=k1, b=b),
                "d1": bm25(1, 4, 2, n=3, avgdl=avgdl, k1=k1, b=b),
            },
            rel=1e-9,
        )

    def test_keyword_searches_titles(self, index: VectorIndex, workspace_id: str) -> None:
        index.replace_document(
            workspace_id, "t", [make_chunk(workspace_id, "t", 0, "body without it", title="Mitochondria")]
        )
        index.replace_document(workspace_id, "u", [make_chunk(workspace_id, "u", 0, "unrelated body")])
        assert ids(index.keyword(workspace_id, "mitochondria", k=5)) == ["t:0"]

    def test_keyword_without_matches_is_empty(self, index: VectorIndex, workspace_id: str) -> None:
        self._fruit(index, workspace_id)
        assert index.keyword(workspace_id, "zucchini", k=5) == []
        assert index.keyword(workspace_id, "the", k=5) == []
        assert index.keyword(workspace_id, "   ", k=5) == []

    def test_keyword_rejects_bad_input(self, index: VectorIndex, workspace_id: str) -> None:
        with pytest.raises(InvalidInput):
            index.keyword(workspace_id, "apple", k=0)

    # ------------------------------------------------------------------ filters

    def _products(self, index: VectorIndex, workspace_id: str) -> None:
        """One chunk per product, every text holding "common" (so a keyword search sees them all)."""
        for n, (document_id, metadata) in enumerate(PRODUCTS.items()):
            vector = (1.0, 0.1 * n, 0.0)
            chunk = make_chunk(workspace_id, document_id, 0, f"common {document_id}", vector, metadata=metadata)
            index.replace_document(workspace_id, document_id, [chunk])

    @staticmethod
    def _selected(index: VectorIndex, workspace_id: str, filters: Filter, *, k: int = 50) -> set[str]:
        """The documents a filter selects, by dense and by keyword search (which must agree)."""
        dense = index.dense(workspace_id, [1.0, 0.0, 0.0], k=k, filters=filters)
        keyword = index.keyword(workspace_id, "common", k=k, filters=filters)
        assert sorted(ids(dense)) == sorted(ids(keyword)), filters.describe()
        return {hit.chunk.document_id for hit in dense}

    def test_filters_select_what_the_filter_language_says(self, index: VectorIndex, workspace_id: str) -> None:
        self._products(index, workspace_id)
        for raw, expected in FILTER_CASES:
            filters = where(raw)
            assert self._selected(index, workspace_id, filters) == expected, raw
            python = {
                d for d, m in PRODUCTS.items() if filters.matches_chunk_metadata(m, document_id=d)
            }  # the reference evaluation agrees with the table
            assert python == expected, raw

    def test_filtered_hits_keep_their_rank_and_scores(self, index: VectorIndex, workspace_id: str) -> None:
        self._products(index, workspace_id)
        query = [1.0, 0.0, 0.0]
        unfiltered = {h.chunk.id: h.score for h in index.dense(workspace_id, query, k=10)}
        kitchen = index.dense(workspace_id, query, k=10, filters=where({"tags": "kitchen"}))
        assert ids(kitchen) == ["p1:0", "p2:0"]
        for hit in kitchen:
            assert hit.score == pytest.approx(unfiltered[hit.chunk.id], abs=1e-5)
            assert hit.chunk.metadata == PRODUCTS[hit.chunk.document_id]
        assert ids(index.dense(workspace_id, query, k=1, filters=where({"source": "crawl"}))) == ["p4:0"]

    def test_keyword_filters_keep_global_scores(self, index: VectorIndex, workspace_id: str) -> None:
        for document_id, text in FRUIT.items():
            metadata = {USER_METADATA_KEY: {"group": "odd" if document_id in ("d1", "d3") else "even"}}
            index.replace_document(
                workspace_id, document_id, [make_chunk(workspace_id, document_id, 0, text, metadata=metadata)]
            )
        unfiltered = {h.chunk.id: h.score for h in index.keyword(workspace_id, "apple date", k=10)}

        odd = index.keyword(workspace_id, "apple date", k=10, filters=where({"group": "odd"}))
        only_d2 = index.keyword(workspace_id, "apple date", k=10, filters=where({"document_id": "d2"}))
        either = index.keyword(
            workspace_id, "apple date", k=10, filters=where({"$or": [{"group": "odd"}, {"document_id": "d2"}]})
        )

        assert ids(odd) == ["d3:0", "d1:0"]
        assert ids(only_d2) == ["d2:0"]
        assert ids(either) == ids(index.keyword(workspace_id, "apple date", k=10))
        for hit in (*odd, *only_d2, *either):
            assert hit.score == pytest.approx(unfiltered[hit.chunk.id], rel=1e-9)
        assert index.keyword(workspace_id, "apple", k=10, filters=where({"group": "none"})) == []

    def test_set_document_fields_changes_what_filters_select(self, index: VectorIndex, workspace_id: str) -> None:
        self._products(index, workspace_id)
        index.replace_document(
            workspace_id,
            "p7",
            [make_chunk(workspace_id, "p7", o, f"common part {o}", metadata={"source": "upload"}) for o in range(3)],
        )
        query = [1.0, 0.0, 0.0]
        before = {h.chunk.id: h for h in index.dense(workspace_id, query, k=20)}

        assert index.set_document_fields(workspace_id, "p7", {"product": "Kettle", "rating": 2}) == 3
        assert index.set_document_fields(workspace_id, "p1", {"product": "Teapot"}) == 1
        assert index.set_document_fields(workspace_id, "missing", {"product": "Kettle"}) == 0

        assert self._selected(index, workspace_id, where({"product": "Kettle"})) == {"p7"}
        assert self._selected(index, workspace_id, where({"rating": {"lt": 4}})) == {"p2", "p7"}
        assert self._selected(index, workspace_id, where({"tags": {"exists": True}})) == {"p2", "p3"}
        after = {h.chunk.id: h for h in index.dense(workspace_id, query, k=20)}
        assert after.keys() == before.keys()
        for chunk_id, hit in after.items():  # text, vectors and the rest of the metadata are untouched
            assert hit.score == pytest.approx(before[chunk_id].score, abs=1e-5)
            assert hit.chunk.text == before[chunk_id].chunk.text
            assert hit.chunk.metadata.get("source") == before[chunk_id].chunk.metadata.get("source")
        assert after["p7:1"].chunk.metadata[USER_METADATA_KEY] == {"product": "Kettle", "rating": 2}
        assert index.count(workspace_id) == len(PRODUCTS) + 3
        keyword = {h.chunk.id: h.score for h in index.keyword(workspace_id, "common part", k=20)}
        assert set(keyword) == set(before)  # the keyword index still finds every chunk

        assert index.set_document_fields(workspace_id, "p7", {}) == 3
        assert self._selected(index, workspace_id, where({"product": "Kettle"})) == set()
        assert self._selected(index, workspace_id, where({"product": {"exists": False}})) == {"p5", "p6", "p7"}

    def test_set_document_fields_in_a_workspace_without_index(self, index: VectorIndex) -> None:
        assert index.set_document_fields(f"m{new_id()[:20]}", "d", {"a": 1}) == 0

    def test_random_filters_agree_with_the_reference_evaluation(self, index: VectorIndex, workspace_id: str) -> None:
        rng = random.Random(19)
        corpus: dict[str, dict[str, Any]] = {}
        for d in range(12):
            document_id = f"r{d}"
            metadata: dict[str, Any] = {"source": rng.choice(("web", "upload"))}
            if rng.random() < 0.9:
                metadata[USER_METADATA_KEY] = _random_fields(rng)
            corpus[document_id] = metadata
            chunks = [
                make_chunk(
                    workspace_id,
                    document_id,
                    o,
                    f"common {document_id} {o}",
                    (1.0, rng.uniform(-1, 1), rng.uniform(-1, 1)),
                    metadata=metadata,
                )
                for o in range(2)
            ]
            index.replace_document(workspace_id, document_id, chunks)
        selective = 0
        for _ in range(60):
            raw = random_filter(rng)
            filters = where(raw)
            expected = {d for d, m in corpus.items() if filters.matches_chunk_metadata(m, document_id=d)}
            assert self._selected(index, workspace_id, filters) == expected, raw
            selective += 0 < len(expected) < len(corpus)
        assert selective >= 20  # the random filters are not all trivial
