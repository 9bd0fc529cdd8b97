"""Summary jobs: pros and cons, themes, or a custom summary over every document a filter selects.

Pure data, like ``quarry.models``. A job is defined once (``SummaryJob``) and may run many times (each
run has its own ``run_id``): on request, and on its schedule when it has one. A run after the first
reads only documents new or changed since the previous run started (``SummaryJob.watermark``) and merges
what it finds into the previous result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from quarry.errors import InvalidInput
from quarry.models import utcnow

__all__ = [
    "MAX_POINTS_LIMIT",
    "PointKind",
    "SummaryJob",
    "SummaryKind",
    "SummaryPoint",
    "SummaryProgress",
    "SummaryResult",
    "SummaryStatus",
    "job_from_record",
    "job_to_record",
    "result_from_record",
    "result_to_record",
]

MAX_POINTS_LIMIT = 20


class SummaryKind(StrEnum):
    PROS_CONS = "pros_cons"
    THEMES = "themes"
    CUSTOM = "custom"


class PointKind(StrEnum):
    PRO = "pro"
    CON = "con"
    THEME = "theme"
    POINT = "point"  # a custom summary's point


class SummaryStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the run could not finish (every batch failed, or the reduce failed): see ``error``
    CANCELLED = "cancelled"
    NO_DOCUMENTS = "no_documents"  # the filter selects nothing: a clear outcome, not an empty summary

    @property
    def finished(self) -> bool:
        return self not in (SummaryStatus.QUEUED, SummaryStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class SummaryPoint:
    """One pro, con, theme or point, with the documents that support it."""

    kind: PointKind
    text: str
    #: Documents that mention it (their ids), most representative first; citations point at these.
    document_ids: tuple[str, ...]
    #: How many documents mention it (>= len(document_ids): citations may be capped, the count is not).
    count: int


@dataclass(frozen=True, slots=True)
class SummaryResult:
    points: tuple[SummaryPoint, ...]
    documents_read: int
    #: Names of the cited documents, so a result renders without one catalog read per citation.
    document_names: dict[str, str] = field(default_factory=dict)
    #: Evaluation of the result (``quarry eval summaries``): faithfulness, citation validity, coverage.
    evaluation: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SummaryProgress:
    documents_total: int = 0
    documents_read: int = 0
    batches_total: int = 0
    batches_done: int = 0
    #: Batches that failed after their retries: reported with the result, never silently dropped.
    batches_failed: int = 0


@dataclass(frozen=True, slots=True)
class SummaryJob:
    id: str
    workspace_id: str
    owner: str
    kind: SummaryKind
    #: The filter selecting the documents, in its canonical JSON form (``quarry.filters.Filter.to_json``).
    filter: dict[str, Any] = field(default_factory=dict)
    instructions: str | None = None
    #: The language the summary is written in (a name such as "English" or "German").
    language: str = "English"
    max_points: int = 5
    #: An EventBridge Scheduler expression (``cron(0 6 * * ? *)`` or ``rate(1 day)``) or None.
    schedule: str | None = None
    status: SummaryStatus = SummaryStatus.QUEUED
    progress: SummaryProgress = field(default_factory=SummaryProgress)
    result: SummaryResult | None = None
    error: str | None = None
    #: The current (or last) run; batches of one run are stored under it, so a resumed run skips done ones.
    run_id: str | None = None
    runs: int = 0
    #: When the last successful run started: the next run reads documents updated after it.
    watermark: datetime | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


# --------------------------------------------------------------------------- records
# The one JSON form of a job (and of its result): what the stores keep and what blobs (``result.json``)
# hold. Plain JSON types only; datetimes are ISO 8601 strings in UTC, enums their values, tuples lists.
# Floats go through ``json`` exactly (shortest repr), so a record round-trips to an equal job.


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidInput("datetimes must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _moment(text: str | None) -> datetime | None:
    return None if text is None else _parse(text)


def result_to_record(result: SummaryResult) -> dict[str, Any]:
    return {
        "points": [
            {
                "kind": point.kind.value,
                "text": point.text,
                "document_ids": list(point.document_ids),
                "count": point.count,
            }
            for point in result.points
        ],
        "documents_read": result.documents_read,
        "document_names": dict(result.document_names),
        "evaluation": dict(result.evaluation),
    }


def result_from_record(record: Mapping[str, Any]) -> SummaryResult:
    return SummaryResult(
        points=tuple(
            SummaryPoint(
                kind=PointKind(point["kind"]),
                text=point["text"],
                document_ids=tuple(point["document_ids"]),
                count=int(point["count"]),
            )
            for point in record["points"]
        ),
        documents_read=int(record["documents_read"]),
        document_names=dict(record.get("document_names", {})),
        evaluation=dict(record.get("evaluation", {})),
    )


def job_to_record(job: SummaryJob) -> dict[str, Any]:
    """``job`` as a JSON-able dict (``json.dumps`` takes it as is); ``InvalidInput`` for a naive datetime."""
    progress = job.progress
    return {
        "id": job.id,
        "workspace_id": job.workspace_id,
        "owner": job.owner,
        "kind": job.kind.value,
        "filter": job.filter,
        "instructions": job.instructions,
        "language": job.language,
        "max_points": job.max_points,
        "schedule": job.schedule,
        "status": job.status.value,
        "progress": {
            "documents_total": progress.documents_total,
            "documents_read": progress.documents_read,
            "batches_total": progress.batches_total,
            "batches_done": progress.batches_done,
            "batches_failed": progress.batches_failed,
        },
        "result": None if job.result is None else result_to_record(job.result),
        "error": job.error,
        "run_id": job.run_id,
        "runs": job.runs,
        "watermark": _when(job.watermark),
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        "cost_usd": job.cost_usd,
        "created_at": _when(job.created_at),
        "updated_at": _when(job.updated_at),
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
    }


def job_from_record(record: Mapping[str, Any]) -> SummaryJob:
    """The job ``job_to_record`` made (datetimes come back in UTC); keys it lacks take their defaults."""
    progress = record.get("progress") or {}
    result = record.get("result")
    return SummaryJob(
        id=record["id"],
        workspace_id=record["workspace_id"],
        owner=record["owner"],
        kind=SummaryKind(record["kind"]),
        filter=dict(record.get("filter") or {}),
        instructions=record.get("instructions"),
        language=record.get("language", "English"),
        max_points=int(record.get("max_points", 5)),
        schedule=record.get("schedule"),
        status=SummaryStatus(record.get("status", SummaryStatus.QUEUED)),
        progress=SummaryProgress(**{name: int(value) for name, value in progress.items()}),
        result=None if result is None else result_from_record(result),
        error=record.get("error"),
        run_id=record.get("run_id"),
        runs=int(record.get("runs", 0)),
        watermark=_moment(record.get("watermark")),
        prompt_tokens=int(record.get("prompt_tokens", 0)),
        completion_tokens=int(record.get("completion_tokens", 0)),
        cost_usd=float(record.get("cost_usd", 0.0)),
        created_at=_parse(record["created_at"]),
        updated_at=_parse(record["updated_at"]),
        started_at=_moment(record.get("started_at")),
        finished_at=_moment(record.get("finished_at")),
    )
