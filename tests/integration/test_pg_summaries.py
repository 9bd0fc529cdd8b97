"""Summary jobs on PostgreSQL (embedded): the contract, and the DDL applied the way the catalog's is."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from quarry.adapters.sql_summaries import SqlSummaryStore
from quarry.models import new_id
from quarry.summary_models import SummaryStatus
from tests.contracts.summary_store_contract import SummaryStoreContract, make_job, make_result
from tests.unit.services.summary_fixtures import batches_at_once

pytestmark = pytest.mark.integration

Pool = ConnectionPool[psycopg.Connection[Any]]


class TestSqlSummaryStore(SummaryStoreContract):
    @pytest.fixture
    def summary_store(self, pg_pool: Pool) -> SqlSummaryStore:
        return SqlSummaryStore(pg_pool)


def test_schema_is_idempotent_and_one_row_holds_the_job(pg_pool: Pool) -> None:
    schema = f"summaries_{new_id()[:8]}"
    store = SqlSummaryStore(pg_pool, schema=schema)
    SqlSummaryStore(pg_pool, schema=schema)  # applying the DDL again is harmless
    job = make_job(schedule="rate(1 day)", result=make_result(200, 50))
    store.put_job(job)
    store.put_job(job)
    with pg_pool.connection() as conn:
        rows = conn.execute(f"SELECT id, schedule, job->>'status' FROM {schema}.summary_jobs").fetchall()
    assert rows == [(job.id, "rate(1 day)", "queued")]
    assert store.get_job(job.workspace_id, job.id) == job


def test_live_progress_counts_every_batch_when_they_run_at_once(pg_pool: Pool) -> None:
    """Several map steps add to one job's progress at the same moment (compare-and-set on Postgres)."""
    live, final = batches_at_once(SqlSummaryStore(pg_pool), batches=8, workers=4)
    assert (live.progress.batches_done, live.progress.documents_read) == (8, 8), live.progress
    assert live.prompt_tokens == final.prompt_tokens > 0  # the spend each batch added, none lost
    assert final.status is SummaryStatus.SUCCEEDED and final.progress == live.progress
