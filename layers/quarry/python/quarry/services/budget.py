"""The per-user daily token allowance: what bounds one user's chat spend on the model.

A deployment sets ``Settings.daily_token_budget`` (AWS: the deploy configuration's
``spend.daily_token_budget_per_user``, delivered as ``QUARRY_DAILY_TOKEN_BUDGET``); None means no allowance.
A user's tokens today are the input and output tokens of every answer they were given since 00:00 UTC, in
any workspace or none, read from the ``UsageLedger`` that already counts each answer per user per day (one
range read of one day).

The allowance is checked **before** an answer starts, never during one: an answer already started may
finish, so a user can end a day somewhat over it (by at most the answers they had running at that moment,
each bounded by its ``max_tokens``). Stopping a stream halfway would leave a half answer that had cost the
tokens anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from quarry.errors import BudgetExhausted
from quarry.models import UsageScope, utcnow
from quarry.ports import UsageLedger

__all__ = ["Allowance", "TokenBudget"]


@dataclass(frozen=True, slots=True)
class Allowance:
    """A user's allowance for the current UTC day: how much, how much is spent, and when it renews."""

    budget: int
    used: int
    renews_at: datetime

    @property
    def left(self) -> int:
        return max(0, self.budget - self.used)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget


class TokenBudget:
    def __init__(
        self, *, ledger: UsageLedger, daily_tokens: int | None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        if daily_tokens is not None and daily_tokens < 1:
            raise ValueError("a daily token budget must be at least 1 token (None: no budget)")
        self._ledger = ledger
        self._daily_tokens = daily_tokens
        self._clock = clock

    @property
    def daily_tokens(self) -> int | None:
        return self._daily_tokens

    def today(self, user: str) -> Allowance | None:
        """The user's allowance today, or None when the deployment sets none (the ledger is then not read)."""
        return self._allowance(user, self._clock().astimezone(UTC))

    def check(self, user: str) -> None:
        """Refuse a new answer with ``BudgetExhausted`` (429, ``Retry-After`` until 00:00 UTC) once the user's
        tokens today have reached the allowance; below it, or with no allowance, do nothing."""
        now = self._clock().astimezone(UTC)
        allowance = self._allowance(user, now)
        if allowance is None or not allowance.exhausted:
            return
        seconds = (allowance.renews_at - now).total_seconds()
        raise BudgetExhausted(budget=allowance.budget, retry_after=math.ceil(seconds))

    def _allowance(self, user: str, now: datetime) -> Allowance | None:
        if self._daily_tokens is None:
            return None
        day = now.date()
        rows = self._ledger.totals(UsageScope.USER, user, since=day, until=day)
        used = sum(row.prompt_tokens + row.completion_tokens for row in rows)
        renews_at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
        return Allowance(budget=self._daily_tokens, used=used, renews_at=renews_at)
