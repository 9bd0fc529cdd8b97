"""Concurrent query embeddings share forward passes, and every caller gets its own vector."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from quarry.adapters.st_models import MicroBatcher


def test_one_caller_is_encoded_alone() -> None:
    calls: list[list[str]] = []
    batcher = MicroBatcher(lambda texts: calls.append(texts) or [[float(len(t))] for t in texts])
    assert batcher("abc") == [3.0]
    assert calls == [["abc"]]


def test_concurrent_callers_are_batched_and_each_gets_its_own_result() -> None:
    calls: list[list[str]] = []
    first_started = threading.Event()

    def encode(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        first_started.set()
        time.sleep(0.05)  # a forward pass: others arrive meanwhile
        return [[float(t)] for t in texts]

    batcher = MicroBatcher(encode, max_batch=32)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(batcher, "0")
        first_started.wait(5)
        rest = [pool.submit(batcher, str(i)) for i in range(1, 8)]
        results = [first.result(5)] + [f.result(5) for f in rest]
    assert results == [[float(i)] for i in range(8)]
    assert len(calls) == 2 and sorted(calls[1]) == [str(i) for i in range(1, 8)]


def test_a_failing_batch_fails_its_callers_and_the_next_one_works() -> None:
    state = {"fail": True}

    def encode(texts: list[str]) -> list[list[float]]:
        if state.pop("fail", False):
            raise RuntimeError("model crashed")
        return [[1.0] for _ in texts]

    batcher = MicroBatcher(encode)
    with pytest.raises(RuntimeError, match="model crashed"):
        batcher("a")
    assert batcher("b") == [1.0]


def test_batches_are_capped() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def encode(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        gate.wait(5)
        return [[0.0] for _ in texts]

    batcher = MicroBatcher(encode, max_batch=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(batcher, str(i)) for i in range(7)]
        time.sleep(0.2)
        gate.set()
        for f in futures:
            f.result(5)
    assert sum(calls) == 7 and max(calls) <= 3
