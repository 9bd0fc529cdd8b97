"""Usage counters on PostgreSQL (embedded): the contract, and one counter row per scope, day and model."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from quarry.adapters.sql_usage import SqlUsageLedger
from quarry.models import new_id
from tests.contracts.usage_contract import UsageLedgerContract, make_entry

pytestmark = pytest.mark.integration

Pool = ConnectionPool[psycopg.Connection[Any]]


class TestSqlUsageLedger(UsageLedgerContract):
    @pytest.fixture
    def usage_ledger(self, pg_pool: Pool) -> SqlUsageLedger:
        return SqlUsageLedger(pg_pool)


def test_counters_are_upserted_rows_not_one_row_per_answer(pg_pool: Pool) -> None:
    schema = f"usage_{new_id()[:8]}"
    ledger = SqlUsageLedger(pg_pool, schema=schema)
    SqlUsageLedger(pg_pool, schema=schema)  # applying the DDL again is harmless
    for _ in range(5):
        ledger.record(make_entry("erin", "ws-erin", cost=0.1))
    with pg_pool.connection() as conn:
        rows = conn.execute(
            f"SELECT scope, key, requests, cost_usd FROM {schema}.usage_daily ORDER BY scope"
        ).fetchall()
    assert [(r[0], r[1], r[2], float(r[3])) for r in rows] == [
        ("user", "erin", 5, pytest.approx(0.5)),
        ("workspace", "ws-erin", 5, pytest.approx(0.5)),
    ]
