"""The ``UsageLedger`` contract: per-day counters per user and per workspace, counted at most once per answer."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from quarry.models import UsageEntry, UsageScope, UsageTotal, new_id
from quarry.ports import UsageLedger

DAY = date(2026, 3, 14)


def make_entry(
    user: str,
    workspace_id: str | None,
    *,
    model: str = "amazon.nova-lite-v1:0",
    prompt: int = 1000,
    completion: int = 100,
    cost: float = 0.000084,
    at: datetime | None = None,
    message_id: str | None = None,
) -> UsageEntry:
    return UsageEntry(
        message_id=message_id or new_id(),
        user=user,
        workspace_id=workspace_id,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
        at=at or datetime(DAY.year, DAY.month, DAY.day, 12, 0, tzinfo=UTC),
    )


def _ids() -> tuple[str, str]:
    return f"user-{new_id()[:8]}", f"ws-{new_id()[:8]}"


class UsageLedgerContract:
    # moto's in-process backend is not thread-safe (its dicts change under concurrent requests); on DynamoDB
    # the increments are ADD updates, atomic by the service's own guarantee.
    threads_share_the_backend: bool = True

    @pytest.fixture
    def usage_ledger(self) -> UsageLedger:
        raise NotImplementedError("supply a usage_ledger fixture")

    def test_is_a_usage_ledger(self, usage_ledger: UsageLedger) -> None:
        assert isinstance(usage_ledger, UsageLedger)

    def test_an_answer_adds_to_its_user_and_workspace_for_its_day_and_model(self, usage_ledger: UsageLedger) -> None:
        user, ws = _ids()
        assert usage_ledger.record(make_entry(user, ws, prompt=1000, completion=100, cost=0.000084))
        assert usage_ledger.record(make_entry(user, ws, prompt=500, completion=50, cost=0.000042))
        want = UsageTotal(DAY, "amazon.nova-lite-v1:0", 2, 1500, 150, 0.000126)
        for scope, key in ((UsageScope.USER, user), (UsageScope.WORKSPACE, ws)):
            [row] = usage_ledger.totals(scope, key, since=DAY, until=DAY)
            assert (row.day, row.model, row.requests, row.prompt_tokens, row.completion_tokens) == (
                want.day,
                want.model,
                want.requests,
                want.prompt_tokens,
                want.completion_tokens,
            )
            assert row.cost_usd == pytest.approx(want.cost_usd, abs=1e-12)

    def test_a_redelivered_answer_counts_nothing(self, usage_ledger: UsageLedger) -> None:
        user, ws = _ids()
        entry = make_entry(user, ws)
        assert usage_ledger.record(entry) is True
        assert usage_ledger.record(entry) is False
        assert usage_ledger.record(make_entry(user, ws, message_id=entry.message_id, prompt=9)) is False
        [row] = usage_ledger.totals(UsageScope.USER, user, since=DAY, until=DAY)
        assert (row.requests, row.prompt_tokens) == (1, 1000)

    def test_days_and_models_are_separate_rows_and_the_range_is_inclusive(self, usage_ledger: UsageLedger) -> None:
        user, ws = _ids()
        noon = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
        for offset in range(-1, 3):
            usage_ledger.record(make_entry(user, ws, at=noon + timedelta(days=offset)))
        usage_ledger.record(make_entry(user, ws, model="anthropic.claude-3-haiku-20240307-v1:0", cost=0.0004))
        rows = usage_ledger.totals(UsageScope.USER, user, since=DAY, until=DAY + timedelta(days=1))
        assert [(r.day, r.model, r.requests) for r in rows] == [
            (DAY, "amazon.nova-lite-v1:0", 1),
            (DAY, "anthropic.claude-3-haiku-20240307-v1:0", 1),
            (DAY + timedelta(days=1), "amazon.nova-lite-v1:0", 1),
        ]

    def test_the_day_is_the_utc_day(self, usage_ledger: UsageLedger) -> None:
        user, ws = _ids()
        late_evening_in_new_york = datetime(2026, 3, 14, 22, 30, tzinfo=UTC) + timedelta(hours=4)  # 02:30Z the 15th
        usage_ledger.record(make_entry(user, ws, at=late_evening_in_new_york.astimezone()))
        rows = usage_ledger.totals(UsageScope.USER, user, since=DAY, until=DAY + timedelta(days=1))
        assert [r.day for r in rows] == [date(2026, 3, 15)]

    def test_scopes_do_not_leak(self, usage_ledger: UsageLedger) -> None:
        alice, ws = _ids()
        bob, other_ws = _ids()
        usage_ledger.record(make_entry(alice, ws))
        usage_ledger.record(make_entry(bob, ws))
        usage_ledger.record(make_entry(bob, None))  # no workspace: counted for the user only
        usage_ledger.record(make_entry(bob, other_ws))
        assert [r.requests for r in usage_ledger.totals(UsageScope.USER, alice, since=DAY, until=DAY)] == [1]
        assert [r.requests for r in usage_ledger.totals(UsageScope.USER, bob, since=DAY, until=DAY)] == [3]
        assert [r.requests for r in usage_ledger.totals(UsageScope.WORKSPACE, ws, since=DAY, until=DAY)] == [2]
        assert [r.requests for r in usage_ledger.totals(UsageScope.WORKSPACE, other_ws, since=DAY, until=DAY)] == [1]
        assert usage_ledger.totals(UsageScope.WORKSPACE, alice, since=DAY, until=DAY) == []

    def test_concurrent_answers_lose_no_increment(self, usage_ledger: UsageLedger) -> None:
        if not self.threads_share_the_backend:
            pytest.skip("the backing store's emulator is not thread-safe")
        user, ws = _ids()
        errors: list[BaseException] = []

        def answer_five() -> None:
            try:
                for _ in range(5):
                    usage_ledger.record(make_entry(user, ws, prompt=10, completion=1, cost=0.001))
            except BaseException as exc:  # re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=answer_five) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        [row] = usage_ledger.totals(UsageScope.WORKSPACE, ws, since=DAY, until=DAY)
        assert (row.requests, row.prompt_tokens, row.completion_tokens) == (20, 200, 20)
        assert row.cost_usd == pytest.approx(0.02)
