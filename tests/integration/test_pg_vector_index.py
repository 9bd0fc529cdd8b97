"""What only the pgvector adapter promises: Snowball analysis, exact statistics under concurrency,
schema per workspace, HNSW actually used, input checks."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from quarry.adapters import pgvector as pgvector_module
from quarry.adapters.pg_sql import to_pyformat
from quarry.adapters.pgvector import BM25Params, PgVectorIndex
from quarry.adapters.psycopg_database import PsycopgDatabase
from quarry.errors import InvalidInput
from quarry.filters import Filter
from quarry.models import new_id
from tests.contracts.vector_index_contract import FRUIT, bm25, ids, make_chunk

pytestmark = pytest.mark.integration

Pool = ConnectionPool[psycopg.Connection[Any]]


@pytest.fixture
def index(pg_pool: Pool) -> PgVectorIndex:
    return PgVectorIndex(PsycopgDatabase(pg_pool))


@pytest.fixture
def workspace_id(index: PgVectorIndex) -> Iterator[str]:
    workspace_id = f"pg{new_id()[:16]}"
    index.ensure_workspace(workspace_id, dimensions=3)
    yield workspace_id
    index.drop_workspace(workspace_id)


def _stats_are_exact(pool: Pool, workspace_id: str) -> None:
    """The stored N and total length equal what the chunks and postings say."""
    schema = sql.Identifier(f"ws_{workspace_id}")
    with pool.connection() as conn:
        stored = conn.execute(sql.SQL("SELECT chunk_count, total_length FROM {}.stats").format(schema)).fetchone()
        actual = conn.execute(
            sql.SQL(
                "SELECT (SELECT count(*) FROM {s}.chunks),"
                " (SELECT coalesce(sum(tf), 0) FROM {s}.postings p JOIN {s}.chunks c ON c.id = p.chunk_id)"
            ).format(s=schema)
        ).fetchone()
        orphans = conn.execute(
            sql.SQL("SELECT count(*) FROM {s}.postings WHERE chunk_id NOT IN (SELECT id FROM {s}.chunks)").format(
                s=schema
            )
        ).fetchone()
        inconsistent_dl = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM (SELECT chunk_id FROM {s}.postings GROUP BY chunk_id HAVING sum(tf) <> min(dl)) x"
            ).format(s=schema)
        ).fetchone()
    assert stored == actual
    assert orphans == (0,)
    assert inconsistent_dl == (0,)


def test_snowball_stemming_and_stop_words(index: PgVectorIndex, workspace_id: str) -> None:
    index.replace_document(
        workspace_id, "run", [make_chunk(workspace_id, "run", 0, "The runner was running the races.")]
    )
    index.replace_document(workspace_id, "other", [make_chunk(workspace_id, "other", 0, "Swimming in a lake.")])
    assert ids(index.keyword(workspace_id, "runs", k=5)) == ["run:0"]
    assert ids(index.keyword(workspace_id, "RACE", k=5)) == ["run:0"]
    assert index.keyword(workspace_id, "the was a in", k=5) == []  # stop words only


def test_query_syntax_is_just_text(index: PgVectorIndex, workspace_id: str) -> None:
    for document_id, text in FRUIT.items():
        index.replace_document(workspace_id, document_id, [make_chunk(workspace_id, document_id, 0, text)])
    hits = index.keyword(workspace_id, "apple & (date | !zucchini):* 'quote\" ;--", k=10)
    assert ids(hits)[:1] == ["d3:0"]


def test_custom_bm25_parameters(pg_pool: Pool) -> None:
    lucene = PgVectorIndex(PsycopgDatabase(pg_pool), bm25=BM25Params(k1=1.2, b=0.75))
    workspace_id = f"pg{new_id()[:16]}"
    lucene.ensure_workspace(workspace_id, dimensions=3)
    try:
        for document_id, text in FRUIT.items():
            lucene.replace_document(workspace_id, document_id, [make_chunk(workspace_id, document_id, 0, text)])
        hits = {h.chunk.document_id: h.score for h in lucene.keyword(workspace_id, "apple", k=5)}
        expected = {
            "d2": bm25(2, 3, 2, n=4, avgdl=2.75, k1=1.2, b=0.75),
            "d1": bm25(1, 2, 2, n=4, avgdl=2.75, k1=1.2, b=0.75),
        }
        assert hits == pytest.approx(expected, rel=1e-9)
    finally:
        lucene.drop_workspace(workspace_id)


@pytest.mark.parametrize(("k1", "b"), [(-0.1, 0.4), (0.9, 1.5), (float("nan"), 0.4)])
def test_bm25_parameters_are_checked(k1: float, b: float) -> None:
    with pytest.raises(ValueError):
        BM25Params(k1=k1, b=b)


def test_statistics_stay_exact_through_replaces_and_deletes(
    index: PgVectorIndex, workspace_id: str, pg_pool: Pool
) -> None:
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "the", "of"]
    for step in range(40):
        document_id = f"d{rng.randrange(8)}"
        if rng.random() < 0.2:
            index.delete_document(workspace_id, document_id)
        else:
            chunks = [
                make_chunk(workspace_id, document_id, o, " ".join(rng.choices(words, k=rng.randint(0, 12))))
                for o in range(rng.randint(0, 4))
            ]
            index.replace_document(workspace_id, document_id, chunks)
        if step % 10 == 9:
            _stats_are_exact(pg_pool, workspace_id)
    _stats_are_exact(pg_pool, workspace_id)


def test_concurrent_rewrites_of_one_document_never_duplicate(
    index: PgVectorIndex, workspace_id: str, pg_pool: Pool
) -> None:
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(15):
                size = rng.randint(1, 5)
                chunks = [make_chunk(workspace_id, "hot", o, f"apple {seed} {o}") for o in range(size)]
                index.replace_document(workspace_id, "hot", chunks)
                index.replace_document(
                    workspace_id, f"own{seed}", [make_chunk(workspace_id, f"own{seed}", 0, "banana")]
                )
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    hot = [h.chunk for h in index.keyword(workspace_id, "apple", k=50)]
    assert len(hot) == index.count(workspace_id, document_id="hot")
    assert len({chunk.text.split()[1] for chunk in hot}) == 1  # all from one writer's last set
    assert sorted(c.ordinal for c in hot) == list(range(len(hot)))
    assert index.count(workspace_id) == len(hot) + 4
    _stats_are_exact(pg_pool, workspace_id)


def test_each_workspace_has_its_own_schema(index: PgVectorIndex, pg_pool: Pool, workspace_id: str) -> None:
    with pg_pool.connection() as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (f"ws_{workspace_id}",)
        ).fetchall()
    assert [t[0] for t in tables] == ["chunks", "postings", "stats"]
    index.drop_workspace(workspace_id)
    with pg_pool.connection() as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (f"ws_{workspace_id}",)).fetchone() is None


@pytest.mark.parametrize("bad", ["", "has space", "semi;colon", "quote'", "a" * 61, "-leading-dash", "ünï"])
def test_workspace_ids_are_validated(index: PgVectorIndex, bad: str) -> None:
    with pytest.raises(InvalidInput):
        index.ensure_workspace(bad, dimensions=3)
    with pytest.raises(InvalidInput):
        index.keyword(bad, "x", k=1)


@pytest.mark.parametrize("dimensions", [0, -3, 2001])
def test_dimensions_are_validated(index: PgVectorIndex, dimensions: int) -> None:
    with pytest.raises(InvalidInput):
        index.ensure_workspace(f"pg{new_id()[:16]}", dimensions=dimensions)


def test_text_postgres_cannot_store_is_invalid_input(index: PgVectorIndex, workspace_id: str) -> None:
    with pytest.raises(InvalidInput):
        index.replace_document(workspace_id, "nul", [make_chunk(workspace_id, "nul", 0, "a\x00b")])
    with pytest.raises(InvalidInput):
        index.replace_document(
            workspace_id, "meta", [make_chunk(workspace_id, "meta", 0, "x", metadata={"when": object()})]
        )
    assert index.count(workspace_id) == 0


def test_dense_search_uses_the_hnsw_index(index: PgVectorIndex, pg_pool: Pool, workspace_id: str) -> None:
    rng = random.Random(5)
    for d in range(20):
        chunks = [
            make_chunk(
                workspace_id,
                f"d{d}",
                o,
                "x",
                (rng.random(), rng.random(), rng.random()),
                metadata={"fields": {"g": o % 3}},
            )
            for o in range(25)
        ]
        index.replace_document(workspace_id, f"d{d}", chunks)
    index.optimize(workspace_id)
    # At 500 tiny vectors the planner rightly prefers an exact scan; make it show whether the
    # adapter's query *can* use the HNSW index (a wrong operator or ORDER BY expression could not).
    query = pgvector_module._Tables(f"ws_{workspace_id}").format(pgvector_module._DENSE, where="TRUE")
    with pg_pool.connection() as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        params = {"vector": "[1,0,0]", "k": 10, "ef_search": "40"}
        plan = conn.execute("EXPLAIN " + to_pyformat(query), params).fetchall()
    assert "Index Scan using chunks_embedding" in "\n".join(row[0] for row in plan)
    hits = index.dense(workspace_id, [1.0, 0.0, 0.0], k=100, filters=Filter.parse({"g": 1}))
    assert len(hits) == 100  # of the 160 chunks with g = 1: ef_search follows k, iterative scans pass the filter
    assert all(h.chunk.metadata["fields"]["g"] == 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_replace_documents_is_one_all_or_nothing_batch(index: PgVectorIndex, workspace_id: str, pg_pool: Pool) -> None:
    index.replace_document(workspace_id, "b", [make_chunk(workspace_id, "b", o, "apple old") for o in range(3)])
    index.replace_documents(
        workspace_id,
        {
            "a": [make_chunk(workspace_id, "a", 0, "apple new")],
            "b": [make_chunk(workspace_id, "b", 0, "banana new")],
            "c": [],
        },
    )
    assert index.count(workspace_id) == 2
    assert ids(index.keyword(workspace_id, "apple", k=5)) == ["a:0"]
    assert ids(index.keyword(workspace_id, "banana", k=5)) == ["b:0"]

    with pytest.raises(InvalidInput):
        index.replace_documents(
            workspace_id,
            {
                "a": [make_chunk(workspace_id, "a", 0, "cherry")],
                "d": [make_chunk(workspace_id, "d", 0, "wrong size", (1.0, 0.0))],
            },
        )
    assert ids(index.keyword(workspace_id, "apple", k=5)) == ["a:0"]  # the valid half was not written either
    assert index.count(workspace_id) == 2
    _stats_are_exact(pg_pool, workspace_id)
