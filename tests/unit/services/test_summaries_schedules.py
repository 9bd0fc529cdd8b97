"""Schedules of summary jobs: EventBridge expressions checked (422 naming ``schedule``) and evaluated, the local
timer that honours them in ``quarry serve``, and the journal that resumes runs after a restart."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from quarry.adapters.local_schedules import LocalRunJournal, LocalSchedules
from quarry.adapters.local_workflow import LocalWorkflow
from quarry.errors import InvalidInput
from quarry.ports import WorkflowName
from quarry.schedules import parse_schedule
from quarry.summary_models import SummaryJob, SummaryKind
from tests.contracts import SummarySchedulesContract
from tests.unit.services.summary_fixtures import OWNER

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def firings(expression: str, n: int = 3) -> list[str]:
    return [f"{t:%a %Y-%m-%d %H:%M}" for t in parse_schedule(expression, now=NOW).firings(NOW, limit=n)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 6 * * ? *)", ["Fri 2025-05-02 06:00", "Sat 2025-05-03 06:00", "Sun 2025-05-04 06:00"]),
        ("cron(30 7 ? * MON-FRI *)", ["Fri 2025-05-02 07:30", "Mon 2025-05-05 07:30", "Tue 2025-05-06 07:30"]),
        ("cron(0 6 ? * 2 *)", ["Mon 2025-05-05 06:00", "Mon 2025-05-12 06:00", "Mon 2025-05-19 06:00"]),  # 2 = MON
        ("cron(0 6 ? * 6L *)", ["Fri 2025-05-30 06:00", "Fri 2025-06-27 06:00", "Fri 2025-07-25 06:00"]),
        ("cron(0 6 ? * 2#1 *)", ["Mon 2025-05-05 06:00", "Mon 2025-06-02 06:00", "Mon 2025-07-07 06:00"]),
        ("cron(0 9 L * ? *)", ["Sat 2025-05-31 09:00", "Mon 2025-06-30 09:00", "Thu 2025-07-31 09:00"]),
        ("cron(0 6 1 1 ? 2027-2028)", ["Fri 2027-01-01 06:00", "Sat 2028-01-01 06:00"]),
        ("cron(0 * * * ? *)", ["Thu 2025-05-01 13:00", "Thu 2025-05-01 14:00", "Thu 2025-05-01 15:00"]),
        ("rate(1 day)", ["Fri 2025-05-02 12:00", "Sat 2025-05-03 12:00", "Sun 2025-05-04 12:00"]),
        ("rate(90 minutes)", ["Thu 2025-05-01 13:30", "Thu 2025-05-01 15:00", "Thu 2025-05-01 16:30"]),
    ],
)
def test_expressions_fire_when_eventbridge_would(expression: str, expected: list[str]) -> None:
    assert firings(expression) == expected


def test_a_rate_counts_from_its_anchor() -> None:
    schedule = parse_schedule("rate(2 hours)")
    anchor = NOW - timedelta(minutes=30)
    assert schedule.next_after(NOW, anchor=anchor) == NOW + timedelta(minutes=90)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("", "must be an expression"),
        ("daily", "not an EventBridge Scheduler expression"),
        ("at(2025-06-01T00:00:00)", "not an EventBridge Scheduler expression"),
        ("cron(0 6 * * *)", "cron takes 6 fields"),
        ("cron(0 6 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 6 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 6 ? * 8 *)", "day-of-week 8 is out of range"),
        ("cron(0 6 * * ? 1900)", "out of range"),
        ("cron(0 6 * * ? 2020)", "never fires"),
        ("cron(0 6 31 2 ? *)", "does not parse"),
        ("cron(61 6 * * ? *)", "does not parse"),
        ("cron(0 6 $ * ? *)", "characters it does not allow"),
        ("cron(0/30 * * * ? *)", "more often than once an hour"),
        ("cron(0,30 6 * * ? *)", "more often than once an hour"),
        ("rate(30 minutes)", "at most once an hour"),
        ("rate(1 hours)", "singular for 1"),
        ("rate(2 hour)", "singular for 1"),
        ("rate(2 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(0 hours)", "a whole number from 1"),
    ],
)
def test_a_bad_expression_is_a_422_naming_schedule(expression: str, says: str) -> None:
    with pytest.raises(InvalidInput) as failure:
        parse_schedule(expression, now=NOW)
    assert failure.value.message.startswith("schedule: ")
    assert says in failure.value.message


def job(job_id: str, schedule: str | None, created_at: datetime = NOW) -> SummaryJob:
    return SummaryJob(
        id=job_id, workspace_id="ws", owner=OWNER, kind=SummaryKind.THEMES, schedule=schedule, created_at=created_at
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class TestLocalSchedules(SummarySchedulesContract):
    @pytest.fixture
    def summary_schedules(self) -> Iterator[LocalSchedules]:
        schedules = LocalSchedules()
        yield schedules
        schedules.close()

    @pytest.fixture
    def expression(self, summary_schedules: LocalSchedules) -> Callable[[str, str], str | None]:
        return summary_schedules.expression


def test_the_local_timer_fires_due_jobs_and_follows_puts_and_deletes() -> None:
    clock = Clock(NOW)
    fired: list[tuple[str, str]] = []
    event = threading.Event()

    def fire(workspace_id: str, job_id: str) -> None:
        fired.append((workspace_id, job_id))
        event.set()

    schedules = LocalSchedules(clock=clock, max_sleep=0.05)
    schedules.start([job("hourly", "cron(0 * * * ? *)"), job("none", None)], fire)
    try:
        assert schedules.next_due("ws", "hourly") == NOW + timedelta(hours=1)
        assert schedules.next_due("ws", "none") is None
        schedules.put(job("daily", "rate(1 day)", created_at=NOW - timedelta(hours=23, minutes=30)))
        time.sleep(0.2)
        assert fired == []
        clock.now = NOW + timedelta(minutes=31)  # the daily one is due, the hourly one not yet
        assert event.wait(5)
        assert fired == [("ws", "daily")]
        assert schedules.next_due("ws", "daily") == NOW + timedelta(days=1, minutes=30)
        schedules.delete("ws", "hourly")
        event.clear()
        clock.now = NOW + timedelta(hours=2)
        time.sleep(0.3)
        assert fired == [("ws", "daily")]  # the deleted hourly job never fired
    finally:
        schedules.close()


def test_a_timer_that_was_never_started_only_records() -> None:
    schedules = LocalSchedules(clock=Clock(NOW))
    schedules.put(job("j", "rate(1 hour)"))
    assert schedules.next_due("ws", "j") == NOW + timedelta(hours=1)
    schedules.put(job("j", None))
    assert schedules.next_due("ws", "j") is None
    schedules.close()


def ran(job_id: str, schedule: str, started_at: datetime, *, for_: timedelta = timedelta(minutes=10)) -> SummaryJob:
    """A job created a week before NOW whose last run started at ``started_at`` and took ``for_``."""
    created = job(job_id, schedule, created_at=NOW - timedelta(days=7))
    return dataclasses.replace(created, started_at=started_at, finished_at=started_at + for_)


def test_a_firing_missed_while_no_server_ran_runs_once_at_start_then_the_schedule_goes_on() -> None:
    nightly = "cron(0 6 * * ? *)"  # NOW is 12:00, so today's 06:00 is the last firing before it
    jobs = [
        ran("missed-three", nightly, NOW - timedelta(days=3, hours=6)),  # ran at 06:00 three days ago
        ran("ran-at-last-firing", nightly, NOW - timedelta(hours=6)),
        ran("ran-through-it", nightly, NOW - timedelta(hours=6, minutes=30), for_=timedelta(hours=1)),
        ran("rate-missed", "rate(1 day)", NOW - timedelta(days=2)),  # rate firings at 12:00 from created_at
    ]
    clock = Clock(NOW)
    fired: list[str] = []
    lock = threading.Condition()

    def fire(workspace_id: str, job_id: str) -> None:
        with lock:
            fired.append(job_id)
            lock.notify_all()

    def wait_for(count: int) -> list[str]:
        with lock:
            assert lock.wait_for(lambda: len(fired) >= count, timeout=5), fired
        time.sleep(0.3)  # the timer ticks every 0.05 s: anything fired twice would show by now
        with lock:
            return sorted(fired)

    schedules = LocalSchedules(clock=clock, max_sleep=0.05)
    schedules.start(jobs, fire)
    try:
        assert wait_for(2) == ["missed-three", "rate-missed"]  # once each, not once per firing missed
        tomorrow = NOW + timedelta(hours=18)
        assert {j.id: schedules.next_due("ws", j.id) for j in jobs} == {
            "missed-three": tomorrow,
            "ran-at-last-firing": tomorrow,
            "ran-through-it": tomorrow,
            "rate-missed": NOW + timedelta(days=1),
        }
        clock.now = tomorrow  # the next nightly firing fires every nightly job, the caught-up one too
        assert wait_for(5) == ["missed-three", "missed-three", "ran-at-last-firing", "ran-through-it", "rate-missed"]
    finally:
        schedules.close()


def test_the_run_journal_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "summary-runs.json"
    journal = LocalRunJournal(path)
    journal.started("ws", "a", "run1")
    journal.started("ws", "b", "run2")
    journal.started("ws", "a", "run3")  # a new run of a job replaces its old one
    journal.finished("ws", "b", "run2")
    assert LocalRunJournal(path).unfinished() == [("ws", "a", "run3")]
    path.write_text("not json")
    assert LocalRunJournal(path).unfinished() == []


def test_the_local_workflow_runs_a_summary_in_the_background_without_holding_uploads_back() -> None:
    release = threading.Event()
    done: list[str] = []

    def summarize(payload: dict[str, object]) -> None:
        release.wait(10)
        done.append("summary")

    def ingest(payload: dict[str, object]) -> None:
        done.append("ingest")

    workflow = LocalWorkflow({WorkflowName.SUMMARIZE: summarize, WorkflowName.INGEST: ingest}, background=True)
    try:
        workflow.start(WorkflowName.SUMMARIZE, {"job_id": "j"}, run_id="run-1")  # returns at once
        workflow.start(WorkflowName.INGEST, {"workspace_id": "ws", "document_id": "d"}, run_id="ingest-1")
        deadline = time.monotonic() + 5
        while "ingest" not in done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done == ["ingest"]  # the upload was not queued behind the running summary
        release.set()
        while "summary" not in done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done == ["ingest", "summary"]
    finally:
        release.set()
        workflow.close()
