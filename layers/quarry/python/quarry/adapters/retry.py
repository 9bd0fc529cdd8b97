"""The one retry policy: bounded exponential backoff with jitter, for PostgreSQL and AWS alike.

Retry number ``n`` (0 for the first retry) waits ``jitter() * min(max_delay, base_delay * multiplier**n)``;
the default jitter is *full* jitter (a uniform fraction of the capped delay), ``no_jitter`` keeps the delays
exact. A policy stops after ``attempts`` calls (``None``: no count) and, with a ``deadline``, never waits
past that many seconds from the first call. ``sleep`` and ``clock`` are injectable, so tests neither wait
nor depend on the time they take.

Two ways to use it:

* ``policy.call(fn, retry_if=...)`` calls ``fn`` until it returns, retrying the failures ``retry_if``
  accepts while attempts and time remain; the last failure is re-raised as it is.
* ``for attempt in policy.tries(): ...`` for loops whose "try again" is not an exception (DynamoDB's
  unprocessed items) or whose give-up needs the attempt count: the iterator sleeps before each attempt
  after the first and ends when the policy is spent, so a ``for ... else`` says "gave up".

Places with their own shape (the RDS Data API's wait for a resuming cluster) use ``delay`` and ``sleep``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["RetryPolicy", "no_jitter"]

T = TypeVar("T")


def no_jitter() -> float:
    """A jitter that keeps every delay exact."""
    return 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait: ``attempts`` calls at most, backoff ``base_delay * multiplier**n``."""

    attempts: int | None = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    deadline: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")
        if self.attempts is None and self.deadline is None:
            raise ValueError("a retry policy without an attempt count needs a deadline")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("retry delays must not be negative, nor shrink")
        if self.deadline is not None and not (math.isfinite(self.deadline) and self.deadline >= 0):
            raise ValueError("a retry deadline must be a finite number of seconds, at least 0")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        return self.jitter() * min(self.max_delay, self.base_delay * self.multiplier**retry)

    def tries(self) -> Iterator[int]:
        """Attempt numbers 1, 2, ...; waits before each one after the first; ends when the policy is spent."""
        started = self.clock()
        attempt = 1
        while True:
            yield attempt
            wait = self._wait(attempt, started)
            if wait is None:
                return
            self.sleep(wait)
            attempt += 1

    def call(
        self,
        fn: Callable[[], T],
        *,
        retry_if: Callable[[Exception], bool],
        on_retry: Callable[[Exception, float], None] | None = None,
    ) -> T:
        """``fn()``, retried after the failures ``retry_if`` accepts; the last failure is re-raised.

        ``on_retry(failure, seconds)`` is told about each wait before it starts (for logging).
        """
        started = self.clock()
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as exc:
                wait = self._wait(attempt, started) if retry_if(exc) else None
                if wait is None:
                    raise
                if on_retry is not None:
                    on_retry(exc, wait)
                self.sleep(wait)
            attempt += 1

    def _wait(self, attempts_made: int, started: float) -> float | None:
        """The wait before the next attempt, or None when no attempt (or no time) is left."""
        if self.attempts is not None and attempts_made >= self.attempts:
            return None
        wait = self.delay(attempts_made - 1)
        if self.deadline is not None:
            remaining = started + self.deadline - self.clock()
            if remaining <= 0:
                return None
            wait = min(wait, remaining)
        return wait
