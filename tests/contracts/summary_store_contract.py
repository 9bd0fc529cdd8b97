"""What every ``SummaryStore`` (summary jobs: definition, status, progress, result) must do.

Supply a fixture ``summary_store``. The store may be shared across tests: each test uses fresh ids.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from quarry.errors import InvalidInput
from quarry.models import new_id
from quarry.ports import SummaryStore
from quarry.summary_models import (
    PointKind,
    SummaryJob,
    SummaryKind,
    SummaryPoint,
    SummaryProgress,
    SummaryResult,
    SummaryStatus,
)

T0 = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


def make_job(workspace_id: str | None = None, **overrides: Any) -> SummaryJob:
    fields: dict[str, Any] = {
        "id": new_id(),
        "workspace_id": workspace_id or new_id(),
        "owner": f"user-{new_id()[:8]}",
        "kind": SummaryKind.PROS_CONS,
        "created_at": T0,
        "updated_at": T0,
    }
    return SummaryJob(**(fields | overrides))


def make_result(points: int = 3, citations: int = 2, *, text: str = "battery lasts two days") -> SummaryResult:
    """``points`` points, each citing ``citations`` documents of its own, with every cited document named."""
    made: list[SummaryPoint] = []
    names: dict[str, str] = {}
    kinds = (PointKind.PRO, PointKind.CON)
    for i in range(points):
        ids = tuple(new_id() for _ in range(citations))
        names |= {doc: f"review {i}-{j} — {doc[:6]}.txt" for j, doc in enumerate(ids)}
        made.append(
            SummaryPoint(kinds[i % 2], f"{text} ({i}): the charger is slow, says review {i}", ids, citations + i)
        )
    return SummaryResult(
        points=tuple(made),
        documents_read=points * citations + 7,
        document_names=names,
        evaluation={"faithfulness": 0.1 + 0.2, "citation_validity": 1.0, "coverage": 2 / 3},
    )


def _all_pages(store: SummaryStore, workspace_id: str, *, limit: int) -> list[list[SummaryJob]]:
    pages: list[list[SummaryJob]] = []
    cursor: str | None = None
    while True:
        page = store.list_jobs(workspace_id, limit=limit, cursor=cursor)
        pages.append(page.items)
        cursor = page.cursor
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not terminate"


class SummaryStoreContract:
    @pytest.fixture
    def summary_store(self) -> SummaryStore:
        raise NotImplementedError("supply a summary_store fixture")

    def test_is_a_summary_store(self, summary_store: SummaryStore) -> None:
        assert isinstance(summary_store, SummaryStore)

    # ------------------------------------------------------------------ one job

    def test_job_round_trips_every_field(self, summary_store: SummaryStore) -> None:
        job = make_job(
            kind=SummaryKind.CUSTOM,
            filter={"and": [{"field": "fields.product", "eq": "X100"}, {"field": "fields.stars", "gte": 4}]},
            instructions="What do reviewers say about the battery?",
            language="German",
            max_points=7,
            schedule="cron(0 6 * * ? *)",
            status=SummaryStatus.RUNNING,
            progress=SummaryProgress(
                documents_total=120, documents_read=60, batches_total=8, batches_done=4, batches_failed=1
            ),
            result=make_result(),
            error="batch 3 failed: model timeout",
            run_id=new_id(),
            runs=3,
            watermark=T0 - timedelta(days=1, microseconds=1),
            prompt_tokens=123_456,
            completion_tokens=7_890,
            cost_usd=0.012345678901234,
            created_at=T0 - timedelta(days=30),
            updated_at=T0,
            started_at=T0 - timedelta(minutes=5),
            finished_at=T0 + timedelta(seconds=1, microseconds=7),
        )
        summary_store.put_job(job)
        loaded = summary_store.get_job(job.workspace_id, job.id)
        assert loaded == job
        assert loaded is not None and loaded.result is not None and job.result is not None
        assert [point.document_ids for point in loaded.result.points] == [p.document_ids for p in job.result.points]
        assert loaded.result.evaluation["faithfulness"] == 0.1 + 0.2  # floats exactly, not rounded
        for moment in (loaded.created_at, loaded.updated_at, loaded.watermark, loaded.started_at, loaded.finished_at):
            assert moment is not None and moment.utcoffset() == timedelta(0)

    def test_job_with_nothing_optional_round_trips(self, summary_store: SummaryStore) -> None:
        job = make_job(kind=SummaryKind.THEMES)
        assert (job.result, job.schedule, job.watermark, job.instructions, job.run_id) == (None,) * 5
        summary_store.put_job(job)
        assert summary_store.get_job(job.workspace_id, job.id) == job

    def test_datetimes_come_back_in_utc(self, summary_store: SummaryStore) -> None:
        berlin = timezone(timedelta(hours=2))
        job = make_job(
            created_at=datetime(2026, 6, 1, 8, 0, tzinfo=berlin), watermark=datetime(2026, 5, 1, tzinfo=berlin)
        )
        summary_store.put_job(job)
        loaded = summary_store.get_job(job.workspace_id, job.id)
        assert loaded is not None
        assert loaded.created_at == datetime(
            2026, 6, 1, 6, 0, tzinfo=UTC
        ) and loaded.created_at.utcoffset() == timedelta(0)
        assert loaded.watermark == datetime(2026, 4, 30, 22, 0, tzinfo=UTC)

    def test_naive_datetimes_are_invalid_input(self, summary_store: SummaryStore) -> None:
        job = make_job(started_at=datetime(2026, 1, 1, 12, 0))
        with pytest.raises(InvalidInput):
            summary_store.put_job(job)
        assert summary_store.get_job(job.workspace_id, job.id) is None

    def test_missing_job_is_none(self, summary_store: SummaryStore) -> None:
        job = make_job()
        summary_store.put_job(job)
        assert summary_store.get_job(job.workspace_id, new_id()) is None
        assert summary_store.get_job(new_id(), job.id) is None

    def test_put_job_replaces_the_whole_job(self, summary_store: SummaryStore) -> None:
        job = make_job(schedule="rate(1 day)")
        summary_store.put_job(job)
        running = replace(
            job,
            status=SummaryStatus.RUNNING,
            progress=SummaryProgress(documents_total=10, batches_total=2),
            run_id=new_id(),
            started_at=T0 + timedelta(seconds=1),
        )
        summary_store.put_job(running)
        assert summary_store.get_job(job.workspace_id, job.id) == running
        done = replace(
            running,
            status=SummaryStatus.SUCCEEDED,
            progress=replace(running.progress, documents_read=10, batches_done=2),
            result=make_result(),
            schedule=None,
            finished_at=T0 + timedelta(minutes=2),
        )
        summary_store.put_job(done)
        assert summary_store.get_job(job.workspace_id, job.id) == done
        again = replace(done, status=SummaryStatus.QUEUED, result=None, error="cancelled by the user")
        summary_store.put_job(again)
        assert summary_store.get_job(job.workspace_id, job.id) == again

    # ------------------------------------------------------------------ conditional writes

    def test_put_job_if_writes_only_over_the_version_read(self, summary_store: SummaryStore) -> None:
        job = make_job(result=make_result())
        summary_store.put_job(job)
        first = replace(job, progress=SummaryProgress(batches_done=1), updated_at=T0 + timedelta(microseconds=1))
        assert summary_store.put_job_if(first, job.updated_at) is True
        assert summary_store.get_job(job.workspace_id, job.id) == first
        stale = replace(job, progress=SummaryProgress(batches_done=9), updated_at=T0 + timedelta(seconds=1))
        assert summary_store.put_job_if(stale, job.updated_at) is False  # read before `first` was written
        assert summary_store.get_job(job.workspace_id, job.id) == first
        larger = replace(first, result=make_result(200, 50), updated_at=T0 + timedelta(seconds=2))
        assert summary_store.put_job_if(larger, first.updated_at) is True  # a result of any size too
        assert summary_store.get_job(job.workspace_id, job.id) == larger

    def test_put_job_if_never_creates_a_job(self, summary_store: SummaryStore) -> None:
        job = make_job()
        assert summary_store.put_job_if(job, job.updated_at) is False
        assert summary_store.get_job(job.workspace_id, job.id) is None

    def test_put_job_if_wants_an_aware_version(self, summary_store: SummaryStore) -> None:
        job = make_job()
        summary_store.put_job(job)
        with pytest.raises(InvalidInput):
            summary_store.put_job_if(job, datetime(2026, 1, 1, 12, 0))

    def test_concurrent_read_change_writes_lose_nothing(self, summary_store: SummaryStore) -> None:
        """Writers adding to the progress at once, as the map steps of one run do: compare-and-set on
        ``updated_at``, retried on False, counts every addition (a plain ``put_job`` would lose some)."""
        job = make_job()
        summary_store.put_job(job)
        writers, each = 4, 6
        start = threading.Barrier(writers)

        def add_batches() -> int:
            start.wait()
            retries = 0
            for _ in range(each):
                while True:
                    seen = summary_store.get_job(job.workspace_id, job.id)
                    assert seen is not None
                    progress = replace(seen.progress, batches_done=seen.progress.batches_done + 1)
                    changed = replace(seen, progress=progress, updated_at=seen.updated_at + timedelta(microseconds=1))
                    if summary_store.put_job_if(changed, seen.updated_at):
                        break
                    retries += 1
            return retries

        with ThreadPoolExecutor(writers) as pool:
            retries = sum(pool.map(lambda _: add_batches(), range(writers)))
        final = summary_store.get_job(job.workspace_id, job.id)
        assert final is not None and final.progress.batches_done == writers * each, retries
        assert final.updated_at == T0 + timedelta(microseconds=writers * each)

    # ------------------------------------------------------------------ listing

    def test_list_jobs_newest_first_pages_through_everything_once(self, summary_store: SummaryStore) -> None:
        workspace_id = new_id()
        jobs = [make_job(workspace_id, created_at=T0 + timedelta(minutes=i)) for i in range(7)]
        jobs += [make_job(workspace_id, created_at=T0 + timedelta(minutes=3)) for _ in range(2)]  # ties: by id
        for job in jobs:
            summary_store.put_job(job)
        pages = _all_pages(summary_store, workspace_id, limit=3)
        assert [len(page) for page in pages] == [3, 3, 3]
        listed = [job for page in pages for job in page]
        assert listed == sorted(jobs, key=lambda job: (job.created_at, job.id), reverse=True)

    def test_list_jobs_order_does_not_follow_updates(self, summary_store: SummaryStore) -> None:
        workspace_id = new_id()
        old, new = (make_job(workspace_id, created_at=T0 + timedelta(hours=h)) for h in (0, 1))
        summary_store.put_job(old)
        summary_store.put_job(new)
        summary_store.put_job(replace(old, status=SummaryStatus.RUNNING, updated_at=T0 + timedelta(days=1)))
        assert [job.id for job in summary_store.list_jobs(workspace_id).items] == [new.id, old.id]

    def test_list_jobs_exact_page_size_ends(self, summary_store: SummaryStore) -> None:
        workspace_id = new_id()
        for i in range(4):
            summary_store.put_job(make_job(workspace_id, created_at=T0 + timedelta(seconds=i)))
        first = summary_store.list_jobs(workspace_id, limit=2)
        assert len(first.items) == 2 and first.cursor is not None
        second = summary_store.list_jobs(workspace_id, limit=2, cursor=first.cursor)
        assert len(second.items) == 2 and second.cursor is None
        assert summary_store.list_jobs(workspace_id, limit=4).cursor is None

    def test_list_jobs_carries_the_whole_jobs(self, summary_store: SummaryStore) -> None:
        workspace_id = new_id()
        job = make_job(workspace_id, status=SummaryStatus.SUCCEEDED, result=make_result(), cost_usd=0.25)
        summary_store.put_job(job)
        assert summary_store.list_jobs(workspace_id).items == [job]

    def test_empty_workspace_lists_nothing(self, summary_store: SummaryStore) -> None:
        page = summary_store.list_jobs(new_id())
        assert page.items == [] and page.cursor is None

    def test_forged_cursor_and_bad_limits_are_invalid_input(self, summary_store: SummaryStore) -> None:
        workspace_id = new_id()
        summary_store.put_job(make_job(workspace_id))
        with pytest.raises(InvalidInput):
            summary_store.list_jobs(workspace_id, cursor="not a cursor")
        for limit in (0, -1, 1001):
            with pytest.raises(InvalidInput):
                summary_store.list_jobs(workspace_id, limit=limit)

    def test_workspaces_are_isolated(self, summary_store: SummaryStore) -> None:
        one, two = new_id(), new_id()
        job = make_job(one, result=make_result())
        summary_store.put_job(job)
        summary_store.put_job(make_job(two))
        assert [listed.id for listed in summary_store.list_jobs(one).items] == [job.id]
        assert job.id not in {listed.id for listed in summary_store.list_jobs(two).items}
        assert summary_store.get_job(two, job.id) is None
        summary_store.delete_job(two, job.id)  # another workspace's job is not this one's to delete
        assert summary_store.get_job(one, job.id) == job

    # ------------------------------------------------------------------ schedules, deletion

    def test_scheduled_jobs_spans_workspaces_and_follows_the_schedule(self, summary_store: SummaryStore) -> None:
        daily = make_job(schedule="rate(1 day)", result=make_result())
        morning = make_job(schedule="cron(0 6 * * ? *)")
        once = make_job()
        for job in (daily, morning, once):
            summary_store.put_job(job)

        def scheduled() -> dict[str, SummaryJob]:
            mine = {daily.id, morning.id, once.id}
            return {job.id: job for job in summary_store.scheduled_jobs() if job.id in mine}

        assert scheduled() == {daily.id: daily, morning.id: morning}
        summary_store.put_job(replace(morning, schedule=None))
        summary_store.put_job(replace(once, schedule="rate(2 hours)"))
        assert set(scheduled()) == {daily.id, once.id}
        summary_store.delete_job(daily.workspace_id, daily.id)
        assert set(scheduled()) == {once.id}

    def test_delete_job_is_idempotent(self, summary_store: SummaryStore) -> None:
        workspace_id = new_id()
        job, kept = make_job(workspace_id, result=make_result()), make_job(workspace_id)
        summary_store.put_job(job)
        summary_store.put_job(kept)
        summary_store.delete_job(workspace_id, job.id)
        summary_store.delete_job(workspace_id, job.id)
        summary_store.delete_job(workspace_id, new_id())
        assert summary_store.get_job(workspace_id, job.id) is None
        assert summary_store.list_jobs(workspace_id).items == [kept]

    # ------------------------------------------------------------------ size

    def test_a_large_result_fits(self, summary_store: SummaryStore) -> None:
        """200 points citing 50 documents each (10,000 documents, all named): about a megabyte of JSON."""
        large = make_result(200, 50)
        job = make_job(status=SummaryStatus.SUCCEEDED, schedule="rate(1 day)", result=large)
        summary_store.put_job(job)
        assert summary_store.get_job(job.workspace_id, job.id) == job
        assert summary_store.list_jobs(job.workspace_id).items == [job]
        assert [found for found in summary_store.scheduled_jobs() if found.id == job.id] == [job]

        progressed = replace(job, status=SummaryStatus.RUNNING, progress=SummaryProgress(batches_total=9))
        summary_store.put_job(progressed)  # same result, other fields
        assert summary_store.get_job(job.workspace_id, job.id) == progressed
        other = replace(progressed, result=make_result(200, 50, text="screen scratches easily"))
        summary_store.put_job(other)  # another large result replaces it
        assert summary_store.get_job(job.workspace_id, job.id) == other
        small = replace(other, result=make_result(1, 1))
        summary_store.put_job(small)
        assert summary_store.get_job(job.workspace_id, job.id) == small
        summary_store.put_job(other)
        assert summary_store.get_job(job.workspace_id, job.id) == other

        summary_store.delete_job(job.workspace_id, job.id)
        assert summary_store.get_job(job.workspace_id, job.id) is None
        assert summary_store.list_jobs(job.workspace_id).items == []
