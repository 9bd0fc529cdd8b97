"""The one retry policy: backoff, jitter, attempt counts and deadlines, on a fake clock that never sleeps."""

from __future__ import annotations

import pytest

from quarry.adapters.retry import RetryPolicy, no_jitter


class FakeClock:
    """``sleep`` moves ``now`` forward; ``work`` stands for time a call itself takes."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def work(self, seconds: float) -> None:
        self.now += seconds


def exact(clock: FakeClock, **settings: object) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep, clock=clock, jitter=no_jitter, **settings)  # type: ignore[arg-type]


class Outage(Exception):
    pass


def test_delays_are_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=no_jitter)
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=lambda: 0.5).delay(2) == 1.0
    assert RetryPolicy(base_delay=0.2, multiplier=1.0, jitter=no_jitter).delay(7) == 0.2
    full = RetryPolicy(base_delay=0.5, max_delay=4.0)  # full jitter: anywhere between 0 and the capped delay
    assert all(0.0 <= full.delay(n) <= 4.0 for n in range(20))


@pytest.mark.parametrize(
    "settings",
    [
        {"attempts": 0},
        {"attempts": None},  # neither a count nor a deadline: it would never give up
        {"base_delay": -1.0},
        {"max_delay": -1.0},
        {"multiplier": 0.5},
        {"deadline": -1.0},
        {"deadline": float("inf")},
    ],
)
def test_a_policy_that_cannot_end_or_waits_backwards_is_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**settings)  # type: ignore[arg-type]


def test_call_retries_accepted_failures_then_returns() -> None:
    clock = FakeClock()
    failures = iter([Outage("starting"), Outage("resuming")])

    def flaky() -> str:
        failure = next(failures, None)
        if failure:
            raise failure
        return "up"

    told: list[tuple[str, float]] = []
    policy = exact(clock, attempts=5, base_delay=0.5)
    result = policy.call(
        flaky, retry_if=lambda exc: isinstance(exc, Outage), on_retry=lambda e, s: told.append((str(e), s))
    )
    assert result == "up"
    assert clock.slept == [0.5, 1.0]
    assert told == [("starting", 0.5), ("resuming", 1.0)]


def test_call_gives_up_with_the_last_failure_after_its_attempts() -> None:
    clock = FakeClock()
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise Outage(f"attempt {calls}")

    with pytest.raises(Outage, match="attempt 5"):
        exact(clock, attempts=5, base_delay=1.0, max_delay=3.0).call(down, retry_if=lambda exc: True)
    assert clock.slept == [1.0, 2.0, 3.0, 3.0]  # no wait after the last attempt


def test_call_does_not_retry_other_failures() -> None:
    clock = FakeClock()

    def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        exact(clock).call(broken, retry_if=lambda exc: isinstance(exc, Outage))
    assert clock.slept == []


def test_a_deadline_bounds_the_waiting_and_the_last_wait_is_cut_to_it() -> None:
    clock = FakeClock()
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        clock.work(0.3)
        raise Outage("down")

    policy = exact(clock, attempts=None, base_delay=1.0, multiplier=1.0, deadline=3.0)
    with pytest.raises(Outage):
        policy.call(down, retry_if=lambda exc: True)
    # 0.3 work + 1 wait, 0.3 + 1, 0.3 + the 0.1 left; the fourth call ends past the deadline.
    assert clock.slept == pytest.approx([1.0, 1.0, 0.1])
    assert calls == 4


def test_tries_count_attempts_and_wait_between_them_only() -> None:
    clock = FakeClock()
    policy = exact(clock, attempts=4, base_delay=0.05, max_delay=1.0)
    assert list(policy.tries()) == [1, 2, 3, 4]
    assert clock.slept == pytest.approx([0.05, 0.1, 0.2])


def test_tries_stop_waiting_when_the_loop_is_left() -> None:
    clock = FakeClock()
    for attempt in exact(clock, attempts=8).tries():
        if attempt == 2:
            break
    else:
        pytest.fail("the loop gave up")
    assert clock.slept == [0.5]
