"""``SummaryStore`` on PostgreSQL: one row per summary job, the job kept whole as its JSON record.

DDL in ``quarry/sql/pg_summaries.sql`` (same schema as the catalog, applied idempotently). The row holds
the job's record (``quarry.summary_models.job_to_record``, the same form the DynamoDB store and the
result blobs use) as ``jsonb``, plus the columns the listings need: ``created_at``/``id`` for a
workspace's jobs newest first (keyset cursors, ``quarry.adapters.paging``) and ``schedule`` for the
partial index behind ``scheduled_jobs``. A result of any size fits (``jsonb`` values go up to 255 MB).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from quarry.adapters.pg import ddl
from quarry.adapters.sql_catalog import Pool, _Tables
from quarry.errors import InvalidInput
from quarry.ports import Page
from quarry.summary_models import SummaryJob, job_from_record, job_to_record

__all__ = ["SqlSummaryStore"]

_PUT = (
    "INSERT INTO {t}.summary_jobs (workspace_id, id, status, schedule, created_at, updated_at, job)"
    " VALUES (%(workspace_id)s, %(id)s, %(status)s, %(schedule)s, %(created_at)s, %(updated_at)s, %(job)s)"
    " ON CONFLICT (workspace_id, id) DO UPDATE SET status = EXCLUDED.status, schedule = EXCLUDED.schedule,"
    " created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, job = EXCLUDED.job"
)
# The row is locked by the first writer; a second one re-checks updated_at against the committed row.
_PUT_IF = (
    "UPDATE {t}.summary_jobs SET status = %(status)s, schedule = %(schedule)s, created_at = %(created_at)s,"
    " updated_at = %(updated_at)s, job = %(job)s"
    " WHERE workspace_id = %(workspace_id)s AND id = %(id)s AND updated_at = %(expected)s"
)


def _job(row: dict[str, Any]) -> SummaryJob:
    return job_from_record(row["job"])


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput("datetimes must be timezone-aware")
    return moment


def _params(job: SummaryJob) -> dict[str, Any]:
    record = job_to_record(job)  # InvalidInput for a naive datetime, before anything is written
    return {
        "workspace_id": job.workspace_id,
        "id": job.id,
        "status": record["status"],
        "schedule": job.schedule,
        "created_at": job.created_at.astimezone(UTC),
        "updated_at": job.updated_at.astimezone(UTC),
        "job": Jsonb(record),
    }


class SqlSummaryStore(_Tables):
    """Summary jobs in ``{schema}.summary_jobs``."""

    def __init__(self, pool: Pool, *, schema: str = "quarry", create: bool = True) -> None:
        super().__init__(pool, schema=schema, create=create)

    def ensure_schema(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"quarry-ddl/{self.schema}",))
            conn.execute(ddl("pg_summaries", schema=sql.Identifier(self.schema)))

    def put_job(self, job: SummaryJob) -> None:
        """Upsert the whole job (last writer wins)."""
        self._run((_PUT, _params(job)))

    def put_job_if(self, job: SummaryJob, expected_updated_at: datetime) -> bool:
        """Replace the job while its row's ``updated_at`` is still ``expected_updated_at`` (one conditional
        UPDATE; a missing job is not created)."""
        params = _params(job) | {"expected": _aware(expected_updated_at).astimezone(UTC)}
        return self._run((_PUT_IF, params)) == 1

    def get_job(self, workspace_id: str, job_id: str) -> SummaryJob | None:
        row = self._one("SELECT job FROM {t}.summary_jobs WHERE workspace_id = %s AND id = %s", (workspace_id, job_id))
        return _job(row) if row else None

    def list_jobs(self, workspace_id: str, *, limit: int = 50, cursor: str | None = None) -> Page[SummaryJob]:
        """Newest first (creation time, then id, both descending)."""
        return self._keyset_page(
            "SELECT created_at, id, job FROM {t}.summary_jobs WHERE workspace_id = %(workspace_id)s"
            " AND (%(cursor_time)s::timestamptz IS NULL OR (created_at, id) < (%(cursor_time)s, %(cursor_key)s))"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            {"workspace_id": workspace_id},
            listing="summaries",
            cursor=cursor,
            key_kind=str,
            limit=limit,
            order=("created_at", "id"),
            item=_job,
        )

    def scheduled_jobs(self) -> list[SummaryJob]:
        rows = self._all("SELECT job FROM {t}.summary_jobs WHERE schedule IS NOT NULL ORDER BY workspace_id, id", ())
        return [_job(row) for row in rows]

    def delete_job(self, workspace_id: str, job_id: str) -> None:
        self._run(("DELETE FROM {t}.summary_jobs WHERE workspace_id = %s AND id = %s", (workspace_id, job_id)))
