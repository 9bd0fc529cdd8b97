"""Wire schemas of summary jobs: ``POST /workspaces/{id}/summaries`` and what the job endpoints return.

Kept beside ``quarry.protocol`` (same base models, same conventions): requests refuse unknown fields and
NUL characters; responses always carry every field. The use case (``quarry.services.summaries``) checks
the same limits again for any other caller (the CLI), with a 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from quarry.errors import InvalidInput
from quarry.filters import Filter
from quarry.protocol import _In, _Out
from quarry.schedules import parse_schedule
from quarry.summary_models import MAX_POINTS_LIMIT, SummaryJob, SummaryKind, SummaryStatus

__all__ = [
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_LANGUAGE_CHARS",
    "SummaryCitationOut",
    "SummaryIn",
    "SummaryJobOut",
    "SummaryPointOut",
    "SummaryProgressOut",
    "SummaryResultOut",
]

MAX_INSTRUCTIONS_CHARS = 2000
MAX_LANGUAGE_CHARS = 40
LANGUAGE_PATTERN = r"^[^\W\d_]+(?: [^\W\d_]+)*$"  # letters and single spaces: "English", "Brazilian Portuguese"


class SummaryIn(_In):
    """A summary job over every document ``filter`` selects (the filter language of search and chat)."""

    filter: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("filter", "filters"),
        description="Which documents: the filter JSON of search (`{}`: every document of the workspace).",
    )
    kind: Literal["pros_cons", "themes", "custom"]
    instructions: str | None = Field(
        default=None, max_length=MAX_INSTRUCTIONS_CHARS, description="What to summarise (required for `custom`)."
    )
    language: str = Field(
        default="English",
        min_length=1,
        max_length=MAX_LANGUAGE_CHARS,
        pattern=LANGUAGE_PATTERN,
        description="The language the summary is written in, whatever the documents' languages.",
    )
    max_points: int = Field(default=5, ge=1, le=MAX_POINTS_LIMIT, description="Points kept per kind.")
    schedule: str | None = Field(
        default=None,
        max_length=256,
        description="Re-run on new documents: `cron(0 6 * * ? *)` or `rate(1 day)` (EventBridge Scheduler, UTC).",
    )

    @field_validator("filter")
    @classmethod
    def _filter_parses(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Filter.parse(value)
        except InvalidInput as exc:  # a validation error (422) whose message names the key
            raise ValueError(exc.message) from None
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_parses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return parse_schedule(value, where="schedule").expression
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _instructions_for_custom(self) -> SummaryIn:
        if self.kind == "custom" and not (self.instructions and self.instructions.strip()):
            raise ValueError("instructions: a custom summary needs instructions (what to summarise)")
        return self


class SummaryCitationOut(_Out):
    document_id: str
    document_name: str


class SummaryPointOut(_Out):
    kind: Literal["pro", "con", "theme", "point"]
    text: str
    count: int = Field(description="How many documents mention it (citations may list fewer).")
    citations: list[SummaryCitationOut]


class SummaryResultOut(_Out):
    points: list[SummaryPointOut]
    documents_read: int
    evaluation: dict[str, float]


class SummaryProgressOut(_Out):
    documents_total: int
    documents_read: int
    batches_total: int
    batches_done: int
    batches_failed: int


class SummaryJobOut(_Out):
    id: str
    workspace_id: str
    kind: SummaryKind
    filter: dict[str, Any]
    filter_description: str
    instructions: str | None
    language: str
    max_points: int
    schedule: str | None
    next_run_at: datetime | None = Field(description="When the schedule runs the job next; null without one.")
    status: SummaryStatus
    progress: SummaryProgressOut
    result: SummaryResultOut | None
    error: str | None
    runs: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: SummaryJob, *, next_run_at: datetime | None = None) -> SummaryJobOut:
        result = None
        if job.result is not None:
            names = job.result.document_names
            result = SummaryResultOut(
                points=[
                    SummaryPointOut(
                        kind=point.kind.value,
                        text=point.text,
                        count=point.count,
                        citations=[
                            SummaryCitationOut(document_id=doc, document_name=names.get(doc, doc))
                            for doc in point.document_ids
                        ],
                    )
                    for point in job.result.points
                ],
                documents_read=job.result.documents_read,
                evaluation=dict(job.result.evaluation),
            )
        progress = job.progress
        return cls(
            id=job.id,
            workspace_id=job.workspace_id,
            kind=job.kind,
            filter=job.filter,
            filter_description=Filter.parse(job.filter).describe(),
            instructions=job.instructions,
            language=job.language,
            max_points=job.max_points,
            schedule=job.schedule,
            next_run_at=next_run_at,
            status=job.status,
            progress=SummaryProgressOut(
                documents_total=progress.documents_total,
                documents_read=progress.documents_read,
                batches_total=progress.batches_total,
                batches_done=progress.batches_done,
                batches_failed=progress.batches_failed,
            ),
            result=result,
            error=job.error,
            runs=job.runs,
            prompt_tokens=job.prompt_tokens,
            completion_tokens=job.completion_tokens,
            cost_usd=job.cost_usd,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )
