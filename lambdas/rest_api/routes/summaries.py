"""Summary jobs of a workspace: start one, list them, follow one, cancel or remove it, run it again.

Every route is the workspace's (a non-member gets 404, as for documents). Bodies: ``quarry.summary_protocol``.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from quarry.protocol import ListOut
from quarry.services.summaries import SummarySpec
from quarry.summary_models import SummaryJob
from quarry.summary_protocol import SummaryIn, SummaryJobOut
from routes.common import caller, no_content, services

router = APIGatewayRouter()


def _out(job: SummaryJob) -> SummaryJobOut:
    return SummaryJobOut.of(job, next_run_at=services().summaries.next_run_at(job))


def _accepted(job: SummaryJob) -> Response[Any]:
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=_out(job).model_dump_json())


@router.post("/workspaces/<workspace_id>/summaries")
def create_summary(workspace_id: str, body: SummaryIn) -> Response[Any]:
    """Start a summary job over the documents the filter selects: 202 with the job (``queued``)."""
    spec = SummarySpec(
        kind=body.kind,
        filter=body.filter,
        instructions=body.instructions,
        language=body.language,
        max_points=body.max_points,
        schedule=body.schedule,
    )
    return _accepted(services().summaries.create(caller(router), workspace_id, spec))


@router.get("/workspaces/<workspace_id>/summaries")
def list_summaries(
    workspace_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> ListOut[SummaryJobOut]:
    """The workspace's summary jobs, newest first, with status, progress, result and cost."""
    page = services().summaries.list_jobs(caller(router), workspace_id, limit=limit, cursor=cursor)
    return ListOut[SummaryJobOut](items=[_out(job) for job in page.items], cursor=page.cursor)


@router.get("/workspaces/<workspace_id>/summaries/<job_id>")
def get_summary(workspace_id: str, job_id: str) -> SummaryJobOut:
    return _out(services().summaries.get(caller(router), workspace_id, job_id))


@router.delete("/workspaces/<workspace_id>/summaries/<job_id>")
def delete_summary(workspace_id: str, job_id: str) -> Response[Any]:
    """A queued or running job is cancelled (202 with the job); a finished one is removed with its schedule (204)."""
    cancelled = services().summaries.delete(caller(router), workspace_id, job_id)
    return _accepted(cancelled) if cancelled is not None else no_content()


@router.post("/workspaces/<workspace_id>/summaries/<job_id>/runs")
def run_summary(workspace_id: str, job_id: str) -> Response[Any]:
    """Run a finished job again now, over documents new or changed since its last successful run (202)."""
    return _accepted(services().summaries.run_again(caller(router), workspace_id, job_id))
