"""Summary jobs over the constructed review set: load it, run the jobs, time and score them.

Used by ``quarry eval summaries`` (quality of one job, or of fresh jobs over a fresh set) and ``quarry
bench summaries`` (speed, memory and resumption of the 2,000-review target run).

* ``load_reviews``: the reviews as documents of a workspace through the bulk path the other benches use
  (``bulk_index``: chunked, embedded, searchable, marked processed), each with its user metadata
  (``Review.fields``: product, review id ...) in the catalog and the preview text the summary engine
  reads, as the ingestion pipeline writes it.
* ``run_job``: one job through the real engine (``SummaryService``) and the local model, in this
  process, with a ``MemoryTimeline`` sampling the resident set size over time (the target is flat memory:
  documents streamed batch by batch, never all in RAM).
* ``evaluate_job``: the job's result scored against the ground truth of the documents it selected
  (``summaries_eval.evaluate_summary``), the judge being the configured chat model, and stored with the
  job (``SummaryResult.evaluation``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quarry.errors import Conflict, InvalidInput, NotFound, QuarryError
from quarry.evaluation.answers import Judge
from quarry.evaluation.bench import RssSampler, current_rss_bytes
from quarry.evaluation.bulk_index import index_documents
from quarry.evaluation.review_set import (
    DEFAULT_SEED,
    PRODUCTS,
    REVIEW_SET,
    SMALL_SET,
    TARGET_SET,
    Review,
    generate_reviews,
    product,
    review,
    review_index,
)
from quarry.evaluation.summaries_eval import (
    SummaryEvaluation,
    calibrate_judge,
    calibration_pairs,
    combine,
    evaluate_summary,
)
from quarry.metadata import USER_METADATA_KEY, user_metadata
from quarry.models import Document, DocumentSource, DocumentStatus, Workspace
from quarry.ports import BlobStore, ParsedDocument
from quarry.services.documents import PREVIEW_CHARS, preview_key
from quarry.services.summaries import SummarySpec, run_prefix
from quarry.summary_models import SummaryJob, SummaryKind, SummaryStatus

if TYPE_CHECKING:
    from quarry.settings import Settings
    from quarry.wiring import Services

__all__ = [
    "TARGET_CITATION_VALIDITY",
    "TARGET_FAITHFULNESS",
    "TARGET_SECONDS",
    "JobRun",
    "LoadFigures",
    "MemoryTimeline",
    "ResumeCheck",
    "SummaryRunOptions",
    "describe_set",
    "document_items",
    "evaluate_job",
    "load_reviews",
    "resume_check",
    "rss_slope",
    "run_job",
    "run_summaries",
    "selected_documents",
    "store_evaluation",
    "truth_of",
    "wait_for",
]

_MB = 1024 * 1024


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class LoadFigures:
    documents: int
    chunks: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 2),
            "documents_per_second": round(self.documents / self.seconds, 2) if self.seconds else None,
        }


def document_items(workspace: Workspace, reviews: Iterable[Review]) -> list[tuple[Document, ParsedDocument]]:
    """Each review as a text document (id = review id) carrying its user metadata."""
    return [
        (
            Document(
                id=item.id,
                workspace_id=workspace.id,
                name=item.name,
                source=DocumentSource.TEXT,
                content_type="text/plain",
                size_bytes=len(item.text.encode("utf-8")),
                metadata={USER_METADATA_KEY: item.fields()},
            ),
            ParsedDocument(text=item.text, title=item.name),
        )
        for item in reviews
    ]


def load_reviews(
    services: Services,
    workspace: Workspace,
    reviews: Sequence[Review],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> LoadFigures:
    """Index ``reviews`` into ``workspace`` (bulk path) and store their previews; returns the figures."""
    started = time.perf_counter()
    items = document_items(workspace, reviews)
    previews = services.adapters.blob_store
    for document, parsed in items:
        previews.put(
            preview_key(workspace.id, document.id),
            parsed.text[: PREVIEW_CHARS + 1].encode("utf-8"),
            content_type="text/plain; charset=utf-8",
        )
    chunks = index_documents(services, workspace, items, on_progress=on_progress)
    return LoadFigures(documents=len(items), chunks=chunks, seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------- ground truth of a workspace


def _processed(services: Services, workspace_id: str) -> Iterable[Document]:
    cursor: str | None = None
    while True:
        page = services.adapters.catalog.list_documents(
            workspace_id, status=DocumentStatus.PROCESSED, limit=500, cursor=cursor
        )
        yield from page.items
        cursor = page.cursor
        if cursor is None:
            return


def selected_documents(services: Services, workspace_id: str, filter_json: Mapping[str, Any]) -> list[Document]:
    """The processed documents of the workspace that the job's filter selects (as the engine selects them)."""
    from quarry.filters import Filter

    chosen = Filter.parse(dict(filter_json))
    return [
        d
        for d in _processed(services, workspace_id)
        if chosen.matches(user_metadata(d.metadata), document_id=d.id, source=d.source.value)
    ]


def truth_of(documents: Iterable[Document]) -> dict[str, Review]:
    """The reviews of the constructed set among ``documents`` (by their user metadata), keyed by document id."""
    truth: dict[str, Review] = {}
    for document in documents:
        fields = user_metadata(document.metadata)
        if fields.get("review_set") != REVIEW_SET:
            continue
        review_id = fields.get("review_id")
        seed = fields.get("review_seed")
        if not isinstance(review_id, str) or isinstance(seed, bool) or not isinstance(seed, int):
            continue
        try:
            truth[document.id] = review(review_index(review_id), seed=seed)
        except InvalidInput:
            continue
    return truth


# --------------------------------------------------------------------------- memory over time


class MemoryTimeline(RssSampler):
    """``RssSampler`` that also keeps every sample, with a caller's progress figure (``progress()``, e.g.
    documents read) beside it: memory over time, to show it stays flat."""

    def __init__(self, interval_s: float = 2.0, progress: Callable[[], int] | None = None) -> None:
        super().__init__(interval_s)
        self.progress = progress
        self.samples: list[tuple[float, float, int | None]] = []  # (seconds, MB, progress)
        self._began = time.perf_counter()

    def _sample(self) -> None:
        rss = current_rss_bytes()
        if rss is None:
            return
        done: int | None = None
        if self.progress is not None:
            try:
                done = self.progress()
            except Exception:  # a failed progress read must not stop the sampling
                done = None
        self.samples.append((round(time.perf_counter() - self._began, 2), round(rss / _MB, 1), done))

    def __enter__(self) -> MemoryTimeline:
        self._began = time.perf_counter()
        super().__enter__()
        return self

    @property
    def peak_mb(self) -> float | None:
        return max((mb for _, mb, _ in self.samples), default=None)

    def to_dict(self, *, max_points: int = 60) -> dict[str, Any]:
        step = max(1, len(self.samples) // max_points)
        return {
            "interval_s": self.interval_s,
            "peak_mb": self.peak_mb,
            "first_mb": self.samples[0][1] if self.samples else None,
            "last_mb": self.samples[-1][1] if self.samples else None,
            "growth_mb_per_1000_documents": rss_slope(self.samples),
            "samples": [list(s) for s in self.samples[::step]],
        }


def rss_slope(samples: Sequence[tuple[float, float, int | None]], *, skip_first: float = 0.25) -> float | None:
    """Least-squares growth of RSS in MB per 1,000 documents read, over the samples after the first
    ``skip_first`` share of the run (model loading and first allocations are not growth). None when the
    progress did not move."""
    # From the first finished batch on: before it the models load, which is not growth.
    points = [(float(done), mb) for _, mb, done in samples if done]
    points = points[int(len(points) * skip_first) :]
    if len(points) < 3:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return round(slope * 1000, 2)


# --------------------------------------------------------------------------- running a job


@dataclass(frozen=True, slots=True)
class JobRun:
    """One job run to its end through the engine, timed."""

    product: str
    job: SummaryJob
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        job = self.job
        documents = job.progress.documents_total
        return {
            "product": self.product,
            "job_id": job.id,
            "status": job.status.value,
            "error": job.error,
            "filter": job.filter,
            "documents": documents,
            "documents_read": job.progress.documents_read,
            "batches_total": job.progress.batches_total,
            "batches_done": job.progress.batches_done,
            "batches_failed": job.progress.batches_failed,
            "seconds": round(self.seconds, 1),
            "documents_per_second": round(documents / self.seconds, 3) if self.seconds else None,
            "prompt_tokens": job.prompt_tokens,
            "completion_tokens": job.completion_tokens,
            "points": [
                {"kind": p.kind.value, "text": p.text, "count": p.count, "citations": len(p.document_ids)}
                for p in (job.result.points if job.result else ())
            ],
        }


def wait_for(
    services: Services,
    workspace_id: str,
    job_id: str,
    *,
    poll_s: float = 1.0,
    timeout_s: float = 3600.0,
    on_progress: Callable[[SummaryJob], None] | None = None,
    until: Callable[[SummaryJob], bool] | None = None,
) -> SummaryJob:
    """Poll the job until it finishes (or ``until`` says so); past ``timeout_s`` it is cancelled and a
    ``Conflict`` raised."""
    deadline = time.monotonic() + timeout_s
    store = services.adapters.summaries
    while True:
        job = store.get_job(workspace_id, job_id)
        if job is None:
            raise NotFound(f"summary job {job_id} disappeared")
        if on_progress is not None:
            on_progress(job)
        if job.status.finished or (until is not None and until(job)):
            return job
        if time.monotonic() > deadline:
            services.summaries.cancel(job.owner, workspace_id, job_id)
            raise Conflict(f"summary job {job_id} did not finish within {timeout_s:.0f} s: cancelled")
        time.sleep(poll_s)


def run_job(
    services: Services,
    user: str,
    workspace: Workspace,
    spec: SummarySpec,
    *,
    product_key: str = "",
    timeout_s: float = 3600.0,
    on_progress: Callable[[SummaryJob], None] | None = None,
) -> JobRun:
    """Create a job (its run starts on the local workflow) and wait for its end."""
    started = time.perf_counter()
    job = services.summaries.create(user, workspace.id, spec)
    finished = wait_for(services, workspace.id, job.id, timeout_s=timeout_s, on_progress=on_progress)
    return JobRun(product=product_key, job=finished, seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------- evaluating a job


def _texts(services: Services, workspace_id: str, document_ids: Iterable[str]) -> dict[str, str]:
    """Preview texts of documents outside the review set (for the judge)."""
    store = services.adapters.blob_store
    texts: dict[str, str] = {}
    for document_id in document_ids:
        try:
            texts[document_id] = store.get(preview_key(workspace_id, document_id)).decode("utf-8", errors="replace")
        except NotFound:
            continue
    return texts


def evaluate_job(services: Services, job: SummaryJob, *, judge: Judge | None) -> SummaryEvaluation:
    """Score a finished job's result against the documents its filter selects and their ground truth."""
    if job.result is None:
        raise Conflict(f"summary job {job.id} has no result to evaluate ({job.status.value})")
    selected = selected_documents(services, job.workspace_id, job.filter)
    truth = truth_of(selected)
    cited = {d for point in job.result.points for d in point.document_ids}
    texts = _texts(services, job.workspace_id, sorted(cited - set(truth)))
    workspace = services.adapters.catalog.get_workspace(job.workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {job.workspace_id} not found")
    embedder = services.models.embedders.get(workspace.embedding_model)
    return evaluate_summary(
        job.result,
        selected=[d.id for d in selected],
        truth=truth,
        texts=texts,
        judge=judge,
        embed=embedder.embed_documents,
    )


def store_evaluation(services: Services, job: SummaryJob, evaluation: SummaryEvaluation) -> SummaryJob:
    """Keep the figures with the job (``SummaryResult.evaluation``), as the API reports them."""
    current = services.adapters.summaries.get_job(job.workspace_id, job.id)
    if current is None or current.result is None:
        raise NotFound(f"summary job {job.id} has no result any more")
    updated = replace(current, result=replace(current.result, evaluation=evaluation.metrics()))
    services.adapters.summaries.put_job(updated)
    return updated


# --------------------------------------------------------------------------- the runs of the commands

#: The issue's targets for the 2,000-review run on this machine.
TARGET_SECONDS = 30 * 60
TARGET_FAITHFULNESS = 0.9
TARGET_CITATION_VALIDITY = 0.98


@dataclass(frozen=True, slots=True)
class SummaryRunOptions:
    reviews: int = SMALL_SET
    seed: int = DEFAULT_SEED
    products: tuple[str, ...] = ()  # empty: every product
    kind: SummaryKind = SummaryKind.PROS_CONS
    language: str = "English"
    max_points: int = 5
    judge: str | None = "default"  # a chat model id, "default" (the configured one) or None (no judge)
    judge_calibration: int = 0  # labelled (point, review) pairs to measure the judge on first
    resume_check: bool = False
    resume_kill_after: int = 2
    timeout_s: float = 3600.0
    memory_interval_s: float = 2.0
    keep: bool = False  # keep the workspace (and its jobs) for a look afterwards

    def __post_init__(self) -> None:
        if self.reviews < len(PRODUCTS):
            raise InvalidInput(f"reviews must be at least {len(PRODUCTS)} (one per product)")
        for key in self.products:
            product(key)

    @property
    def product_keys(self) -> tuple[str, ...]:
        return self.products or tuple(p.key for p in PRODUCTS)


def describe_set(reviews: Sequence[Review], seed: int) -> dict[str, Any]:
    languages: dict[str, int] = {}
    for item in reviews:
        languages[item.language] = languages.get(item.language, 0) + 1
    return {
        "set": REVIEW_SET,
        "source": "constructed: hand-written phrasings per aspect and polarity, sampled with a fixed seed",
        "seed": seed,
        "reviews": len(reviews),
        "products": {p.key: sum(1 for r in reviews if r.product == p.key) for p in PRODUCTS},
        "languages": languages,
        "mean_chars": round(sum(len(r.text) for r in reviews) / len(reviews), 1) if reviews else 0,
    }


def _spec(options: SummaryRunOptions, product_key: str) -> SummarySpec:
    return SummarySpec(
        kind=options.kind,
        filter={"product": product_key},
        language=options.language,
        max_points=options.max_points,
    )


def run_summaries(
    services: Services,
    options: SummaryRunOptions,
    *,
    stage: Callable[[str], None] = lambda _text: None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Load the review set into a fresh workspace, run one job per product through the engine, time the
    runs with memory sampled over time, score and store each result, optionally check resumption."""
    from quarry.evaluation.answers_run import EVAL_USER, judge_for
    from quarry.evaluation.retrieval_run import throwaway_workspace

    reviews = generate_reviews(options.reviews, seed=options.seed)
    chosen = [r for r in reviews if r.product in options.product_keys]
    workspace = throwaway_workspace(services, user=EVAL_USER)
    out: dict[str, Any] = {"reviews": describe_set(chosen, options.seed), "workspace": workspace.id}
    jobs: list[JobRun] = []
    try:
        stage(f"loading {len(chosen)} reviews into workspace {workspace.id}")
        out["load"] = load_reviews(services, workspace, chosen).to_dict()
        done_before = 0
        current = [0]

        def progress(job: SummaryJob) -> None:
            current[0] = done_before + job.progress.documents_read
            if on_progress is not None:
                on_progress(current[0], len(chosen))

        began = time.perf_counter()
        with MemoryTimeline(interval_s=options.memory_interval_s, progress=lambda: current[0]) as memory:
            for key in options.product_keys:
                stage(f"summarising {key}")
                run = run_job(
                    services,
                    EVAL_USER,
                    workspace,
                    _spec(options, key),
                    product_key=key,
                    timeout_s=options.timeout_s,
                    on_progress=progress,
                )
                jobs.append(run)
                done_before += run.job.progress.documents_total
        seconds = time.perf_counter() - began
        out["jobs"] = [run.to_dict() for run in jobs]
        out["total"] = _totals(jobs, seconds, len(chosen))
        out["memory"] = memory.to_dict()
        judge = judge_for(services, options.judge) if options.judge else None
        if judge is not None and options.judge_calibration:
            stage(f"calibrating the judge on {options.judge_calibration} labelled pairs")
            out["judge_calibration"] = calibrate_judge(judge, calibration_pairs(options.judge_calibration))
        evaluations = []
        for run in jobs:
            if run.job.result is None:
                continue
            stage(f"evaluating {run.product}" + (f" (judge {getattr(judge, 'name', 'model')})" if judge else ""))
            evaluation = evaluate_job(services, run.job, judge=judge)
            store_evaluation(services, run.job, evaluation)
            evaluations.append(evaluation)
            for entry in out["jobs"]:
                if entry["job_id"] == run.job.id:
                    entry["evaluation"] = evaluation.to_dict()
        if evaluations:
            out["evaluation"] = combine(evaluations).to_dict(include_points=False)
            stats = getattr(judge, "stats", None)
            out["evaluation"]["judge_stats"] = stats.to_dict() if stats is not None else None
        out["targets"] = _targets(out)
        if options.resume_check:
            key = options.product_keys[0]
            stage(f"resume check: a job over {key}, killed after {options.resume_kill_after} batches")
            check = resume_check(
                services,
                EVAL_USER,
                workspace,
                {"product": key, "review_id": {"in": [r.id for r in chosen if r.product == key][:RESUME_DOCUMENTS]}},
                kill_after=options.resume_kill_after,
                timeout_s=options.timeout_s,
            )
            out["resume"] = check.to_dict()
    finally:
        if options.keep:
            stage(f"kept workspace {workspace.id}")
        else:
            for run in jobs:
                with contextlib.suppress(QuarryError):
                    services.summaries.delete(EVAL_USER, workspace.id, run.job.id)
            services.workspaces.purge(workspace.id)
    return out


def _totals(jobs: Sequence[JobRun], seconds: float, documents: int) -> dict[str, Any]:
    return {
        "documents": documents,
        "seconds": round(seconds, 1),
        "documents_per_second": round(documents / seconds, 3) if seconds else None,
        "batches": sum(r.job.progress.batches_total for r in jobs),
        "batches_failed": sum(r.job.progress.batches_failed for r in jobs),
        "prompt_tokens": sum(r.job.prompt_tokens for r in jobs),
        "completion_tokens": sum(r.job.completion_tokens for r in jobs),
        "succeeded": all(r.job.status is SummaryStatus.SUCCEEDED for r in jobs),
    }


def _targets(out: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's targets beside the measured figures (time is for 2,000 reviews; a smaller run is
    extrapolated linearly and says so)."""
    total = out.get("total", {})
    evaluation = out.get("evaluation", {})
    documents = int(total.get("documents") or 0)
    seconds = float(total.get("seconds") or 0.0)
    for_target = seconds * TARGET_SET / documents if documents else None
    targets: dict[str, Any] = {
        "seconds_for_2000": round(for_target, 1) if for_target is not None else None,
        "seconds_for_2000_is": "measured" if documents == TARGET_SET else "extrapolated linearly from this run",
        "time_limit_s": TARGET_SECONDS,
        "time_met": for_target is not None and for_target < TARGET_SECONDS,
    }
    for name, bound in (("faithfulness", TARGET_FAITHFULNESS), ("citation_validity", TARGET_CITATION_VALIDITY)):
        value = evaluation.get(name)
        targets[name] = {"min": bound, "value": value, "met": value is not None and value >= bound}
    return targets


# --------------------------------------------------------------------------- resumption after a kill

_MARKER = "resume_check"
#: Documents of the resume check's job: several batches, so that it can be killed with some done and some not.
RESUME_DOCUMENTS = 96


@dataclass(frozen=True, slots=True)
class ResumeCheck:
    """A job killed (SIGKILL) in another process mid-run, then resumed here as ``quarry serve`` resumes."""

    job_id: str
    batches_total: int
    done_at_kill: int  # batch results stored when the process died
    redone: int  # of those, summarised again after the restart (should be 0)
    summarised_after: int  # batches the resumed run summarised
    status: str
    batches_done: int
    batches_failed: int
    seconds_to_kill: float
    seconds_after_restart: float
    resumed_jobs: int  # runs ``resume_interrupted`` started (the journal may hold others of this data dir)

    @property
    def passed(self) -> bool:
        return (
            self.status == SummaryStatus.SUCCEEDED.value
            and 0 < self.done_at_kill < self.batches_total
            and self.redone == 0
            and self.done_at_kill + self.summarised_after == self.batches_total
            and self.batches_done == self.batches_total
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "batches_total": self.batches_total,
            "done_at_kill": self.done_at_kill,
            "redone_after_restart": self.redone,
            "summarised_after_restart": self.summarised_after,
            "status": self.status,
            "batches_done": self.batches_done,
            "batches_failed": self.batches_failed,
            "seconds_to_kill": round(self.seconds_to_kill, 1),
            "seconds_after_restart": round(self.seconds_after_restart, 1),
            "resumed_jobs": self.resumed_jobs,
            "passed": self.passed,
        }


def _child_command(settings: Settings, user: str, workspace_id: str, spec_filter: Mapping[str, Any]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "quarry.evaluation.summary_bench",
        "--data-dir",
        str(settings.data_dir),
        "--user",
        user,
        "--workspace",
        workspace_id,
        "--filter",
        json.dumps(dict(spec_filter)),
    ]


def _read_json(store: BlobStore, key: str) -> Any:
    try:
        return json.loads(store.get(key))
    except NotFound:
        return None


def resume_check(
    services: Services,
    user: str,
    workspace: Workspace,
    spec_filter: Mapping[str, Any],
    *,
    kill_after: int = 2,
    timeout_s: float = 1800.0,
) -> ResumeCheck:
    """Start a pros-and-cons job in a child process, SIGKILL it once ``kill_after`` batches are stored,
    mark those batches' results, resume the run here (``SummaryService.resume_interrupted``, what ``quarry
    serve`` does at start) and check that it finished without summarising a marked batch again."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    began = time.perf_counter()
    child = subprocess.Popen(
        _child_command(services.settings, user, workspace.id, spec_filter),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.startswith("job "):
            raise Conflict(f"the child process did not start a job (exit {child.wait(timeout=60)})")
        job_id = line.split()[1]
        wait_for(
            services,
            workspace.id,
            job_id,
            timeout_s=timeout_s,
            until=lambda job: job.progress.batches_done >= kill_after or child.poll() is not None,
        )
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=60)
    killed_at = time.perf_counter()
    job = services.adapters.summaries.get_job(workspace.id, job_id)
    if job is None or job.run_id is None:
        raise NotFound(f"summary job {job_id} was not recorded")
    keys_prefix = run_prefix(workspace.id, job_id, job.run_id)
    store = services.adapters.blob_store
    total = job.progress.batches_total
    done_before: list[int] = []
    for index in range(total):
        key = f"{keys_prefix}map-{index}.json"
        record = _read_json(store, key)
        if record is not None:
            record[_MARKER] = True
            store.put(key, json.dumps(record).encode("utf-8"), content_type="application/json")
            done_before.append(index)
    resumed = services.summaries.resume_interrupted()
    final = wait_for(services, workspace.id, job_id, timeout_s=timeout_s)
    redone = after = 0
    for index in range(total):
        record = _read_json(store, f"{keys_prefix}map-{index}.json")
        if record is None:
            continue
        if index in done_before:
            redone += 0 if record.get(_MARKER) else 1
        else:
            after += 1
    return ResumeCheck(
        job_id=job_id,
        batches_total=total,
        done_at_kill=len(done_before),
        redone=redone,
        summarised_after=after,
        status=final.status.value,
        batches_done=final.progress.batches_done,
        batches_failed=final.progress.batches_failed,
        seconds_to_kill=killed_at - began,
        seconds_after_restart=time.perf_counter() - killed_at,
        resumed_jobs=len(resumed),
    )


def _child(argv: Sequence[str]) -> int:
    """The process the resume check kills: starts a pros-and-cons job and waits for it (``job <id>`` first)."""
    import argparse

    from quarry.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m quarry.evaluation.summary_bench")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--filter", required=True)
    args = parser.parse_args(argv)
    from quarry.wiring import build_services

    services = build_services(Settings().model_copy(update={"data_dir": Path(args.data_dir)}))
    try:
        spec = SummarySpec(kind=SummaryKind.PROS_CONS, filter=json.loads(args.filter))
        job = services.summaries.create(args.user, args.workspace, spec)
        print(f"job {job.id}", flush=True)
        wait_for(services, args.workspace, job.id)
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1:]))
