"""Latency statistics, the threaded concurrency runner and memory measurement."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.bench import (
    RssSampler,
    by_clients,
    current_rss_bytes,
    latency_stats,
    peak_rss_bytes,
    percentile,
    run_concurrent,
    run_levels,
)


def test_percentiles_interpolate_linearly_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # order does not matter
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == pytest.approx(2.5)  # index 1.5
    assert percentile(values, 95) == pytest.approx(3.85)  # index 2.85
    assert percentile(values, 99) == pytest.approx(3.97)  # index 2.97
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    numpy = pytest.importorskip("numpy")
    sample = [float(v) for v in range(1, 101)] + [250.0, 900.0]
    for p in (50, 95, 99):
        assert percentile(sample, p) == pytest.approx(float(numpy.percentile(sample, p)))


def test_latency_stats() -> None:
    stats = latency_stats([10.0, 20.0, 30.0, 40.0, 1000.0])
    assert stats.count == 5
    assert stats.mean_ms == pytest.approx(220.0)
    assert (stats.min_ms, stats.max_ms, stats.p50_ms) == (10.0, 1000.0, 30.0)
    assert stats.p95_ms == pytest.approx(40 + 0.8 * 960)  # index 3.8
    assert "type 7" in stats.to_dict()["percentile_method"]
    for bad in ([], [float("nan")], [-1.0]):
        with pytest.raises(InvalidInput):
            latency_stats(bad)
    with pytest.raises(InvalidInput):
        percentile([1.0], 101)


class SlowCall:
    """Sleeps, and records how many calls ran at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls = 0

    def __call__(self, item: int) -> int:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.seconds)
        with self.lock:
            self.in_flight -= 1
        return item


def test_clients_run_at_once_and_warm_up_is_not_timed() -> None:
    call = SlowCall(0.05)
    result = run_concurrent(call, list(range(8)), clients=4, warmup=2, label="sleep")
    assert call.most_in_flight == 4
    assert call.calls == 2 + 8
    assert result.requests == 8 and result.errors == 0 and result.warmup == 2
    assert result.latency is not None and result.latency.count == 8
    assert result.latency.p50_ms >= 50.0
    assert result.wall_s < 0.35  # two rounds of 50 ms, not eight
    assert result.qps == pytest.approx(8 / result.wall_s)
    assert json.loads(json.dumps(result.to_dict(include_latencies=True)))["label"] == "sleep"


def test_one_client_runs_one_call_at_a_time_and_repeat_multiplies_the_work() -> None:
    call = SlowCall(0.01)
    result = run_concurrent(call, [1, 2, 3], clients=1, warmup=0, repeat=2)
    assert call.most_in_flight == 1
    assert result.requests == 6 and call.calls == 6
    assert result.wall_s >= 0.06


def test_failing_calls_are_counted_not_fatal() -> None:
    def sometimes(item: int) -> None:
        if item % 2:
            raise ValueError(f"odd {item}")

    result = run_concurrent(sometimes, list(range(10)), clients=2, warmup=3)
    assert result.errors == 5 and result.requests == 10
    assert result.error_sample is not None and result.error_sample.startswith("ValueError: odd")
    assert result.latency is not None and result.latency.count == 5

    def always(item: int) -> None:
        raise RuntimeError("down")

    failed = run_concurrent(always, [1, 2], clients=2)
    assert failed.latency is None and failed.qps == 0.0 and failed.errors == 2
    json.dumps(failed.to_dict())


@pytest.mark.parametrize("kwargs", [{"clients": 0}, {"repeat": 0}, {"warmup": -1}])
def test_bad_runner_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        run_concurrent(lambda item: item, [1], **kwargs)
    with pytest.raises(InvalidInput):
        run_concurrent(lambda item: item, [])


def test_memory_is_measured() -> None:
    before = current_rss_bytes()
    assert before is not None and before > 0
    peak = peak_rss_bytes()
    assert peak is not None and peak >= before * 0.5
    with RssSampler(interval_s=0.005) as sampler:
        block = b"x" * (64 * 1024 * 1024)
        time.sleep(0.05)
        del block
    assert sampler.peak_bytes is not None and sampler.peak_bytes - before >= 32 * 1024 * 1024
    result = run_concurrent(lambda item: item, [1, 2, 3], clients=2)
    assert result.peak_rss_mb is not None and result.peak_rss_mb > 0
    assert result.window_peak_rss_mb is not None and result.window_peak_rss_mb > 0


def test_levels_are_keyed_by_client_count() -> None:
    results = run_levels(lambda item: item, [1, 2, 3, 4], clients=(1, 2), warmup=0, label="noop")
    assert [r.clients for r in results] == [1, 2]
    shaped = by_clients(results)
    assert set(shaped) == {"clients_1", "clients_2"}
    assert shaped["clients_2"]["requests"] == 4 and "p99_ms" in shaped["clients_2"]
    json.dumps(shaped)
    with pytest.raises(InvalidInput):
        run_levels(lambda item: item, [1], clients=())
