"""Behaviour every SummarySchedules adapter must have.

Fixtures a runner supplies:

- ``summary_schedules``: the adapter;
- ``expression``: ``expression(workspace_id, job_id)`` -> the schedule expression the adapter holds for the
  job (what EventBridge Scheduler or the local timer will run), or None when the job has no schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quarry.models import new_id
from quarry.ports import SummarySchedules
from quarry.summary_models import SummaryJob, SummaryKind

Expression = Callable[[str, str], str | None]


def job(schedule: str | None, *, workspace_id: str | None = None, job_id: str | None = None) -> SummaryJob:
    return SummaryJob(
        id=job_id or new_id(),
        workspace_id=workspace_id or new_id(),
        owner="alice",
        kind=SummaryKind.THEMES,
        schedule=schedule,
    )


class SummarySchedulesContract:
    def test_is_summary_schedules(self, summary_schedules: Any) -> None:
        assert isinstance(summary_schedules, SummarySchedules)

    def test_put_schedules_the_job(self, summary_schedules: Any, expression: Expression) -> None:
        daily = job("cron(0 6 * * ? *)")
        hourly = job("rate(2 hours)", workspace_id=daily.workspace_id)
        summary_schedules.put(daily)
        summary_schedules.put(hourly)
        assert expression(daily.workspace_id, daily.id) == "cron(0 6 * * ? *)"
        assert expression(hourly.workspace_id, hourly.id) == "rate(2 hours)"

    def test_put_again_replaces_the_jobs_one_schedule(self, summary_schedules: Any, expression: Expression) -> None:
        first = job("cron(0 6 * * ? *)")
        summary_schedules.put(first)
        summary_schedules.put(job("rate(1 day)", workspace_id=first.workspace_id, job_id=first.id))
        assert expression(first.workspace_id, first.id) == "rate(1 day)"

    def test_a_job_without_a_schedule_has_none(self, summary_schedules: Any, expression: Expression) -> None:
        scheduled = job("rate(1 day)")
        summary_schedules.put(scheduled)
        summary_schedules.put(job(None, workspace_id=scheduled.workspace_id, job_id=scheduled.id))
        assert expression(scheduled.workspace_id, scheduled.id) is None

    def test_delete_is_idempotent_and_touches_no_other_job(
        self, summary_schedules: Any, expression: Expression
    ) -> None:
        kept, gone = job("rate(1 day)"), job("rate(1 day)")
        summary_schedules.put(kept)
        summary_schedules.put(gone)
        summary_schedules.delete(gone.workspace_id, gone.id)
        summary_schedules.delete(gone.workspace_id, gone.id)
        summary_schedules.delete(new_id(), new_id())
        assert expression(gone.workspace_id, gone.id) is None
        assert expression(kept.workspace_id, kept.id) == "rate(1 day)"
