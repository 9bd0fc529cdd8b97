from __future__ import annotations

from quarry.local.throttle import TokenBuckets


def test_bursts_then_refills_at_the_rate_per_user() -> None:
    now = [100.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("alice") == 0.5  # one token back after half a second at 2/s
    assert buckets.take("bob") == 0.0  # other users have their own bucket
    now[0] += 0.5
    assert buckets.take("alice") == 0.0
    now[0] += 100
    assert [buckets.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]  # never more than the burst
    assert buckets.take("alice") > 0
