"""The per-user daily token allowance on the fakes: under, at and over it; the UTC day boundary; no allowance;
and the chat use cases refusing before anything is stored or any model is called."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from quarry.adapters.memory_usage import InMemoryUsageLedger
from quarry.errors import BudgetExhausted, Throttled
from quarry.local.cancellations import InMemoryCancellations
from quarry.models import UsageEntry, new_id
from quarry.protocol import ChatAction, ChatJob
from quarry.services.budget import TokenBudget
from quarry.services.chat import AlreadyAnswered, ChatRequest
from quarry.services.chat_stream import ChatStreamService
from tests.fakes import RecordingBus, RecordingNotifier
from tests.unit.services.chat_fixtures import OWNER, QUESTION, READER, WS, Chat, build_chat

BUDGET = 1000
NOON = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def spend(
    ledger: InMemoryUsageLedger, user: str, tokens: int, *, at: datetime = NOON, prompt_share: float = 0.75
) -> None:
    """One answer's tokens in the ledger, split between input and output (both count)."""
    prompt = int(tokens * prompt_share)
    ledger.record(
        UsageEntry(
            message_id=new_id(),
            user=user,
            workspace_id=None,
            model="m",
            prompt_tokens=prompt,
            completion_tokens=tokens - prompt,
            cost_usd=0.0,
            at=at,
        )
    )


def budget_of(ledger: InMemoryUsageLedger, clock: Clock, daily_tokens: int | None = BUDGET) -> TokenBudget:
    return TokenBudget(ledger=ledger, daily_tokens=daily_tokens, clock=clock)


# --------------------------------------------------------------------------- the allowance


def test_under_the_allowance_an_answer_may_start_and_what_is_left_is_reported() -> None:
    ledger, clock = InMemoryUsageLedger(), Clock(NOON)
    spend(ledger, OWNER, 600)
    spend(ledger, OWNER, 399)
    budget = budget_of(ledger, clock)

    budget.check(OWNER)  # 999 < 1000

    allowance = budget.today(OWNER)
    assert allowance is not None
    assert (allowance.budget, allowance.used, allowance.left, allowance.exhausted) == (1000, 999, 1, False)
    assert allowance.renews_at == datetime(2026, 3, 15, tzinfo=UTC)


def test_at_the_allowance_the_next_answer_is_refused_until_utc_midnight() -> None:
    ledger, clock = InMemoryUsageLedger(), Clock(NOON + timedelta(hours=9, minutes=30))  # 21:30 UTC
    spend(ledger, OWNER, 1000)
    budget = budget_of(ledger, clock)

    with pytest.raises(BudgetExhausted) as refused:
        budget.check(OWNER)

    error = refused.value
    assert isinstance(error, Throttled) and (error.status, error.code) == (429, "budget_exhausted")
    assert error.retry_after == 2 * 3600 + 30 * 60
    assert error.message == ("You have used your daily allowance of 1,000 tokens; it renews at 00:00 UTC (in 2h 30m).")
    allowance = budget.today(OWNER)
    assert allowance is not None and (allowance.left, allowance.exhausted) == (0, True)


def test_over_the_allowance_nothing_is_left_and_seconds_round_up_to_the_minute() -> None:
    ledger, clock = InMemoryUsageLedger(), Clock(datetime(2026, 3, 14, 23, 59, 30, tzinfo=UTC))
    spend(ledger, OWNER, 1500, at=clock.now)  # an answer started under the allowance finished over it
    budget = budget_of(ledger, clock)

    with pytest.raises(BudgetExhausted) as refused:
        budget.check(OWNER)

    assert refused.value.retry_after == 30
    assert refused.value.message.endswith("(in 0h 1m).")
    allowance = budget.today(OWNER)
    assert allowance is not None and (allowance.used, allowance.left) == (1500, 0)


def test_input_and_output_tokens_both_count() -> None:
    ledger, clock = InMemoryUsageLedger(), Clock(NOON)
    spend(ledger, OWNER, 1000, prompt_share=0.0)  # all output
    with pytest.raises(BudgetExhausted):
        budget_of(ledger, clock).check(OWNER)


def test_the_allowance_renews_at_utc_midnight_and_counts_only_today() -> None:
    ledger, clock = InMemoryUsageLedger(), Clock(datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC))
    spend(ledger, OWNER, 1000, at=clock.now)
    budget = budget_of(ledger, clock)
    with pytest.raises(BudgetExhausted) as refused:
        budget.check(OWNER)
    assert refused.value.retry_after == 1

    clock.now = datetime(2026, 3, 15, 0, 0, 0, tzinfo=UTC)
    budget.check(OWNER)  # a new day: yesterday's tokens do not count
    allowance = budget.today(OWNER)
    assert allowance is not None and (allowance.used, allowance.left) == (0, 1000)
    assert allowance.renews_at == datetime(2026, 3, 16, tzinfo=UTC)


def test_the_day_is_the_utc_day_whatever_the_clocks_zone() -> None:
    ledger = InMemoryUsageLedger()
    spend(ledger, OWNER, 1000, at=datetime(2026, 3, 14, 23, 0, tzinfo=UTC))
    # 20:00 on 14 March at UTC-5 is 01:00 on 15 March UTC: a new day for the allowance already
    clock = Clock(datetime(2026, 3, 14, 20, 0, tzinfo=timezone(timedelta(hours=-5))))
    budget = budget_of(ledger, clock)
    budget.check(OWNER)
    allowance = budget.today(OWNER)
    assert allowance is not None and allowance.used == 0
    assert allowance.renews_at == datetime(2026, 3, 16, tzinfo=UTC)


def test_each_user_has_their_own_allowance() -> None:
    ledger, clock = InMemoryUsageLedger(), Clock(NOON)
    spend(ledger, OWNER, 1000)
    budget = budget_of(ledger, clock)
    with pytest.raises(BudgetExhausted):
        budget.check(OWNER)
    budget.check(READER)


def test_no_allowance_never_refuses_and_reports_none() -> None:
    ledger, clock = InMemoryUsageLedger(), Clock(NOON)
    spend(ledger, OWNER, 10_000_000)
    budget = budget_of(ledger, clock, daily_tokens=None)
    budget.check(OWNER)
    assert budget.today(OWNER) is None and budget.daily_tokens is None


def test_an_allowance_below_one_token_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TokenBudget(ledger=InMemoryUsageLedger(), daily_tokens=0)


# --------------------------------------------------------------------------- the chat use cases


def test_post_chat_answers_until_the_allowance_is_spent_then_refuses_without_storing() -> None:
    reply = "The mirror is 2.4 metres wide [1]."
    chat = build_chat(reply, reply, daily_token_budget=1)  # any answer spends more than 1 token
    service = chat.service

    first = service.answer(ChatRequest(user=OWNER, text=QUESTION, workspace_id=WS))
    assert first.answer.usage.prompt_tokens + first.answer.usage.completion_tokens >= 1
    calls, sessions = len(chat.model.calls), dict(chat.history.sessions)

    with pytest.raises(BudgetExhausted):
        service.answer(ChatRequest(user=OWNER, text=QUESTION, workspace_id=WS))
    with pytest.raises(BudgetExhausted):
        service.answer(ChatRequest(user=OWNER, text="and then?", session_id=first.session.id))

    assert len(chat.model.calls) == calls  # no model call
    assert chat.history.sessions == sessions  # no new session
    assert [m.role.value for m in chat.history.recent_messages(first.session.id, limit=10)] == ["user", "assistant"]
    service.answer(ChatRequest(user=READER, text=QUESTION, workspace_id=WS))  # another user still gets answers


def _stream(chat: Chat) -> tuple[ChatStreamService, RecordingBus, RecordingNotifier]:
    bus, notifier = RecordingBus(), RecordingNotifier()
    stream = ChatStreamService(chat=chat.service, bus=bus, notifier=notifier, cancellations=InMemoryCancellations())
    return stream, bus, notifier


def _action(text: str = QUESTION, **kw: object) -> ChatAction:
    return ChatAction.model_validate({"action": "chat", "text": text, "workspace_id": WS, **kw})


def test_a_websocket_chat_past_the_allowance_is_refused_before_anything_is_published() -> None:
    chat = build_chat("The mirror is 2.4 metres wide [1].", daily_token_budget=BUDGET)
    spend(chat.ledger, OWNER, BUDGET, at=datetime.now(UTC))
    stream, bus, _ = _stream(chat)

    with pytest.raises(BudgetExhausted):
        stream.submit("c-1", OWNER, _action())

    assert bus.published == [] and chat.history.sessions == {}
    stream.submit("c-2", READER, _action())
    assert len(bus.published) == 1


def test_a_queued_job_whose_user_ran_out_meanwhile_gets_an_error_event_and_stores_nothing() -> None:
    chat = build_chat("The mirror is 2.4 metres wide [1].", daily_token_budget=BUDGET)
    stream, _, notifier = _stream(chat)
    job = stream.submit("c-1", OWNER, _action())  # accepted under the allowance
    spend(chat.ledger, OWNER, BUDGET, at=datetime.now(UTC))  # another answer spent the rest meanwhile

    assert stream.run(job) is None

    [event] = notifier.to("c-1")
    assert event["type"] == "error" and event["code"] == "budget_exhausted"
    assert event["session_id"] == job.session_id
    assert str(event["message"]).startswith("You have used your daily allowance of 1,000 tokens")
    assert chat.history.recent_messages(job.session_id, limit=10) == []  # the question is not stored
    assert chat.model.calls == []


def test_a_redelivered_job_answered_before_the_allowance_ran_out_stays_silent() -> None:
    chat = build_chat("The mirror is 2.4 metres wide [1].", daily_token_budget=1)
    stream, _, notifier = _stream(chat)
    job = stream.submit("c-1", OWNER, _action())
    assert stream.run(job) is not None  # answered, and counted: the allowance is now spent
    delivered = len(notifier.to("c-1"))

    assert stream.run(ChatJob.model_validate(job.model_dump())) is None  # the queue delivers it again

    assert len(notifier.to("c-1")) == delivered  # no refusal sent for an answer the user already has
    with pytest.raises(AlreadyAnswered):
        chat.service.answer(ChatRequest.of(OWNER, job.request, session_id=job.session_id), message_id=job.message_id)
