"""Behaviour every Cancellations adapter must have (fixture: ``cancellations``)."""

from __future__ import annotations

from typing import Any

from quarry.ports import Cancellations


class CancellationsContract:
    def test_is_a_cancellations_store(self, cancellations: Any) -> None:
        assert isinstance(cancellations, Cancellations)

    def test_a_flag_is_taken_exactly_once(self, cancellations: Any) -> None:
        assert cancellations.take("s1") is False
        cancellations.cancel("s1")
        assert cancellations.take("s2") is False
        assert cancellations.take("s1") is True
        assert cancellations.take("s1") is False

    def test_clear_drops_a_pending_flag_and_is_idempotent(self, cancellations: Any) -> None:
        cancellations.cancel("s3")
        cancellations.clear("s3")
        cancellations.clear("s3")
        assert cancellations.take("s3") is False

    def test_cancelling_twice_is_one_flag(self, cancellations: Any) -> None:
        cancellations.cancel("s4")
        cancellations.cancel("s4")
        assert cancellations.take("s4") is True
        assert cancellations.take("s4") is False
