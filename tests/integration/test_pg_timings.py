"""Timings of the pgvector index on a synthetic 5,000-chunk workspace (printed, never asserted).

Run: ``pytest tests/integration/test_pg_timings.py -m slow -s``. The figures depend on the machine
and its load; the assertions only check that every query returned its k hits.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from quarry.adapters.pgvector import PgVectorIndex
from quarry.adapters.psycopg_database import PsycopgDatabase
from quarry.filters import Filter
from quarry.models import Chunk

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHUNKS = 5000
PER_DOCUMENT = 20
DIMENSIONS = 384
WORDS_PER_CHUNK = 120
QUERIES = 200
K = 50


def _vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _p50(timings: list[float]) -> float:
    return statistics.median(timings) * 1000


def _timed(fn: Callable[[], list[Any]]) -> tuple[float, int]:
    start = time.perf_counter()
    hits = fn()
    return time.perf_counter() - start, len(hits)


def test_dense_and_keyword_timings_on_5k_chunks(pg_pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
    rng = random.Random(42)
    vocabulary = _vocabulary(rng)
    zipf = [1 / rank for rank in range(1, len(vocabulary) + 1)]  # word frequencies as in natural text
    vectors = np.random.default_rng(42).standard_normal((CHUNKS, DIMENSIONS)).astype(np.float32)
    index = PgVectorIndex(PsycopgDatabase(pg_pool))
    workspace = "timings5k"
    index.drop_workspace(workspace)
    index.ensure_workspace(workspace, dimensions=DIMENSIONS)

    start = time.perf_counter()
    for d in range(CHUNKS // PER_DOCUMENT):
        chunks = []
        for o in range(PER_DOCUMENT):
            n = d * PER_DOCUMENT + o
            text = " ".join(rng.choices(vocabulary, weights=zipf, k=WORDS_PER_CHUNK))
            chunks.append(
                Chunk(
                    workspace,
                    f"doc{d}",
                    o,
                    text,
                    0,
                    len(text),
                    metadata={"fields": {"group": n % 10}},
                    embedding=tuple(vectors[n]),
                )
            )
        index.replace_document(workspace, f"doc{d}", chunks)
    ingest = time.perf_counter() - start
    index.optimize(workspace)
    assert index.count(workspace) == CHUNKS

    queries = [" ".join(rng.choices(vocabulary[50:5000], k=rng.randint(3, 8))) for _ in range(QUERIES)]
    probes = np.random.default_rng(7).standard_normal((QUERIES, DIMENSIONS)).astype(np.float32).tolist()
    group_3 = Filter.parse({"group": 3})
    runs: dict[str, list[float]] = {"dense": [], "keyword": [], "dense+filter": [], "keyword+filter": []}
    for query, probe in zip(queries, probes, strict=True):
        searches: dict[str, Callable[[], list[Any]]] = {
            "dense": partial(index.dense, workspace, probe, k=K),
            "keyword": partial(index.keyword, workspace, query, k=K),
            "dense+filter": partial(index.dense, workspace, probe, k=K, filters=group_3),
            "keyword+filter": partial(index.keyword, workspace, query, k=K, filters=group_3),
        }
        for name, search in searches.items():
            elapsed, found = _timed(search)
            runs[name].append(elapsed)
            if name.startswith("dense"):
                assert found == K

    print(f"\ningest: {CHUNKS} chunks in {ingest:.1f}s = {ingest / CHUNKS * 1000:.2f} ms/chunk")
    for name, timings in runs.items():
        print(f"{name:>15}: p50 {_p50(timings):6.2f} ms   p95 {np.percentile(timings, 95) * 1000:6.2f} ms   (k={K})")
    index.drop_workspace(workspace)
