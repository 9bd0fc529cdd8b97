"""Summary jobs: pros and cons, themes or a custom summary over every document a filter selects.

The use case has two faces.

**Requests** (REST, CLI): ``create``, ``list_jobs``, ``get``, ``run_again``, ``cancel``, ``delete``. A
workspace the caller cannot read is a 404; a bad request a 422 naming the field; a filter that selects
nothing (and no schedule to wait for documents) a 422 "no documents match the filter (...)".

**Steps** of one run, payload in and payload out, so the local workflow (``run``) and the AWS state
machine (``lambdas/summary_worker``) run the same code. Every step is safe to repeat:

- ``plan``: selects the documents (catalog pages, ``Filter.matches`` on their user metadata, processed
  only; on a run after a successful one only documents updated since it started), packs them into
  batches that fit the chat model's context, writes one ``batch-<i>.json`` per batch, the Distributed
  Map's item list ``plan.json`` and the run's ``run.json``; the job is ``running`` with its totals.
- ``map_batch``: summarises one batch (the documents' preview text) into cited points, stored as
  ``map-<i>.json``. A batch whose result is stored is skipped (a resumed run); a model failure raises,
  so the workflow retries it. Checks cancellation first.
- ``record_failed_batch``: a batch that failed after its retries is recorded (``map-<i>.failed.json``)
  and counted, never dropped silently.
- ``reduce``: merges the points of every batch (and of the previous result, on an incremental run) by
  embedding similarity, keeps the ``max_points`` most mentioned per kind, rewrites the texts into the
  requested language when they are not in it, and stores the result (``result.json`` and the job).

Spend counts as chat's does: each batch's tokens (and the rewrite's) are added to the usage ledger as the
job owner's, in the job's workspace, once per batch (a repeated step adds nothing), so ``GET /usage``
shows them and the owner's daily token allowance (``quarry.services.budget``) bounds them. ``create`` and
``run_again`` are refused (``BudgetExhausted``, 429) once it is spent; a run that spends it stops before
its next batch (batches already started finish) and ends ``failed`` saying so, its earlier result kept.

Blobs live under ``summaries/<workspace>/<job>/<run>/`` in the processing store (AWS: the processing
bucket, where the state machine's ItemReader reads ``plan.json``). Memory stays flat: documents are
listed page by page and read batch by batch; only points and document names are held by the reduce.

Progress is added by each map step as a compare-and-set on the job's ``updated_at``
(``SummaryStore.put_job_if``, retried when another batch wrote first), so live progress is exact while
batches run at once (the AWS Distributed Map runs several); the reduce writes every total again from the
stored batch results. Cancellation is a marker blob beside the run, checked by every step, so a late progress write can
never undo it for long.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from quarry.errors import BudgetExhausted, Conflict, InvalidInput, NotFound, QuarryError
from quarry.filters import Filter
from quarry.metadata import user_metadata
from quarry.models import Document, DocumentSource, DocumentStatus, Usage, new_id, utcnow
from quarry.ports import (
    BlobStore,
    Catalog,
    ChatModel,
    Page,
    SummarySchedules,
    SummaryStore,
    UsageLedger,
    Workflow,
    WorkflowName,
)
from quarry.pricing import token_cost
from quarry.schedules import parse_schedule
from quarry.services.access import WorkspaceAccess
from quarry.services.budget import TokenBudget
from quarry.services.documents import preview_key
from quarry.services.models_registry import ModelRegistry
from quarry.services.summary_map import ReplyCache, read_documents
from quarry.services.summary_mapreduce import (
    DEFAULT_MERGE_THRESHOLD,
    BatchDocument,
    Batcher,
    Candidate,
    batch_points,
    merge_points,
    needs_rewrite,
    parse_rewrite,
)
from quarry.services.summary_prompts import DOCUMENT_CHARS, rewrite_turns
from quarry.services.usage import COST_DIGITS, add_usage, collect, usage_entry
from quarry.summary_models import (
    MAX_POINTS_LIMIT,
    PointKind,
    SummaryJob,
    SummaryKind,
    SummaryProgress,
    SummaryResult,
    SummaryStatus,
    result_to_record,
)

__all__ = [
    "EMPTY_PLAN_KEY",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_LANGUAGE_CHARS",
    "RunJournal",
    "SummaryService",
    "SummarySpec",
    "job_prefix",
    "run_prefix",
    "summaries_prefix",
]

log = logging.getLogger(__name__)

MAX_INSTRUCTIONS_CHARS = 2000
MAX_LANGUAGE_CHARS = 40
_LANGUAGE = re.compile(r"[^\W\d_]+(?: [^\W\d_]+)*")
#: The answer the rewrite into another language may write (every point of the result).
REWRITE_MAX_TOKENS = 384
#: A batch (the unit of progress, retries, resume and cancellation): documents and characters at most.
BATCH_DOCUMENTS = 16
BATCH_CHARS = 12_000
#: Map replies kept in memory, by request (model, prompt): a document read again costs nothing.
REPLY_CACHE_ENTRIES = 4096
#: Compare-and-set attempts of one job update (``_update``), and the pause between them that grows with each.
UPDATE_ATTEMPTS = 20
UPDATE_PAUSE_SECONDS = 0.02
#: The item list of a run that has nothing to do (skipped, cancelled, or a job that is gone).
EMPTY_PLAN_KEY = "summaries/empty-plan.json"
_PAGE = 500
_PAGE_OF_JOBS = 100


def job_prefix(workspace_id: str, job_id: str) -> str:
    return f"summaries/{workspace_id}/{job_id}/"


def run_prefix(workspace_id: str, job_id: str, run_id: str) -> str:
    return f"{job_prefix(workspace_id, job_id)}{run_id}/"


def summaries_prefix(workspace_id: str) -> str:
    """Every stored run of every summary job of the workspace."""
    return f"summaries/{workspace_id}/"


@dataclass(frozen=True, slots=True)
class _Keys:
    prefix: str

    @property
    def plan(self) -> str:
        return self.prefix + "plan.json"

    @property
    def run(self) -> str:
        return self.prefix + "run.json"

    @property
    def result(self) -> str:
        return self.prefix + "result.json"

    @property
    def cancelled(self) -> str:
        return self.prefix + "cancelled"

    @property
    def out_of_budget(self) -> str:
        """Written by the first batch that found the owner's daily token allowance spent: the run stops."""
        return self.prefix + "budget-exhausted.json"

    def batch(self, index: int) -> str:
        return f"{self.prefix}batch-{index}.json"

    def mapped(self, index: int) -> str:
        return f"{self.prefix}map-{index}.json"

    def failed(self, index: int) -> str:
        return f"{self.prefix}map-{index}.failed.json"


def _keys(workspace_id: str, job_id: str, run_id: str) -> _Keys:
    return _Keys(run_prefix(workspace_id, job_id, run_id))


@dataclass(frozen=True, slots=True)
class SummarySpec:
    """What a summary job does; checked by ``SummaryService.create`` (422 naming the field)."""

    kind: SummaryKind | str
    filter: Mapping[str, Any] = field(default_factory=dict)
    instructions: str | None = None
    language: str = "English"
    max_points: int = 5
    schedule: str | None = None


class RunJournal(Protocol):
    """Runs started and not yet finished, kept across restarts (``quarry serve`` resumes them at start)."""

    def started(self, workspace_id: str, job_id: str, run_id: str) -> None: ...
    def finished(self, workspace_id: str, job_id: str, run_id: str) -> None: ...
    def unfinished(self) -> list[tuple[str, str, str]]: ...


@dataclass(frozen=True, slots=True)
class _Checked:
    kind: SummaryKind
    filter: Filter
    instructions: str | None
    language: str
    max_points: int
    schedule: str | None


class SummaryService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: SummaryStore,
        blobs: BlobStore,
        previews: BlobStore,
        models: ModelRegistry,
        access: WorkspaceAccess,
        workflow: Workflow,
        schedules: SummarySchedules,
        journal: RunJournal | None = None,
        usage: UsageLedger | None = None,
        budget: TokenBudget | None = None,
        clock: Callable[[], datetime] = utcnow,
        batch_documents: int = BATCH_DOCUMENTS,
        merge_threshold: float = DEFAULT_MERGE_THRESHOLD,
        map_attempts: int = 2,
        reply_cache: int = REPLY_CACHE_ENTRIES,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._blobs = blobs
        self._previews = previews
        self._models = models
        self._access = access
        self._workflow = workflow
        self._schedules = schedules
        self._journal = journal
        self._usage = usage  # None: runs are not counted in the usage views
        self._budget = budget  # None: runs are not bounded by the owner's daily token allowance
        self._clock = clock
        self._batch_documents = batch_documents
        self._threshold = merge_threshold
        self._map_attempts = max(1, map_attempts)
        self._stopping = threading.Event()
        self._replies = ReplyCache(reply_cache)  # 0: every document is sent to the model

    # ================================================================== requests
    def create(self, user: str, workspace_id: str, spec: SummarySpec) -> SummaryJob:
        """Define a job and start its first run (202). A scheduled job runs now and then on its schedule.
        A user whose daily token allowance is spent is refused (``BudgetExhausted``, 429) before anything is
        stored, as chat refuses them."""
        self._access.readable(user, workspace_id)
        checked = _check(spec, now=self._clock())
        self._ensure_allowance(user)
        if checked.schedule is None and not self._any_selected(workspace_id, checked.filter):
            raise InvalidInput(f"no documents match the filter ({checked.filter.describe()})")
        now = self._clock()
        job = SummaryJob(
            id=new_id(),
            workspace_id=workspace_id,
            owner=user,
            kind=checked.kind,
            filter=checked.filter.to_json(),
            instructions=checked.instructions,
            language=checked.language,
            max_points=checked.max_points,
            schedule=checked.schedule,
            created_at=now,
            updated_at=now,
        )
        self._store.put_job(job)
        if job.schedule is not None:
            self._schedules.put(job)
        return self._start_run(job)

    def list_jobs(
        self, user: str, workspace_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[SummaryJob]:
        """The workspace's jobs, newest first."""
        self._access.readable(user, workspace_id)
        return self._store.list_jobs(workspace_id, limit=limit, cursor=cursor)

    def get(self, user: str, workspace_id: str, job_id: str) -> SummaryJob:
        self._access.readable(user, workspace_id)
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            raise NotFound(f"summary job {job_id} not found")
        return job

    def run_again(self, user: str, workspace_id: str, job_id: str) -> SummaryJob:
        """Run a finished job now; after a successful run only documents new or changed since are read.
        Refused (``BudgetExhausted``, 429) while the job's owner, whose allowance its runs spend, has none left."""
        job = self.get(user, workspace_id, job_id)
        if not job.status.finished:
            raise Conflict(f"summary job {job_id} is {job.status.value}: wait for it, or cancel it first")
        self._ensure_allowance(job.owner)  # a job's runs spend its owner's allowance
        return self._start_run(job)

    def cancel(self, user: str, workspace_id: str, job_id: str) -> SummaryJob:
        """Stop a queued or running job between batches; what its finished batches did stays (409 if finished)."""
        for attempt in range(UPDATE_ATTEMPTS):  # compare-and-set: a batch's progress written meanwhile is kept
            job = self.get(user, workspace_id, job_id)
            if job.status.finished:
                raise Conflict(f"summary job {job_id} is {job.status.value}, not running")
            if job.run_id is not None:
                self._blobs.put(_keys(workspace_id, job_id, job.run_id).cancelled, b"", content_type="text/plain")
            cancelled = replace(
                job, status=SummaryStatus.CANCELLED, finished_at=self._clock(), updated_at=self._next_version(job)
            )
            if self._store.put_job_if(cancelled, job.updated_at):
                return cancelled
            time.sleep(random.uniform(0, UPDATE_PAUSE_SECONDS * (attempt + 1)))
        raise Conflict(f"summary job {job_id} kept changing while it was cancelled; try again")

    def delete(self, user: str, workspace_id: str, job_id: str) -> SummaryJob | None:
        """``DELETE``: a queued or running job is cancelled (and returned); a finished one is removed with its
        schedule and stored runs (None)."""
        job = self.get(user, workspace_id, job_id)
        if not job.status.finished:
            return self.cancel(user, workspace_id, job_id)
        if job.schedule is not None:
            self._schedules.delete(workspace_id, job_id)
        self._store.delete_job(workspace_id, job_id)
        self._blobs.delete_prefix(job_prefix(workspace_id, job_id))
        if self._journal is not None and job.run_id is not None:
            self._journal.finished(workspace_id, job_id, job.run_id)
        return None

    def delete_workspace_jobs(self, workspace_id: str) -> int:
        """The workspace purge (``WorkspaceService.purge``, the deletion workflow's step): every summary job
        of the workspace, with its schedule and every stored run; the number of jobs removed. Safe to
        repeat. The schedule goes first and the job record before the blobs, so a purge that stops half-way
        leaves what the next attempt lists; a run still in flight finds its job gone and stops at its next
        step."""
        jobs: list[tuple[str, str | None]] = []  # listed whole first: a store's pages need not survive deletes
        cursor: str | None = None
        while True:
            page = self._store.list_jobs(workspace_id, limit=_PAGE_OF_JOBS, cursor=cursor)
            jobs += [(job.id, job.run_id) for job in page.items]
            if page.cursor is None:
                break
            cursor = page.cursor
        for job_id, run_id in jobs:
            self._schedules.delete(workspace_id, job_id)  # idempotent: also a schedule a failed put left behind
            self._store.delete_job(workspace_id, job_id)
            if self._journal is not None and run_id is not None:
                self._journal.finished(workspace_id, job_id, run_id)
        self._blobs.delete_prefix(summaries_prefix(workspace_id))
        return len(jobs)

    def next_run_at(self, job: SummaryJob) -> datetime | None:
        """When the job's schedule runs it next (None: no schedule, or it never fires again)."""
        if job.schedule is None:
            return None
        try:
            schedule = parse_schedule(job.schedule, check_interval=False)
        except InvalidInput:
            return None
        return schedule.next_after(self._clock(), anchor=job.created_at)

    # ================================================================== runs started by the platform
    def run_scheduled(self, workspace_id: str, job_id: str) -> SummaryJob | None:
        """A schedule fired (``quarry serve``'s timer): start a run unless one is in flight."""
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            self._schedules.delete(workspace_id, job_id)
            return None
        if not job.status.finished:
            log.info("summary job %s is still %s: this scheduled run is skipped", job_id, job.status.value)
            return job
        return self._start_run(job)

    def resume_interrupted(self) -> list[SummaryJob]:
        """Start again every run a previous process left queued or running (``quarry serve`` at start);
        batches already summarised are skipped."""
        if self._journal is None:
            return []
        resumed = []
        for workspace_id, job_id, run_id in self._journal.unfinished():
            job = self._store.get_job(workspace_id, job_id)
            if job is None or job.run_id != run_id or job.status.finished:
                self._journal.finished(workspace_id, job_id, run_id)
                continue
            self._workflow.start(WorkflowName.SUMMARIZE, _run_payload(job, run_id), run_id=run_id)
            resumed.append(job)
        return resumed

    def stop(self) -> None:
        """The process is stopping: a local run returns after its current batch and resumes at the next start."""
        self._stopping.set()

    def _start_run(self, job: SummaryJob) -> SummaryJob:
        run_id = new_id()
        now = self._clock()
        queued = replace(
            job,
            status=SummaryStatus.QUEUED,
            run_id=run_id,
            runs=job.runs + 1,
            progress=SummaryProgress(),
            error=None,
            started_at=None,
            finished_at=None,
            updated_at=now,
        )
        self._store.put_job(queued)
        if self._journal is not None:
            self._journal.started(job.workspace_id, job.id, run_id)
        try:
            self._workflow.start(WorkflowName.SUMMARIZE, _run_payload(queued, run_id), run_id=run_id)
        except QuarryError as exc:
            self._finish(queued, SummaryStatus.FAILED, error=f"the run could not start: {exc.message}")
            raise
        # An inline workflow (the CLI's) has run it already.
        return self._store.get_job(job.workspace_id, job.id) or queued

    # ================================================================== the local workflow
    def run(self, payload: Mapping[str, Any]) -> SummaryJob | None:
        """One whole run, as the state machine runs it: plan, each batch (retried, then recorded as failed),
        reduce. A failure of plan or reduce ends the job ``failed`` with the reason."""
        workspace_id, job_id = str(payload["workspace_id"]), str(payload["job_id"])
        run_id = payload.get("run_id")
        try:
            planned = self.plan(payload)
            run_id = planned["run_id"]
            for index in range(int(planned["batches"])):
                if self._stopping.is_set():
                    log.info("summary run %s paused at batch %d: resumed at the next start", run_id, index)
                    return None
                if self._halted(workspace_id, job_id, run_id):
                    break
                self._map_with_retries({**_run_payload_ids(workspace_id, job_id, run_id), "index": index})
            self.reduce(_run_payload_ids(workspace_id, job_id, run_id))
        except Exception as exc:
            if run_id:
                log.exception("summary run %s of job %s failed", run_id, job_id)
                self._fail_run(workspace_id, job_id, str(run_id), exc)
            else:
                raise
        if self._journal is not None and run_id:
            self._journal.finished(workspace_id, job_id, str(run_id))
        return self._store.get_job(workspace_id, job_id)

    def _map_with_retries(self, item: dict[str, Any]) -> None:
        for attempt in range(1, self._map_attempts + 1):
            try:
                self.map_batch(item)
                return
            except Exception as exc:
                reason = exc.message if isinstance(exc, QuarryError) else f"{type(exc).__name__}: {exc}"
                if attempt == self._map_attempts:
                    log.warning("summary batch %s failed after %d attempts: %s", item["index"], attempt, reason)
                    self.record_failed_batch({**item, "error": {"Error": type(exc).__name__, "Cause": reason}})
                else:
                    log.info("summary batch %s failed (attempt %d), retrying: %s", item["index"], attempt, reason)

    def _halted(self, workspace_id: str, job_id: str, run_id: str) -> bool:
        job = self._store.get_job(workspace_id, job_id)
        return (
            job is None
            or job.run_id != run_id
            or self._is_cancelled(workspace_id, job_id, run_id)
            or self._blobs.head(_keys(workspace_id, job_id, run_id).out_of_budget) is not None
        )

    # ================================================================== step: plan
    def plan(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``{"workspace_id", "job_id", "run_id"?}`` -> ``{"workspace_id", "job_id", "run_id", "batches",
        "plan_key"}``. Without ``run_id`` (a scheduled start in AWS) the run gets a fresh one, unless a run is
        in flight (then this one does nothing). Planning a run again returns the stored plan."""
        workspace_id, job_id = str(payload["workspace_id"]), str(payload["job_id"])
        run_id = payload.get("run_id") or None
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            return self._empty_plan(workspace_id, job_id, str(run_id or "gone"))
        if run_id is None:
            if not job.status.finished:
                log.info("summary job %s is %s: the scheduled run is skipped", job_id, job.status.value)
                return self._empty_plan(workspace_id, job_id, new_id())
            job = self._claim_run(job)
            run_id = job.run_id
        assert run_id is not None
        if job.run_id != run_id or job.status.finished or self._is_cancelled(workspace_id, job_id, run_id):
            return self._empty_plan(workspace_id, job_id, run_id)
        keys = _keys(workspace_id, job_id, run_id)
        stored = self._read_json(keys.run)
        if stored is None:
            stored = self._write_plan(job, run_id)
        totals = SummaryProgress(documents_total=int(stored["documents_total"]), batches_total=int(stored["batches"]))
        self._update(
            workspace_id,
            job_id,
            run_id,
            lambda j: replace(
                j,
                status=SummaryStatus.RUNNING,
                started_at=j.started_at or _parse_time(stored["started_at"]),
                progress=totals if j.status is SummaryStatus.QUEUED else j.progress,
            ),
        )
        return {
            "workspace_id": workspace_id,
            "job_id": job_id,
            "run_id": run_id,
            "batches": int(stored["batches"]),
            "plan_key": keys.plan,
        }

    def _claim_run(self, job: SummaryJob) -> SummaryJob:
        now = self._clock()
        claimed = replace(
            job,
            status=SummaryStatus.QUEUED,
            run_id=new_id(),
            runs=job.runs + 1,
            progress=SummaryProgress(),
            error=None,
            started_at=None,
            finished_at=None,
            updated_at=now,
        )
        self._store.put_job(claimed)
        return claimed

    def _empty_plan(self, workspace_id: str, job_id: str, run_id: str) -> dict[str, Any]:
        if self._blobs.head(EMPTY_PLAN_KEY) is None:
            self._blobs.put(EMPTY_PLAN_KEY, b"[]", content_type="application/json")
        return {
            "workspace_id": workspace_id,
            "job_id": job_id,
            "run_id": run_id,
            "batches": 0,
            "plan_key": EMPTY_PLAN_KEY,
            "skipped": True,
        }

    def _write_plan(self, job: SummaryJob, run_id: str) -> dict[str, Any]:
        keys = _keys(job.workspace_id, job.id, run_id)
        started = self._clock()
        since = job.watermark if job.result is not None else None
        model = self._chat_model()
        batcher = Batcher(max_chars=BATCH_CHARS, max_documents=self._batch_documents)
        total = batches = 0

        def write(batch: list[BatchDocument] | None) -> None:
            nonlocal batches
            if batch:
                body = [{"id": d.id, "name": d.name} for d in batch]
                self._put_json(keys.batch(batches), body)
                batches += 1

        for document in self._selected(job.workspace_id, Filter.parse(job.filter), since=since):
            total += 1
            chars = min(document.size_bytes or DOCUMENT_CHARS, DOCUMENT_CHARS) + 8
            write(batcher.add(BatchDocument(document.id, document.name, chars)))
        write(batcher.finish())
        items = [_run_payload_ids(job.workspace_id, job.id, run_id) | {"index": i} for i in range(batches)]
        self._put_json(keys.plan, items)
        run = {
            "run_id": run_id,
            "started_at": started.isoformat(),
            "since": since.isoformat() if since else None,
            "documents_total": total,
            "batches": batches,
            "model": model.name,
            "before": {
                "prompt_tokens": job.prompt_tokens,
                "completion_tokens": job.completion_tokens,
                "cost_usd": job.cost_usd,
            },
        }
        self._put_json(keys.run, run)  # last: a plan is complete once its run record exists
        log.info("summary job %s run %s: %d documents in %d batches", job.id, run_id, total, batches)
        return run

    def _selected(self, workspace_id: str, flt: Filter, *, since: datetime | None) -> Iterator[Document]:
        """Processed documents the filter selects (updated after ``since``), page by page; a crawl's own
        document is not text (its pages are)."""
        cursor: str | None = None
        while True:
            page = self._catalog.list_documents(
                workspace_id, status=DocumentStatus.PROCESSED, limit=_PAGE, cursor=cursor
            )
            for document in page.items:
                if document.source is DocumentSource.WEBSITE:
                    continue
                if since is not None and document.updated_at <= since:
                    continue
                if flt.matches(user_metadata(document.metadata), document_id=document.id, source=document.source.value):
                    yield document
            if page.cursor is None:
                return
            cursor = page.cursor

    def _any_selected(self, workspace_id: str, flt: Filter) -> bool:
        return next(self._selected(workspace_id, flt, since=None), None) is not None

    # ================================================================== step: map
    def map_batch(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``{"workspace_id", "job_id", "run_id", "index"}`` -> ``{"index", "points"}``: one batch summarised
        and stored. Raises when the model fails (the workflow retries the batch)."""
        workspace_id, job_id, run_id = str(payload["workspace_id"]), str(payload["job_id"]), str(payload["run_id"])
        index = int(payload["index"])
        keys = _keys(workspace_id, job_id, run_id)
        job = self._store.get_job(workspace_id, job_id)
        if job is None or job.run_id != run_id or self._is_cancelled(workspace_id, job_id, run_id):
            return {"index": index, "points": 0, "skipped": True}
        done = self._read_json(keys.mapped(index))
        if done is not None:  # summarised before a crash or a retry: not again (its spend counted once)
            self._record_usage(job, f"{run_id}:{index}", str(done["model"]), _usage_of(done))
            return {"index": index, "points": len(done["points"])}
        if self._out_of_budget(job, keys):  # the owner's allowance is spent: the run stops after its batches
            return {"index": index, "points": 0, "skipped": True, "budget_exhausted": True}
        listed = self._read_json(keys.batch(index))
        if listed is None:
            raise NotFound(f"summary run {run_id} has no batch {index}")
        model = self._chat_model()
        texts: list[tuple[str, str, str]] = []  # (id, name, text) of the documents that have text
        for entry in listed:
            text = self._document_text(workspace_id, str(entry["id"]))  # a batch at a time: memory stays flat
            if text.strip():
                texts.append((str(entry["id"]), str(entry["name"]), text))
        found, usage = read_documents(
            job, model, [text for _, _, text in texts], cache=self._replies, embed=self._lazy_embedder(workspace_id)
        )
        read = [(document_id, name) for document_id, name, _ in texts]
        per_document = [(document_id, points.points) for (document_id, _), points in zip(read, found, strict=True)]
        replies = [(document_id, points.reply[:300]) for (document_id, _), points in zip(read, found, strict=True)]
        ungrounded = sum(points.ungrounded for points in found)
        contradicted = sum(points.contradicted for points in found)
        points = batch_points(per_document)
        cost = round(token_cost(model.name, usage.prompt_tokens, usage.completion_tokens), COST_DIGITS)
        record = {
            "index": index,
            "model": model.name,
            "documents": [{"id": doc, "name": name} for doc, name in read],
            "listed": len(listed),
            "points": [{"kind": p.kind.value, "text": p.text, "document_ids": list(p.document_ids)} for p in points],
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": cost,
            "replies": [list(pair) for pair in replies],
            "ungrounded": ungrounded,
            "contradicted": contradicted,
        }
        self._put_json(keys.mapped(index), record)
        self._record_usage(job, f"{run_id}:{index}", model.name, usage)
        self._update_progress(
            workspace_id,
            job_id,
            run_id,
            lambda p: replace(p, documents_read=p.documents_read + len(listed), batches_done=p.batches_done + 1),
            usage=usage,
            cost=cost,
        )
        return {"index": index, "points": len(points)}

    def _lazy_embedder(self, workspace_id: str) -> Callable[[Sequence[str]], list[list[float]]]:
        """The workspace's ``embed_documents``, looked up on the first call (most batches never need it)."""
        found: list[Callable[[Sequence[str]], list[list[float]]]] = []

        def embed(texts: Sequence[str]) -> list[list[float]]:
            if not found:
                workspace = self._catalog.get_workspace(workspace_id)
                if workspace is None:
                    raise NotFound(f"workspace {workspace_id} not found")
                found.append(self._models.embedders.get(workspace.embedding_model).embed_documents)
            return found[0](texts)

        return embed

    def _document_text(self, workspace_id: str, document_id: str) -> str:
        """The start of the document's text (the preview the pipeline stores); "" when there is none."""
        try:
            return self._previews.get(preview_key(workspace_id, document_id)).decode("utf-8", errors="replace")
        except NotFound:
            log.info("document %s has no stored text (deleted, or processed before previews): skipped", document_id)
            return ""

    # ================================================================== step: a batch that failed
    def record_failed_batch(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``{"workspace_id", "job_id", "run_id", "index", "error"?}``: the batch failed after its retries."""
        workspace_id, job_id, run_id = str(payload["workspace_id"]), str(payload["job_id"]), str(payload["run_id"])
        index = int(payload["index"])
        keys = _keys(workspace_id, job_id, run_id)
        if self._blobs.head(keys.mapped(index)) is not None or self._blobs.head(keys.failed(index)) is not None:
            return {"index": index, "failed": False}
        error = payload.get("error")
        self._put_json(keys.failed(index), {"index": index, "error": error})
        self._update_progress(workspace_id, job_id, run_id, lambda p: replace(p, batches_failed=p.batches_failed + 1))
        return {"index": index, "failed": True}

    # ================================================================== step: a run that failed
    def fail_run(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``{"workspace_id", "job_id", "run_id"?, "error"?: {"Error", "Cause"}}``: plan, the map or the reduce
        failed after its retries (the AWS state machine's catch; ``run`` does this itself locally). The job
        ends ``failed`` with the reason, or ``cancelled`` if it was cancelled; a finished job is left as it is.
        Without ``run_id`` (a scheduled start that failed to plan) the job's current run is meant."""
        workspace_id, job_id = str(payload["workspace_id"]), str(payload["job_id"])
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            return {"status": "skipped"}
        run_id = str(payload.get("run_id") or job.run_id or "")
        failed = self._fail_run(workspace_id, job_id, run_id, _reason(payload.get("error")))
        return {"status": failed.status.value if failed is not None else "skipped"}

    # ================================================================== step: reduce
    def reduce(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``{"workspace_id", "job_id", "run_id"}`` -> ``{"status", "points"}``: the job's result."""
        workspace_id, job_id, run_id = str(payload["workspace_id"]), str(payload["job_id"]), str(payload["run_id"])
        keys = _keys(workspace_id, job_id, run_id)
        job = self._store.get_job(workspace_id, job_id)
        if job is None or job.run_id != run_id:
            return {"status": "skipped", "points": 0}
        if job.status.finished and job.status is not SummaryStatus.CANCELLED:
            return {"status": job.status.value, "points": len(job.result.points) if job.result else 0}
        if self._is_cancelled(workspace_id, job_id, run_id):
            final = self._finish(job, SummaryStatus.CANCELLED, error=None)
            return {"status": final.status.value, "points": 0}
        run = self._read_json(keys.run)
        if run is None:
            raise NotFound(f"summary run {run_id} has no plan")
        gathered = self._gather(keys, int(run["batches"]))
        previous = job.result if run["since"] is not None else None
        before = run["before"]
        status, error, result = self._outcome(job, run, gathered, previous)
        usage = gathered.usage
        cost = gathered.cost
        if result is not None and result is not previous and result.points:
            result, extra, extra_cost = self._in_language(job, result)
            usage, cost = add_usage(usage, extra), cost + extra_cost
            self._record_usage(job, f"{run_id}:rewrite", self._chat_model().name, extra)
        if result is not None and result is not previous:
            self._put_json(keys.result, result_to_record(result))
        now = self._clock()
        final = replace(
            job,
            status=status,
            error=error,
            result=result,
            progress=SummaryProgress(
                documents_total=int(run["documents_total"]),
                documents_read=gathered.listed,
                batches_total=int(run["batches"]),
                batches_done=gathered.done,
                batches_failed=gathered.failed,
            ),
            prompt_tokens=int(before["prompt_tokens"]) + usage.prompt_tokens,
            completion_tokens=int(before["completion_tokens"]) + usage.completion_tokens,
            cost_usd=round(float(before["cost_usd"]) + cost, COST_DIGITS),
            watermark=_parse_time(run["started_at"]) if status is SummaryStatus.SUCCEEDED else job.watermark,
            finished_at=now,
            updated_at=now,
        )
        if self._is_cancelled(workspace_id, job_id, run_id):  # cancelled while merging: cancelled it is
            final = replace(final, status=SummaryStatus.CANCELLED, result=job.result, error=None)
        self._store.put_job(final)
        return {"status": final.status.value, "points": len(final.result.points) if final.result else 0}

    def _outcome(
        self, job: SummaryJob, run: Mapping[str, Any], gathered: _Gathered, previous: SummaryResult | None
    ) -> tuple[SummaryStatus, str | None, SummaryResult | None]:
        batches = int(run["batches"])
        stopped = self._read_json(_keys(job.workspace_id, job.id, str(run["run_id"])).out_of_budget)
        if stopped is not None:  # not succeeded: the next run must read the documents this one did not
            return SummaryStatus.FAILED, _budget_error(stopped, gathered.done, batches), job.result
        note = (
            f"{gathered.failed} of {batches} batches failed after retries; their documents are not in the summary"
            if gathered.failed
            else None
        )
        if batches and not gathered.done:
            return SummaryStatus.FAILED, f"every batch failed ({gathered.failed} of {batches})", job.result
        if not int(run["documents_total"]):
            if previous is not None:  # nothing new since the last run: the result stands
                return SummaryStatus.SUCCEEDED, None, previous
            description = Filter.parse(job.filter).describe()
            return SummaryStatus.NO_DOCUMENTS, f"no documents match the filter ({description})", job.result
        candidates = list(gathered.candidates)
        if previous is not None:
            candidates += [Candidate(p.kind, p.text, p.document_ids, p.count) for p in previous.points]
        if not candidates:
            if previous is not None:
                return SummaryStatus.SUCCEEDED, note, previous
            return SummaryStatus.FAILED, "the model's answers held no point citing the documents", job.result
        workspace = self._catalog.get_workspace(job.workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {job.workspace_id} not found")
        embedder = self._models.embedders.get(workspace.embedding_model)
        points = merge_points(
            candidates, embed=embedder.embed_documents, max_points=job.max_points, threshold=self._threshold
        )
        names = dict(previous.document_names) if previous is not None else {}
        names.update(gathered.names)
        cited = {doc for point in points for doc in point.document_ids}
        read = gathered.read + (previous.documents_read if previous is not None else 0)
        result = SummaryResult(
            points=tuple(points),
            documents_read=read,
            document_names={doc: names.get(doc, doc) for doc in sorted(cited)},
        )
        return SummaryStatus.SUCCEEDED, note, result

    def _gather(self, keys: _Keys, batches: int) -> _Gathered:
        gathered = _Gathered()
        for index in range(batches):
            record = self._read_json(keys.mapped(index))
            if record is None:
                gathered.failed += 1  # recorded as failed, or never summarised (a run that stopped): not in it
                continue
            gathered.done += 1
            gathered.listed += int(record.get("listed", len(record["documents"])))
            gathered.read += len(record["documents"])
            gathered.names.update({str(d["id"]): str(d["name"]) for d in record["documents"]})
            gathered.usage = add_usage(gathered.usage, _usage_of(record))
            gathered.cost += float(record["cost_usd"])
            for point in record["points"]:
                ids = tuple(str(d) for d in point["document_ids"])
                gathered.candidates.append(Candidate(PointKind(point["kind"]), str(point["text"]), ids, len(ids)))
        return gathered

    def _in_language(self, job: SummaryJob, result: SummaryResult) -> tuple[SummaryResult, Usage, float]:
        """The result with its texts in ``job.language`` (one model call, only when they are not in it)."""
        texts = [point.text for point in result.points]
        if not needs_rewrite(texts, job.language):
            return result, Usage(), 0.0
        model = self._chat_model()
        try:
            reply, usage = collect(
                model.stream(rewrite_turns(texts, job.language), max_tokens=REWRITE_MAX_TOKENS, temperature=0.0)
            )
        except QuarryError as exc:  # the summary stands, in the words the batches used
            log.warning("rewriting summary %s into %s failed: %s", job.id, job.language, exc.message)
            return result, Usage(), 0.0
        rewritten = parse_rewrite(reply, texts)
        points = tuple(replace(point, text=text) for point, text in zip(result.points, rewritten, strict=True))
        cost = token_cost(model.name, usage.prompt_tokens, usage.completion_tokens)
        return replace(result, points=points), usage, cost

    # ================================================================== job records
    def _update(
        self, workspace_id: str, job_id: str, run_id: str, change: Callable[[SummaryJob], SummaryJob]
    ) -> SummaryJob | None:
        """Read, change, write the run's job, as a compare-and-set on the ``updated_at`` read (retried, with
        a short random pause, when another step wrote in between): concurrent batches each add their part.
        Nothing when the job is gone or runs another run. A cancelled run stays cancelled whatever the
        change says. ``Conflict`` when the job keeps changing under every attempt."""
        for attempt in range(UPDATE_ATTEMPTS):
            job = self._store.get_job(workspace_id, job_id)
            if job is None or job.run_id != run_id:
                return None
            changed = replace(change(job), updated_at=self._next_version(job))
            if self._is_cancelled(workspace_id, job_id, run_id):
                changed = replace(changed, status=SummaryStatus.CANCELLED, finished_at=job.finished_at or self._clock())
            if self._store.put_job_if(changed, job.updated_at):
                return changed
            time.sleep(random.uniform(0, UPDATE_PAUSE_SECONDS * (attempt + 1)))
        raise Conflict(f"summary job {job_id} kept changing while its progress was written; try again")

    def _next_version(self, job: SummaryJob) -> datetime:
        """The ``updated_at`` of a write over ``job``: now, but always after the version read, so every write
        is a new version even when two land within the clock's resolution."""
        return max(self._clock(), job.updated_at + timedelta(microseconds=1))

    def _update_progress(
        self,
        workspace_id: str,
        job_id: str,
        run_id: str,
        change: Callable[[SummaryProgress], SummaryProgress],
        *,
        usage: Usage | None = None,
        cost: float = 0.0,
    ) -> None:
        """Live progress (and spend) after a batch, added under concurrent batches without loss (``_update``);
        the reduce writes the totals again from the stored batch results."""
        spent = usage or Usage()
        try:
            self._update(
                workspace_id,
                job_id,
                run_id,
                lambda j: replace(
                    j,
                    progress=change(j.progress),
                    prompt_tokens=j.prompt_tokens + spent.prompt_tokens,
                    completion_tokens=j.completion_tokens + spent.completion_tokens,
                    cost_usd=round(j.cost_usd + cost, COST_DIGITS),
                ),
            )
        except QuarryError as exc:  # the job kept changing (or its store failed): the reduce writes it
            log.info("progress of summary job %s not written: %s", job_id, exc.message)

    def _finish(self, job: SummaryJob, status: SummaryStatus, *, error: str | None) -> SummaryJob:
        now = self._clock()
        final = replace(job, status=status, error=error, finished_at=job.finished_at or now, updated_at=now)
        self._store.put_job(final)
        return final

    def _fail_run(self, workspace_id: str, job_id: str, run_id: str, exc: Exception | str) -> SummaryJob | None:
        if isinstance(exc, str):
            reason = exc
        else:
            reason = exc.message if isinstance(exc, QuarryError) else f"{type(exc).__name__}: {exc}"
        job = self._store.get_job(workspace_id, job_id)
        if job is None or job.run_id != run_id or job.status.finished:
            return job
        if self._is_cancelled(workspace_id, job_id, run_id):
            return self._finish(job, SummaryStatus.CANCELLED, error=None)
        return self._finish(job, SummaryStatus.FAILED, error=f"the run failed: {reason}"[:1000])

    # ================================================================== spend
    def _ensure_allowance(self, user: str) -> None:
        """``BudgetExhausted`` (429, ``Retry-After``) once the user's tokens today reached the allowance."""
        if self._budget is not None:
            self._budget.check(user)

    def _out_of_budget(self, job: SummaryJob, keys: _Keys) -> bool:
        """Whether the run must stop: the owner's allowance was found spent, by this batch (which then writes
        the marker the other steps read) or an earlier one. Checked before each batch, never during one, as
        chat checks before an answer: batches already started finish."""
        if self._budget is None:
            return False
        if self._blobs.head(keys.out_of_budget) is not None:
            return True
        try:
            self._budget.check(job.owner)
        except BudgetExhausted as exc:
            log.info("summary job %s: the owner's daily token allowance is spent; the run stops", job.id)
            self._put_json(keys.out_of_budget, {"budget": exc.budget, "at": self._clock().isoformat()})
            return True
        return False

    def _record_usage(self, job: SummaryJob, part: str, model: str, usage: Usage) -> None:
        """Count what a batch (or the rewrite) spent in the usage ledger, as chat counts an answer: the job's
        owner's, in its workspace, once per ``part`` (a repeated step counts nothing)."""
        if self._usage is None or not (usage.prompt_tokens or usage.completion_tokens):
            return
        entry = usage_entry(
            message_id=f"summary:{job.id}:{part}",
            user=job.owner,
            workspace_id=job.workspace_id,
            model=model,
            usage=usage,
            at=self._clock(),
        )
        self._usage.record(entry)

    def _is_cancelled(self, workspace_id: str, job_id: str, run_id: str) -> bool:
        return self._blobs.head(_keys(workspace_id, job_id, run_id).cancelled) is not None

    # ================================================================== helpers
    def _chat_model(self) -> ChatModel:
        return self._models.chat_models.get()

    def _put_json(self, key: str, value: Any) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._blobs.put(key, data, content_type="application/json")

    def _read_json(self, key: str) -> Any:
        try:
            return json.loads(self._blobs.get(key))
        except NotFound:
            return None


@dataclass
class _Gathered:
    """What the reduce collects from a run's batch results."""

    candidates: list[Candidate] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    listed: int = 0  # documents of the summarised batches
    read: int = 0  # of them, those with text the model read
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0


def _usage_of(record: Mapping[str, Any]) -> Usage:
    return Usage(int(record["prompt_tokens"]), int(record["completion_tokens"]))


def _budget_error(stopped: Mapping[str, Any], done: int, batches: int) -> str:
    return (
        f"stopped after {done} of {batches} batches: the owner's daily allowance of {int(stopped['budget']):,} "
        "tokens is used up; it renews at 00:00 UTC, then run the job again"
    )


def _run_payload_ids(workspace_id: str, job_id: str, run_id: str) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "job_id": job_id, "run_id": run_id}


def _run_payload(job: SummaryJob, run_id: str) -> dict[str, Any]:
    return _run_payload_ids(job.workspace_id, job.id, run_id)


def _reason(error: object) -> str:
    """What a Step Functions catch holds (``{"Error", "Cause"}``; a Lambda's Cause is its error as JSON), said
    in one line."""
    if not isinstance(error, Mapping):
        return "the workflow stopped it"
    name, cause = str(error.get("Error") or "error"), error.get("Cause")
    if isinstance(cause, str) and cause.strip():
        try:
            detail = json.loads(cause)
        except ValueError:
            return cause.strip()
        if isinstance(detail, Mapping) and detail.get("errorMessage"):
            return str(detail["errorMessage"])
        return cause.strip()
    return name


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _check(spec: SummarySpec, *, now: datetime) -> _Checked:
    """The spec, checked: a 422 naming the first field that is wrong."""
    try:
        kind = SummaryKind(spec.kind)
    except ValueError:
        raise InvalidInput(
            f"kind: {spec.kind!r} is not a summary kind (use {', '.join(k.value for k in SummaryKind)})"
        ) from None
    instructions = spec.instructions.strip() if spec.instructions else None
    if instructions is not None and len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise InvalidInput(f"instructions: at most {MAX_INSTRUCTIONS_CHARS} characters")
    if kind is SummaryKind.CUSTOM and not instructions:
        raise InvalidInput("instructions: a custom summary needs instructions (what to summarise)")
    language = " ".join((spec.language or "").split())
    if not language or len(language) > MAX_LANGUAGE_CHARS or not _LANGUAGE.fullmatch(language):
        raise InvalidInput(
            f"language: a language name of letters and spaces, at most {MAX_LANGUAGE_CHARS} characters "
            f"(got {spec.language!r})"
        )
    max_points = spec.max_points
    if isinstance(max_points, bool) or not isinstance(max_points, int) or not 1 <= max_points <= MAX_POINTS_LIMIT:
        raise InvalidInput(f"max_points: a whole number from 1 to {MAX_POINTS_LIMIT} (got {max_points!r})")
    schedule = None
    if spec.schedule is not None and spec.schedule.strip():
        schedule = parse_schedule(spec.schedule, where="schedule", now=now).expression
    return _Checked(
        kind=kind,
        filter=Filter.parse(spec.filter, where="filter"),
        instructions=instructions,
        language=language,
        max_points=max_points,
        schedule=schedule,
    )
