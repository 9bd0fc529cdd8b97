"""Benchmark primitives: latency statistics, a threaded concurrency runner and memory measurement.

Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's default
``method="linear"``): for sorted values ``v[0..n-1]`` the p-th percentile is at fractional index
``h = (n - 1) * p / 100``, i.e. ``v[floor(h)] + (h - floor(h)) * (v[floor(h) + 1] - v[floor(h)])``.

Everything returned is a dataclass with ``to_dict()`` giving plain JSON-serialisable values, except
:func:`measure_filtered_search`, which returns the JSON ``quarry bench search --filtered`` prints.
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from quarry.errors import InvalidInput

if TYPE_CHECKING:
    from quarry.models import Workspace
    from quarry.wiring import Services

__all__ = [
    "PERCENTILE_METHOD",
    "BenchResult",
    "LatencyStats",
    "RssSampler",
    "ScalingPoint",
    "by_clients",
    "current_rss_bytes",
    "latency_stats",
    "measure_filtered_search",
    "peak_rss_bytes",
    "percentile",
    "run_concurrent",
    "run_levels",
]

T = TypeVar("T")

PERCENTILE_METHOD = "linear interpolation between closest ranks (Hyndman-Fan type 7, numpy 'linear')"
_MB = 1024 * 1024


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        raise InvalidInput("percentile of an empty sample")
    if not 0.0 <= p <= 100.0:
        raise InvalidInput(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True, slots=True)
class LatencyStats:
    count: int
    mean_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    method: str = PERCENTILE_METHOD

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "percentile_method": self.method,
        }


def latency_stats(latencies_ms: Sequence[float]) -> LatencyStats:
    if not latencies_ms:
        raise InvalidInput("no latencies to summarise")
    if any(not math.isfinite(value) or value < 0 for value in latencies_ms):
        raise InvalidInput("latencies must be finite, non-negative numbers")
    return LatencyStats(
        count=len(latencies_ms),
        mean_ms=sum(latencies_ms) / len(latencies_ms),
        min_ms=min(latencies_ms),
        max_ms=max(latencies_ms),
        p50_ms=percentile(latencies_ms, 50),
        p95_ms=percentile(latencies_ms, 95),
        p99_ms=percentile(latencies_ms, 99),
    )


# --------------------------------------------------------------------------- memory


def peak_rss_bytes() -> int | None:
    """The process's lifetime peak resident set size (``getrusage``), None where unavailable."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux


def current_rss_bytes() -> int | None:
    """The resident set size now: psutil when installed, else ``/proc/self/statm``, else None."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class RssSampler:
    """Samples the current RSS in a background thread; ``peak_bytes`` is the highest seen in the window."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        value = current_rss_bytes()
        if value is not None and (self.peak_bytes is None or value > self.peak_bytes):
            self.peak_bytes = value

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float | None:
        return None if self.peak_bytes is None else self.peak_bytes / _MB


# --------------------------------------------------------------------------- concurrency runner


@dataclass(frozen=True, slots=True)
class BenchResult:
    label: str
    clients: int
    requests: int
    errors: int
    wall_s: float
    qps: float
    latency: LatencyStats | None
    latencies_ms: tuple[float, ...]
    peak_rss_mb: float | None
    window_peak_rss_mb: float | None
    warmup: int
    error_sample: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, include_latencies: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "error_sample": self.error_sample,
            "wall_s": self.wall_s,
            "qps": self.qps,
            **(self.latency.to_dict() if self.latency else {}),
            "peak_rss_mb": self.peak_rss_mb,
            "window_peak_rss_mb": self.window_peak_rss_mb,
            "warmup": self.warmup,
            "params": self.params,
        }
        if include_latencies:
            out["latencies_ms"] = list(self.latencies_ms)
        return out


@dataclass(frozen=True, slots=True)
class ScalingPoint:
    """One measurement of how a cost grows: throughput and latency at a corpus size."""

    corpus_size: int
    qps: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    clients: int = 1
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "corpus_size": self.corpus_size,
            "qps": self.qps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "clients": self.clients,
            "label": self.label,
        }


class _Work(Generic[T]):
    """The shared queue of timed calls, handed out one at a time to the client threads."""

    def __init__(self, fn: Callable[[T], object], items: Sequence[T]) -> None:
        self.fn = fn
        self.items = items
        self.next = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def take(self) -> tuple[T, ...]:
        """The next item as a one-tuple, or an empty tuple when the work is done."""
        with self.lock:
            if self.next >= len(self.items):
                return ()
            self.next += 1
            return (self.items[self.next - 1],)

    def client(self, start: threading.Barrier) -> None:
        start.wait()
        while True:
            taken = self.take()
            if not taken:
                return
            began = time.perf_counter()
            try:
                self.fn(taken[0])
            except Exception as exc:  # a failing call is counted, never fatal to the run
                with self.lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed_ms = (time.perf_counter() - began) * 1000.0
            with self.lock:
                self.latencies.append(elapsed_ms)


def _warm_up(fn: Callable[[T], object], inputs: Sequence[T], count: int) -> None:
    for index in range(count):
        try:
            fn(inputs[index % len(inputs)])
        except Exception:  # warm-up failures show up again, counted, in the timed phase
            continue


def run_concurrent(
    fn: Callable[[T], object],
    inputs: Sequence[T],
    *,
    clients: int = 1,
    warmup: int | None = None,
    repeat: int = 1,
    label: str = "",
    params: dict[str, Any] | None = None,
) -> BenchResult:
    """Call ``fn`` on every input (``repeat`` times over) from ``clients`` threads at once.

    ``warmup`` calls (default ``min(5, len(inputs))``) run first, one after another, and are not timed.
    Latency is per call; ``qps`` is successful calls over the wall time of the timed phase, measured from
    the moment all client threads are released together until the last call returns.
    """
    if clients < 1:
        raise InvalidInput("clients must be at least 1")
    if repeat < 1:
        raise InvalidInput("repeat must be at least 1")
    if not inputs:
        raise InvalidInput("no inputs to run")
    warm = min(5, len(inputs)) if warmup is None else warmup
    if warm < 0:
        raise InvalidInput("warmup must not be negative")
    _warm_up(fn, inputs, warm)

    work: _Work[T] = _Work(fn, list(inputs) * repeat)
    start = threading.Barrier(clients + 1)
    threads = [
        threading.Thread(target=work.client, args=(start,), name=f"bench-client-{n}", daemon=True)
        for n in range(clients)
    ]
    with RssSampler() as sampler:
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        wall_s = time.perf_counter() - began
    peak = peak_rss_bytes()
    return BenchResult(
        label=label,
        clients=clients,
        requests=len(work.items),
        errors=len(work.errors),
        error_sample=work.errors[0] if work.errors else None,
        wall_s=wall_s,
        qps=len(work.latencies) / wall_s if wall_s > 0 else 0.0,
        latency=latency_stats(work.latencies) if work.latencies else None,
        latencies_ms=tuple(work.latencies),
        peak_rss_mb=None if peak is None else peak / _MB,
        window_peak_rss_mb=sampler.peak_mb,
        warmup=warm,
        params=dict(params or {}),
    )


def run_levels(
    fn: Callable[[T], object],
    inputs: Sequence[T],
    *,
    clients: Sequence[int] = (1, 8),
    warmup: int | None = None,
    repeat: int = 1,
    label: str = "",
    params: dict[str, Any] | None = None,
) -> list[BenchResult]:
    """``run_concurrent`` once per concurrency level, in the order given."""
    if not clients:
        raise InvalidInput("give at least one concurrency level")
    return [
        run_concurrent(fn, inputs, clients=n, warmup=warmup, repeat=repeat, label=label, params=params) for n in clients
    ]


def by_clients(results: Sequence[BenchResult]) -> dict[str, dict[str, Any]]:
    """``{"clients_1": {...}, "clients_8": {...}}``: the shape the gates and the docs read."""
    return {f"clients_{result.clients}": result.to_dict() for result in results}


# --------------------------------------------------------------------------- filtered search


FILTERED_SEARCH_TARGET = 1.5  # filtered p50 and p95 at most this many times the unfiltered ones


def measure_filtered_search(
    services: Services,
    workspace: Workspace,
    document_ids: Sequence[str],
    queries: Sequence[str],
    *,
    fraction: float = 0.1,
    top_k: int = 10,
    depth: int = 50,
    key: str = "bench_sample",
    seed: int = 19,
    warmup: int = 5,
) -> dict[str, Any]:
    """What a selective filter costs: the same searches with and without ``{key: true}``, which ``fraction`` of
    the documents carry.

    The sample is tagged in the index in place (``VectorIndex.set_document_fields``, timed; the catalog is not
    touched, search does not read metadata from it). Then, per query and interleaved (the order alternating,
    so drifting load hits both sides alike), unfiltered and filtered: ``dense`` and ``keyword`` on the index at
    ``k = depth`` (query vectors embedded beforehand, so only the index is timed) and the whole hybrid search
    at ``top_k``. Also counted: filtered hits outside the sample (must be 0) and filtered dense searches that
    returned fewer than ``depth`` chunks although the sample holds more (a starved filtered k-NN search).
    """
    from quarry.filters import Filter
    from quarry.models import SearchMode, SearchRequest

    if not 0 < fraction <= 1:
        raise InvalidInput("fraction must be within (0, 1]")
    if not document_ids or not queries:
        raise InvalidInput("need documents and queries")
    index = services.adapters.vector_index
    sample = set(random.Random(seed).sample(sorted(document_ids), max(1, round(len(document_ids) * fraction))))
    started = time.perf_counter()
    tagged_chunks = sum(index.set_document_fields(workspace.id, d, {key: True}) for d in sorted(sample))
    tagging_s = time.perf_counter() - started
    selected = Filter.parse({key: True})
    embedder = services.models.embedders.get(workspace.embedding_model)
    vectors = [embedder.embed_query(text) for text in queries]
    ws = workspace.id
    checks = {"foreign_hits": 0, "short_dense": 0}

    def dense(i: int, filters: Filter | None) -> None:
        hits = index.dense(ws, vectors[i], k=depth, filters=filters)
        if filters is not None:
            checks["foreign_hits"] += sum(h.chunk.document_id not in sample for h in hits)
            checks["short_dense"] += len(hits) < min(depth, tagged_chunks)

    def keyword(i: int, filters: Filter | None) -> None:
        hits = index.keyword(ws, queries[i], k=depth, filters=filters)
        if filters is not None:
            checks["foreign_hits"] += sum(h.chunk.document_id not in sample for h in hits)

    def hybrid(i: int, filters: Filter | None) -> None:
        request = SearchRequest(
            workspace_id=ws, query=queries[i], top_k=top_k, mode=SearchMode.HYBRID, filters=filters or Filter()
        )
        result = services.search.search_workspace(workspace, request)
        if filters is not None:
            checks["foreign_hits"] += sum(h.chunk.document_id not in sample for h in result.hits)

    runs: dict[str, dict[str, Any]] = {}
    for name, search in (
        (f"dense k={depth}", dense),
        (f"keyword k={depth}", keyword),
        (f"hybrid top_k={top_k}", hybrid),
    ):
        runs[name] = _paired_latencies(search, len(queries), selected, warmup=warmup)
    return {
        "documents": len(document_ids),
        "tagged_documents": len(sample),
        "tagged_chunks": tagged_chunks,
        "chunks": index.count(ws),
        "filter": selected.to_json(),
        "tagging_s": round(tagging_s, 3),
        "queries": len(queries),
        "target_ratio": FILTERED_SEARCH_TARGET,
        "runs": runs,
        **checks,
    }


def _paired_latencies(search: Callable[[int, Any], None], count: int, selected: Any, *, warmup: int) -> dict[str, Any]:
    for i in range(min(warmup, count)):
        search(i, None)
        search(i, selected)
    timings: dict[bool, list[float]] = {False: [], True: []}
    for i in range(count):
        for filtered in (False, True) if i % 2 == 0 else (True, False):
            began = time.perf_counter()
            search(i, selected if filtered else None)
            timings[filtered].append((time.perf_counter() - began) * 1000.0)
    plain, narrowed = latency_stats(timings[False]), latency_stats(timings[True])
    ratio_p50 = narrowed.p50_ms / plain.p50_ms if plain.p50_ms else math.inf
    ratio_p95 = narrowed.p95_ms / plain.p95_ms if plain.p95_ms else math.inf
    return {
        "unfiltered": plain.to_dict(),
        "filtered": narrowed.to_dict(),
        "ratio_p50": round(ratio_p50, 3),
        "ratio_p95": round(ratio_p95, 3),
        "target_met": max(ratio_p50, ratio_p95) <= FILTERED_SEARCH_TARGET,
    }
