"""Summary jobs in the local runtime: schedules honoured by ``quarry serve``, and runs resumed after a restart.

``LocalSchedules`` is the ``SummarySchedules`` of the local runtime: it keeps each scheduled job's next
firing (``quarry.schedules``: the same EventBridge expressions AWS runs) and, once ``start``-ed by
``quarry serve``, a timer thread calls ``fire(workspace_id, job_id)`` when one is due. The store is the
source of truth: ``start`` loads every scheduled job from it, and ``put``/``delete`` keep the timer in
step with the API. A job that missed firings while no server ran (its schedule fired after it last ran, and
before now) runs once when ``quarry serve`` starts, as anacron would, however many it missed; then it
follows its schedule again. When it last ran is read from the stored job: its ``created_at`` (a job runs
when created), the ``started_at`` and ``finished_at`` of its last run (a firing during a run is skipped,
so a run still going at a firing time counts as that firing). A process that never starts the timer (the
CLI) only records schedules (the store has them for the next ``quarry serve``).

``LocalRunJournal`` is the local workflow's memory of summary runs started and not finished (a JSON file
under the data directory): ``quarry serve`` starts them again at start, and a resumed run skips the
batches it summarised before (Step Functions keeps its executions itself in AWS).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from quarry.errors import InvalidInput
from quarry.models import utcnow
from quarry.schedules import Schedule, parse_schedule
from quarry.summary_models import SummaryJob

__all__ = ["LocalRunJournal", "LocalSchedules"]

log = logging.getLogger(__name__)

Fire = Callable[[str, str], object]


class _Entry:
    __slots__ = ("anchor", "due", "schedule")

    def __init__(self, schedule: Schedule, anchor: datetime, due: datetime | None) -> None:
        self.schedule = schedule
        self.anchor = anchor
        self.due = due


class LocalSchedules:
    """``SummarySchedules`` on a timer thread (``start``), evaluated in UTC."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow, max_sleep: float = 60.0) -> None:
        self._clock = clock
        self._max_sleep = max_sleep
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._fire: Fire | None = None

    # ------------------------------------------------------------------ SummarySchedules
    def put(self, job: SummaryJob) -> None:
        key = (job.workspace_id, job.id)
        if job.schedule is None:
            self.delete(*key)
            return
        try:
            schedule = parse_schedule(job.schedule, check_interval=False)
        except InvalidInput as exc:  # stored before a rule changed: not run, and said so
            log.warning("summary job %s: schedule %r not honoured: %s", job.id, job.schedule, exc.message)
            self.delete(*key)
            return
        with self._changed:
            self._entries[key] = _Entry(schedule, job.created_at, _first_due(schedule, job, self._clock()))
            self._changed.notify_all()

    def delete(self, workspace_id: str, job_id: str) -> None:
        with self._changed:
            self._entries.pop((workspace_id, job_id), None)
            self._changed.notify_all()

    # ------------------------------------------------------------------ the timer
    def expression(self, workspace_id: str, job_id: str) -> str | None:
        """The expression the timer runs for the job (None: it has no schedule here)."""
        with self._changed:
            entry = self._entries.get((workspace_id, job_id))
            return entry.schedule.expression if entry is not None else None

    def next_due(self, workspace_id: str, job_id: str) -> datetime | None:
        with self._changed:
            entry = self._entries.get((workspace_id, job_id))
            return entry.due if entry is not None else None

    def start(self, jobs: Iterable[SummaryJob], fire: Fire) -> None:
        """Honour the schedules of ``jobs`` (and of every ``put`` from now on): ``fire`` runs when one is due."""
        for job in jobs:
            self.put(job)
        with self._changed:
            if self._thread is not None:
                return
            self._fire = fire
            self._stopped = False
            self._thread = threading.Thread(target=self._loop, name="summary-schedules", daemon=True)
            self._thread.start()

    def close(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._changed:
                if self._stopped:
                    return
                due = self._take_due()
                if not due:
                    self._changed.wait(timeout=self._wait_seconds())
                    continue
            for workspace_id, job_id in due:
                self._run(workspace_id, job_id)

    def _take_due(self) -> list[tuple[str, str]]:
        """The jobs due now (their next firing moved on); the lock is held."""
        now = self._clock()
        due = []
        for key, entry in self._entries.items():
            if entry.due is not None and entry.due <= now:
                due.append(key)
                entry.due = entry.schedule.next_after(now, anchor=entry.anchor)
        return due

    def _wait_seconds(self) -> float:
        now = self._clock()
        upcoming = [entry.due for entry in self._entries.values() if entry.due is not None]
        if not upcoming:
            return self._max_sleep
        return max(0.05, min(self._max_sleep, (min(upcoming) - now).total_seconds()))

    def _run(self, workspace_id: str, job_id: str) -> None:
        assert self._fire is not None
        try:
            self._fire(workspace_id, job_id)
        except Exception:  # one failing job must not stop the others' schedules
            log.exception("scheduled run of summary job %s failed to start", job_id)


def _first_due(schedule: Schedule, job: SummaryJob, now: datetime) -> datetime | None:
    """When the job is first due: ``now`` if its schedule fired since it last ran (missed while no server ran:
    one run, not one per firing missed), else its next firing. A rate counts from ``created_at``."""
    ran = [moment for moment in (job.created_at, job.started_at, job.finished_at) if moment is not None]
    last_ran = min(now, max(ran))  # a clock that went back does not skip firings
    first = schedule.next_after(last_ran, anchor=job.created_at)
    return now if first is not None and first <= now else first


class LocalRunJournal:
    """Summary runs started and not finished, in one small JSON file (written whole, atomically)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def started(self, workspace_id: str, job_id: str, run_id: str) -> None:
        with self._lock:
            runs = [r for r in self._read() if r[:2] != (workspace_id, job_id)]
            runs.append((workspace_id, job_id, run_id))
            self._write(runs)

    def finished(self, workspace_id: str, job_id: str, run_id: str) -> None:
        with self._lock:
            runs = self._read()
            kept = [r for r in runs if r != (workspace_id, job_id, run_id)]
            if len(kept) != len(runs):
                self._write(kept)

    def unfinished(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return self._read()

    def _read(self) -> list[tuple[str, str, str]]:
        try:
            raw = json.loads(self._path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            log.warning("summary run journal %s is unreadable: starting afresh", self._path)
            return []
        return [(str(r[0]), str(r[1]), str(r[2])) for r in raw if isinstance(r, list) and len(r) == 3]

    def _write(self, runs: list[tuple[str, str, str]]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        partial = self._path.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps([list(r) for r in runs]))
        partial.replace(self._path)
