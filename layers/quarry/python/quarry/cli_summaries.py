"""`quarry summarize` and `quarry summaries list | show | cancel`: summary jobs from the command line.

``summarize`` runs the job here, with a progress bar, and prints its points with their counts and the
documents they cite; Ctrl-C cancels it. A ``--schedule`` is recorded with the job and honoured by
``quarry serve`` (this command runs it once, now).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from quarry.cli_common import CLI_USER, DataDir, JsonOpt, WorkspaceOpt, fail, find_workspace, guarded, services_for
from quarry.cli_common import settings_for as _settings_for
from quarry.errors import InvalidInput, NotFound
from quarry.summary_models import SummaryJob, SummaryKind, SummaryStatus

__all__ = ["register"]

POLL_SECONDS = 0.5
_HEADINGS = {"pro": "PRO", "con": "CON", "theme": "THEME", "point": "POINT"}

summaries_app = typer.Typer(no_args_is_help=True, help="Summary jobs of a workspace: list, show, cancel.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `quarry` CLI."""
    app.command(name="summarize")(summarize)
    app.add_typer(summaries_app, name="summaries")


def _filter_json(filters: list[str] | None, filter_json: str | None) -> dict[str, Any]:
    from quarry.filters import Filter, parse_cli_filters

    if filter_json is not None:
        if filters:
            raise InvalidInput("use --filter or --filter-json, not both")
        try:
            raw = json.loads(filter_json)
        except ValueError as exc:
            raise InvalidInput(f"--filter-json: not JSON ({exc})") from None
        return Filter.parse(raw, where="--filter-json").to_json()
    return parse_cli_filters(filters or []).to_json()


def summarize(
    workspace: WorkspaceOpt,
    kind: Annotated[SummaryKind, typer.Option(help="pros_cons, themes or custom.")] = SummaryKind.PROS_CONS,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help="Which documents: key=value, key>=4, key=\\[a,b], key? (repeatable: AND)."),
    ] = None,
    filter_json: Annotated[str | None, typer.Option("--filter-json", help="The filter as JSON (with $or).")] = None,
    instructions: Annotated[str | None, typer.Option(help="What to summarise (custom jobs).")] = None,
    language: Annotated[str, typer.Option(help="The language of the summary.")] = "English",
    max_points: Annotated[int, typer.Option("--max-points", help="Points kept per kind (1-20).")] = 5,
    schedule: Annotated[
        str | None, typer.Option(help="Re-run on new documents under `quarry serve`: cron(0 6 * * ? *), rate(1 day).")
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise every document the filter selects: pros and cons, themes, or your own instructions."""
    from quarry.services.summaries import SummarySpec

    raw_filter = guarded(lambda: _filter_json(filters, filter_json))
    spec = SummarySpec(
        kind=kind,
        filter=raw_filter,
        instructions=instructions,
        language=language,
        max_points=max_points,
        schedule=schedule,
    )
    settings = _settings_for(data_dir, local_workflow_background=True)
    with services_for(settings) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        job = guarded(lambda: services.summaries.create(CLI_USER, ws.id, spec))
        try:
            job = _follow(services, job, quiet=as_json)
        except KeyboardInterrupt:
            job = services.summaries.cancel(CLI_USER, ws.id, job.id)
            typer.secho("cancelled: the batch being summarised finishes, then the job stops", err=True)
        _print_job(services, job, as_json, points=True)
    if job.schedule and not as_json:
        typer.echo(f"Scheduled {job.schedule} (UTC): `quarry serve` runs it over new documents.")
    if job.status is not SummaryStatus.SUCCEEDED:
        raise typer.Exit(1)


def _follow(services: Any, job: SummaryJob, *, quiet: bool) -> SummaryJob:
    """Poll the job until it finishes, with a progress bar of batches and documents."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, disable=quiet, transient=True) as progress:
        task = progress.add_task("Planning", total=None, detail="")
        while not job.status.finished:
            time.sleep(POLL_SECONDS)
            job = services.summaries.get(CLI_USER, job.workspace_id, job.id)
            p = job.progress
            if p.batches_total:
                failed = f", {p.batches_failed} failed" if p.batches_failed else ""
                progress.update(
                    task,
                    description="Summarising",
                    total=p.batches_total,
                    completed=p.batches_done + p.batches_failed,
                    detail=f"{p.documents_read}/{p.documents_total} documents, "
                    f"batch {p.batches_done + p.batches_failed}/{p.batches_total}{failed}",
                )
    return job


def _print_job(services: Any, job: SummaryJob, as_json: bool, *, points: bool) -> None:
    from quarry.summary_protocol import SummaryJobOut

    out = SummaryJobOut.of(job, next_run_at=services.summaries.next_run_at(job))
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
        return
    p = out.progress
    seconds = ""
    if job.started_at and job.finished_at:
        seconds = f" in {(job.finished_at - job.started_at).total_seconds():.0f} s"
    typer.secho(f"{out.kind.value} of {out.filter_description}: {out.status.value}{seconds}", bold=True)
    typer.echo(
        f"  {p.documents_read}/{p.documents_total} documents, {p.batches_done}/{p.batches_total} batches"
        + (f" ({p.batches_failed} failed)" if p.batches_failed else "")
        + f"; {out.prompt_tokens + out.completion_tokens:,} tokens, ${out.cost_usd:.4f}; run {out.runs}"
    )
    if out.error:
        typer.secho(f"  {out.error}", fg=typer.colors.YELLOW, err=True)
    if out.next_run_at:
        typer.echo(f"  next run: {out.next_run_at:%Y-%m-%d %H:%M} UTC ({out.schedule})")
    if not points or out.result is None:
        return
    typer.echo("")
    for point in out.result.points:
        typer.secho(f"{_HEADINGS[point.kind]:<6}{point.text}", bold=True)
        names = ", ".join(c.document_name for c in point.citations[:5])
        more = point.count - min(len(point.citations), 5)
        typer.echo(
            f"      {point.count} document{'s' if point.count != 1 else ''}: {names}"
            + (f" +{more}" if more > 0 else "")
        )
    if not out.result.points:
        typer.echo("no points")


def _find_job(services: Any, workspace_id: str, job_id: str) -> SummaryJob:
    """A job by its id or a unique start of it."""
    try:
        found: SummaryJob = services.summaries.get(CLI_USER, workspace_id, job_id)
        return found
    except NotFound:
        pass
    matches: list[SummaryJob] = []
    cursor: str | None = None
    while True:
        page = services.summaries.list_jobs(CLI_USER, workspace_id, limit=200, cursor=cursor)
        matches += [job for job in page.items if job.id.startswith(job_id)]
        if page.cursor is None:
            break
        cursor = page.cursor
    if len(matches) != 1:
        raise NotFound(f"no single summary job {job_id!r} (see `quarry summaries list`)")
    return matches[0]


@summaries_app.command("list")
def summaries_list(workspace: WorkspaceOpt, data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """The workspace's summary jobs, newest first."""
    from quarry.summary_protocol import SummaryJobOut

    with services_for(_settings_for(data_dir)) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        jobs = guarded(lambda: services.summaries.list_jobs(CLI_USER, ws.id, limit=200)).items
        if as_json:
            rows = [
                SummaryJobOut.of(j, next_run_at=services.summaries.next_run_at(j)).model_dump(mode="json") for j in jobs
            ]
            typer.echo(json.dumps(rows, indent=2))
            return
    if not jobs:
        typer.echo("no summary jobs")
    for job in jobs:
        from quarry.filters import Filter

        p = job.progress
        schedule = f"  [{job.schedule}]" if job.schedule else ""
        typer.echo(
            f"{job.id[:8]}  {job.status.value:<12} {job.kind.value:<9} {p.documents_read:>5}/{p.documents_total:<5} "
            f"{job.created_at:%Y-%m-%d %H:%M}  {Filter.parse(job.filter).describe()}{schedule}"
        )


@summaries_app.command("show")
def summaries_show(
    job: Annotated[str, typer.Argument(help="The job's id (or the start of it).")],
    workspace: WorkspaceOpt,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """A job's status, progress, cost and points with their citations."""
    with services_for(_settings_for(data_dir)) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        found = guarded(lambda: _find_job(services, ws.id, job))
        _print_job(services, found, as_json, points=True)


@summaries_app.command("cancel")
def summaries_cancel(
    job: Annotated[str, typer.Argument(help="The job's id (or the start of it).")],
    workspace: WorkspaceOpt,
    data_dir: DataDir = None,
) -> None:
    """Stop a queued or running job after its current batch."""
    with services_for(_settings_for(data_dir)) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        found = guarded(lambda: _find_job(services, ws.id, job))
        if found.status.finished:
            fail(f"summary job {found.id[:8]} is {found.status.value}, not running")
        cancelled = guarded(lambda: services.summaries.cancel(CLI_USER, ws.id, found.id))
    typer.echo(f"{cancelled.id[:8]}: {cancelled.status.value}")
