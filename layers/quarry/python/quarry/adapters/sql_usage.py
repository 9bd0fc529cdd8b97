"""``UsageLedger`` on PostgreSQL: per-day counter rows upserted with ``+``, one guard row per answer.

DDL in ``quarry/sql/pg_usage.sql`` (same schema as the catalog, applied idempotently). ``record`` runs in
one transaction: insert the message's guard row (``ON CONFLICT DO NOTHING``); only if it was new, add to
the user's and the workspace's counter rows for the day (``INSERT ... ON CONFLICT DO UPDATE SET n = n +
EXCLUDED.n``). A view reads the scope's rows of the period through the primary key.
"""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal
from typing import Any

from psycopg import sql

from quarry.adapters.pg import ddl
from quarry.adapters.sql_catalog import Pool, _Tables
from quarry.models import UsageEntry, UsageScope, UsageTotal

__all__ = ["SqlUsageLedger"]

_GUARD = (
    'INSERT INTO {t}.usage_messages (message_id, "user", workspace_id, model, prompt_tokens, completion_tokens,'
    " cost_usd, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING"
)
_ADD = (
    "INSERT INTO {t}.usage_daily (scope, key, day, model, requests, prompt_tokens, completion_tokens, cost_usd)"
    " VALUES (%s, %s, %s, %s, 1, %s, %s, %s) ON CONFLICT (scope, key, day, model) DO UPDATE SET"
    " requests = {t}.usage_daily.requests + 1,"
    " prompt_tokens = {t}.usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,"
    " completion_tokens = {t}.usage_daily.completion_tokens + EXCLUDED.completion_tokens,"
    " cost_usd = {t}.usage_daily.cost_usd + EXCLUDED.cost_usd"
)


class SqlUsageLedger(_Tables):
    def __init__(self, pool: Pool, *, schema: str = "quarry", create: bool = True) -> None:
        super().__init__(pool, schema=schema, create=create)

    def ensure_schema(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"quarry-ddl/{self.schema}",))
            conn.execute(ddl("pg_usage", schema=sql.Identifier(self.schema)))

    def record(self, entry: UsageEntry) -> bool:
        at = entry.at.astimezone(UTC)
        cost = Decimal(str(entry.cost_usd))
        scopes = [(UsageScope.USER, entry.user)]
        if entry.workspace_id:
            scopes.append((UsageScope.WORKSPACE, entry.workspace_id))
        with self.pool.connection() as conn:  # one transaction: the guard row and the counters, or nothing
            guard = (
                entry.message_id,
                entry.user,
                entry.workspace_id,
                entry.model,
                entry.prompt_tokens,
                entry.completion_tokens,
                cost,
                at,
            )
            if conn.execute(self._q(_GUARD), guard).rowcount == 0:
                return False
            for scope, key in scopes:
                values = (scope.value, key, at.date(), entry.model, entry.prompt_tokens, entry.completion_tokens, cost)
                conn.execute(self._q(_ADD), values)
        return True

    def totals(self, scope: UsageScope, key: str, *, since: date, until: date) -> list[UsageTotal]:
        rows = self._all(
            "SELECT day, model, requests, prompt_tokens, completion_tokens, cost_usd FROM {t}.usage_daily"
            " WHERE scope = %s AND key = %s AND day BETWEEN %s AND %s ORDER BY day, model",
            (UsageScope(scope).value, key, since, until),
        )
        return [_total(row) for row in rows]


def _total(row: dict[str, Any]) -> UsageTotal:
    return UsageTotal(
        day=row["day"],
        model=row["model"],
        requests=int(row["requests"]),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        cost_usd=float(row["cost_usd"]),
    )
