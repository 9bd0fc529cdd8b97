"""``UsageLedger`` in memory: for a process whose chat history is an injected object with no ledger of its
own (tests, tools). ``quarry serve`` and AWS count in Postgres or DynamoDB beside the chat history."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date

from quarry.models import UsageEntry, UsageScope, UsageTotal

__all__ = ["InMemoryUsageLedger"]


class InMemoryUsageLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counted: set[str] = set()
        self._rows: dict[tuple[UsageScope, str, date, str], UsageTotal] = {}

    def record(self, entry: UsageEntry) -> bool:
        day = entry.at.astimezone(UTC).date()
        with self._lock:
            if entry.message_id in self._counted:
                return False
            self._counted.add(entry.message_id)
            scopes = [(UsageScope.USER, entry.user)]
            if entry.workspace_id:
                scopes.append((UsageScope.WORKSPACE, entry.workspace_id))
            for scope, key in scopes:
                row = self._rows.get((scope, key, day, entry.model)) or UsageTotal(day, entry.model)
                self._rows[(scope, key, day, entry.model)] = replace(
                    row,
                    requests=row.requests + 1,
                    prompt_tokens=row.prompt_tokens + entry.prompt_tokens,
                    completion_tokens=row.completion_tokens + entry.completion_tokens,
                    cost_usd=row.cost_usd + entry.cost_usd,
                )
        return True

    def totals(self, scope: UsageScope, key: str, *, since: date, until: date) -> list[UsageTotal]:
        with self._lock:
            rows = [
                row
                for (s, k, day, _model), row in self._rows.items()
                if s == scope and k == key and since <= day <= until
            ]
        return sorted(rows, key=lambda r: (r.day, r.model))
