"""What answers cost: price each one, keep it with its message, count it per user and workspace per day.

``ChatService`` builds a :class:`~quarry.models.UsageEntry` for every answer (the tokens the chat model
reported for the condense and answer calls, priced from :mod:`quarry.pricing`, the table ``quarry cost``
reads too), stores it in the assistant message's metadata and hands it to the ``UsageLedger``, whose
per-day counters make a month's view one range read. :class:`UsageService` answers the views: a user's
own usage, and a workspace's for its owner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from quarry.errors import InvalidInput
from quarry.models import Usage, UsageEntry, UsageScope, UsageTotal, utcnow
from quarry.ports import BatchChatModel, ChatDelta, ChatModel, ChatTurn, UsageLedger
from quarry.pricing import is_priced, token_cost
from quarry.services.access import WorkspaceAccess

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "UsageReport",
    "UsageService",
    "add_usage",
    "collect",
    "complete_all",
    "merge_totals",
    "usage_entry",
    "usage_metadata",
]

DEFAULT_DAYS = 30
MAX_DAYS = 366
COST_DIGITS = 10  # USD decimals kept in counters: a Nova Micro input token costs 3.5e-8


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens, completion_tokens=a.completion_tokens + b.completion_tokens
    )


def collect(stream: Iterable[ChatDelta]) -> tuple[str, Usage]:
    """The whole text of a model stream and the usage its last delta reported."""
    parts: list[str] = []
    usage = Usage()
    for delta in stream:
        parts.append(delta.text)
        if delta.usage is not None:
            usage = delta.usage
    return "".join(parts), usage


def complete_all(
    model: ChatModel, requests: Sequence[Sequence[ChatTurn]], *, max_tokens: int
) -> list[tuple[str, Usage]]:
    """Greedy (temperature 0) answers to ``requests``, in order: together where the model can
    (``BatchChatModel``), else one after another."""
    if isinstance(model, BatchChatModel):
        return model.complete_many(requests, max_tokens=max_tokens)
    return [collect(model.stream(turns, max_tokens=max_tokens, temperature=0.0)) for turns in requests]


def usage_entry(
    *, message_id: str, user: str, workspace_id: str | None, model: str, usage: Usage, at: datetime | None = None
) -> UsageEntry:
    return UsageEntry(
        message_id=message_id,
        user=user,
        workspace_id=workspace_id,
        model=model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=round(token_cost(model, usage.prompt_tokens, usage.completion_tokens), COST_DIGITS),
        at=at or utcnow(),
    )


def usage_metadata(entry: UsageEntry, timings: Mapping[str, float]) -> dict[str, Any]:
    """What the assistant message keeps: model, tokens, estimated cost and the timings of its request."""
    return {
        "model": entry.model,
        "usage": {"prompt_tokens": entry.prompt_tokens, "completion_tokens": entry.completion_tokens},
        "cost_usd": entry.cost_usd,
        "priced": is_priced(entry.model),
        "timings": dict(timings),
    }


def merge_totals(rows: Iterable[UsageTotal]) -> list[UsageTotal]:
    """Rows of the same day and model summed (the ledgers' raw rows may repeat a key), by day then model."""
    merged: dict[tuple[date, str], UsageTotal] = {}
    for row in rows:
        key = (row.day, row.model)
        seen = merged.get(key)
        merged[key] = row if seen is None else _plus(seen, row)
    return [merged[key] for key in sorted(merged)]


def _plus(a: UsageTotal, b: UsageTotal) -> UsageTotal:
    return UsageTotal(
        day=a.day,
        model=a.model,
        requests=a.requests + b.requests,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cost_usd=round(a.cost_usd + b.cost_usd, COST_DIGITS),
    )


@dataclass(frozen=True, slots=True)
class UsageReport:
    scope: UsageScope
    key: str
    since: date
    until: date
    days: list[UsageTotal] = field(default_factory=list)

    def by_model(self) -> list[UsageTotal]:
        """One row per model over the whole period (``day`` is the period's first day)."""
        out: dict[str, UsageTotal] = {}
        for row in self.days:
            out[row.model] = _plus(out.get(row.model) or UsageTotal(self.since, row.model), row)
        return [out[m] for m in sorted(out)]

    def total(self) -> UsageTotal:
        """Everything over the period, all models (``model`` is empty)."""
        total = UsageTotal(self.since, "")
        for row in self.by_model():
            total = _plus(total, row)
        return total


class UsageService:
    def __init__(self, *, ledger: UsageLedger, access: WorkspaceAccess, clock: Callable[[], datetime] = utcnow) -> None:
        self._ledger = ledger
        self._access = access
        self._clock = clock

    def record(self, entry: UsageEntry) -> bool:
        return self._ledger.record(entry)

    def for_user(self, user: str, *, since: date | None = None, until: date | None = None) -> UsageReport:
        """The caller's own usage, across every workspace and none."""
        return self._report(UsageScope.USER, user, since, until)

    def for_workspace(
        self, user: str, workspace_id: str, *, since: date | None = None, until: date | None = None
    ) -> UsageReport:
        """A workspace's usage, by every user who chatted in it: its owner's view (404 for anyone else)."""
        self._access.owned(user, workspace_id)
        return self._report(UsageScope.WORKSPACE, workspace_id, since, until)

    def _report(self, scope: UsageScope, key: str, since: date | None, until: date | None) -> UsageReport:
        until = until or self._clock().astimezone(UTC).date()
        since = since or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise InvalidInput("since must not be after until")
        if (until - since).days + 1 > MAX_DAYS:
            raise InvalidInput(f"a usage view covers at most {MAX_DAYS} days")
        rows = merge_totals(self._ledger.totals(scope, key, since=since, until=until))
        return UsageReport(scope=scope, key=key, since=since, until=until, days=rows)
