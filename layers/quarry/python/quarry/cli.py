"""`quarry` command line: serve | ingest | search | ask | documents | eval | bench | cost | schema.

Each command parses its arguments, builds the services from Settings (the
composition root) and calls one use case; output shaping only lives here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from quarry.cli_common import (
    CLI_USER,
    DataDir,
    JsonOpt,
    WorkspaceOpt,
    fail,
    find_workspace,
    guarded,
    services_for,
    settings_for,
)
from quarry.errors import InvalidInput, NotFound, QuarryError
from quarry.models import DocumentStatus, SearchMode, SearchRequest, Workspace
from quarry.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Quarry: serverless RAG that also runs on one laptop."
)
# ============================================================================ ingest


def _files_under(paths: list[Path], *, skip: Path | None = None) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts))
            )
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInput(f"{path}: no such file or folder")
    return [f for f in files if skip is None or f.resolve() != skip.resolve()]  # a sidecar is no document


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to index.")],
    workspace: WorkspaceOpt,
    chunk_size: Annotated[int, typer.Option(help="Tokens per chunk (new workspace).")] = 256,
    chunk_overlap: Annotated[int, typer.Option(help="Overlapping tokens (new workspace).")] = 32,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="key=value metadata on every file (repeatable; 4, true, [a,b] and dates typed)."),
    ] = None,
    meta_file: Annotated[
        Path | None,
        typer.Option(
            "--meta-file",
            help='Per-file metadata: JSON {"file name": {...}} or CSV with a first column "file" (wins over --meta).',
        ),
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Parse and index files and folders into a workspace (created if missing)."""
    from rich.progress import Progress

    from quarry.cli_metadata import FileMetadata
    from quarry.services.workspaces import WorkspaceSpec

    settings = settings_for(data_dir, local_workflow_background=False)
    metadata = guarded(lambda: FileMetadata.from_options(meta, meta_file))
    files = guarded(lambda: _files_under(paths, skip=meta_file))
    for name in metadata.unmatched(files):
        typer.secho(f"warning: {meta_file} names {name!r}, which is not among the files", fg="yellow", err=True)
    with services_for(settings) as services:
        ws = services.workspaces.find_by_name(CLI_USER, workspace) or guarded(
            lambda: services.workspaces.create(
                CLI_USER, WorkspaceSpec(name=workspace, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
            )
        )
        summary: dict[str, Any] = {"workspace": ws.name, "documents": 0, "unchanged": 0, "chunks": 0, "failures": []}
        with Progress(disable=as_json, transient=True) as progress:
            task = progress.add_task("Indexing", total=len(files))
            for path in files:
                progress.update(task, description=f"Indexing {path.name}")
                _ingest_one(services, ws, path, summary, metadata)
                progress.advance(task)
    _print_ingest_summary(summary, as_json)
    if summary["failures"] and summary["documents"] + summary["unchanged"] == 0:
        raise typer.Exit(1)


def _ingest_one(services: Any, ws: Workspace, path: Path, summary: dict[str, Any], metadata: Any) -> None:
    try:
        fields = metadata.for_file(path)
        data = path.read_bytes()
        document, created = services.documents.add_file(CLI_USER, ws.id, path.name, data, metadata=fields)
    except (QuarryError, OSError) as exc:
        summary["failures"].append({"file": str(path), "reason": getattr(exc, "message", str(exc))})
        return
    document = services.documents.get(CLI_USER, ws.id, document.id)
    if not created and document.status is not DocumentStatus.ERROR:
        summary["unchanged"] += 1
        return
    if document.status is DocumentStatus.PROCESSED:
        summary["documents"] += 1
        summary["chunks"] += document.chunk_count
    else:
        summary["failures"].append({"file": str(path), "reason": document.status_reason or document.status.value})


def _print_ingest_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"{summary['workspace']}: {summary['documents']} documents indexed ({summary['chunks']} chunks), "
        f"{summary['unchanged']} unchanged, {len(summary['failures'])} failed"
    )
    for failure in summary["failures"]:
        typer.secho(f"  failed: {failure['file']}: {failure['reason']}", fg=typer.colors.YELLOW, err=True)


# ============================================================================ search


FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="Metadata filter, repeatable (AND): key=value, key=[a,b], key>=4, key<2024-06-01, key?, !key?.",
    ),
]
FilterJsonOpt = Annotated[
    str | None,
    typer.Option("--filter-json", help='The filter as JSON, as the API takes it: {"$or": [{"product": "X"}, ...]}.'),
]


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    workspace: WorkspaceOpt,
    mode: Annotated[SearchMode, typer.Option(help="dense, keyword or hybrid.")] = SearchMode.HYBRID,
    top_k: Annotated[int, typer.Option("--top-k", help="How many hits (1-100).")] = 10,
    filters: FilterOpt = None,
    filter_json: FilterJsonOpt = None,
    rerank: Annotated[bool, typer.Option(help="Rerank with the configured cross-encoder.")] = False,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Ranked hits with scores, document, title and the matching text span."""
    from quarry.cli_metadata import cli_filter
    from quarry.protocol import HitOut

    selected = guarded(lambda: cli_filter(filters, filter_json))
    with services_for(settings_for(data_dir)) as services:

        def run() -> Any:
            ws = find_workspace(services, workspace)
            request = SearchRequest(
                workspace_id=ws.id,
                query=query,
                top_k=top_k,
                mode=mode,
                rerank=rerank,
                filters=selected,
            )
            return services.search.search(CLI_USER, request)

        result = guarded(run)
    hits = [HitOut.of(h) for h in result.hits]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "mode": mode.value,
                    "took_ms": round(result.took_ms, 2),
                    "hits": [h.model_dump(mode="json") for h in hits],
                },
                indent=2,
            )
        )
        return
    if not hits:
        typer.echo("no hits")
    for n, h in enumerate(hits, 1):
        typer.secho(f"{n:>2}. {h.score:.4f}  {h.title or h.document_id}  [{h.start}:{h.end}]", bold=True)
        typer.echo("    " + " ".join(h.text.split())[:300])


# ============================================================================ ask


def _session_file(settings: Settings, workspace_id: str) -> Path:
    return settings.data_dir / "cli-sessions" / f"{workspace_id}.json"


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question (follow-ups use the conversation so far).")],
    workspace: WorkspaceOpt,
    new: Annotated[bool, typer.Option("--new", help="Start a new conversation.")] = False,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 384,
    filters: FilterOpt = None,
    filter_json: FilterJsonOpt = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Stream a grounded answer with numbered inline citations and the sources they point at."""
    from quarry.cli_metadata import cli_filter
    from quarry.services.chat import ChatRequest

    selected = guarded(lambda: cli_filter(filters, filter_json))
    settings = settings_for(data_dir)
    with services_for(settings) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        session_path = _session_file(settings, ws.id)
        session_id = None if new or not session_path.exists() else json.loads(session_path.read_text())["session_id"]
        request = ChatRequest(
            user=CLI_USER,
            text=question,
            session_id=session_id,
            workspace_id=ws.id,
            max_tokens=max_tokens,
            filters=selected,
        )
        sink = None if as_json else (lambda t: (sys.stdout.write(t), sys.stdout.flush()))
        outcome = guarded(lambda: services.chat.answer(request, on_token=sink))
        session_path.parent.mkdir(parents=True, exist_ok=True)
        session_path.write_text(json.dumps({"session_id": outcome.session.id}))
    _print_answer(outcome, as_json)


def _print_answer(outcome: Any, as_json: bool) -> None:
    from quarry.protocol import FinalEvent

    final = FinalEvent.of(session_id=outcome.session.id, message_id=outcome.message_id, answer=outcome.answer)
    if as_json:
        typer.echo(final.model_dump_json(indent=2))
        return
    typer.echo("")
    if final.citations:
        typer.echo("\nSources:")
    for c in final.citations:
        typer.echo(f"  [{c.n}] {c.title or c.document_id} [{c.start}:{c.end}]: {' '.join(c.text.split())[:160]}")


# ============================================================================ documents

documents_app = typer.Typer(
    no_args_is_help=True, help="The documents of a workspace: list them, retry a failed one, edit their metadata."
)
app.add_typer(documents_app, name="documents")


def _find_document(services: Any, ws: Workspace, name_or_id: str) -> Any:
    cursor: str | None = None
    while True:
        page = services.documents.list_documents(CLI_USER, ws.id, limit=500, cursor=cursor)
        for document in page.items:
            if name_or_id in (document.name, document.id):
                return document
        if page.cursor is None:
            raise NotFound(f"no document {name_or_id!r} in workspace {ws.name!r} (see `quarry documents list`)")
        cursor = page.cursor


@documents_app.command("list")
def documents_list(
    workspace: WorkspaceOpt,
    status: Annotated[DocumentStatus | None, typer.Option(help="Only documents with this status.")] = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Documents with their status (and the reason of a failure)."""
    from quarry.protocol import DocumentOut

    with services_for(settings_for(data_dir)) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        items = guarded(lambda: services.documents.list_documents(CLI_USER, ws.id, status=status, limit=500)).items
    if as_json:
        typer.echo(json.dumps([DocumentOut.of(d).model_dump(mode="json") for d in items], indent=2))
        return
    if not items:
        typer.echo("no documents")
    for d in items:
        reason = f"  ({d.status_reason})" if d.status_reason else ""
        typer.echo(f"{d.status.value:<10} {d.chunk_count:>6} chunks  {d.name}{reason}")


@documents_app.command("retry")
def documents_retry(
    document: Annotated[str, typer.Argument(help="The document's name (or id).")],
    workspace: WorkspaceOpt,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a failed document again (runs here, until it is processed or fails again)."""
    settings = settings_for(data_dir, local_workflow_background=False)
    with services_for(settings) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        found = guarded(lambda: _find_document(services, ws, document))
        guarded(lambda: services.documents.retry(CLI_USER, ws.id, found.id))
        after = services.documents.get(CLI_USER, ws.id, found.id)
    if as_json:
        from quarry.protocol import DocumentOut

        typer.echo(DocumentOut.of(after).model_dump_json(indent=2))
    elif after.status is DocumentStatus.PROCESSED:
        typer.echo(f"{after.name}: processed ({after.chunk_count} chunks)")
    else:
        message = f"{after.name}: {after.status.value}: {after.status_reason or ''}"
        typer.secho(message, fg=typer.colors.YELLOW, err=True)
    if after.status is not DocumentStatus.PROCESSED:
        raise typer.Exit(1)


@documents_app.command("set-meta")
def documents_set_meta(
    document: Annotated[str, typer.Argument(help="The document's name (or id).")],
    workspace: WorkspaceOpt,
    assignments: Annotated[list[str] | None, typer.Argument(help="key=value to set (typed as --meta).")] = None,
    unset: Annotated[list[str] | None, typer.Option("--unset", help="A key to remove (repeatable).")] = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Set or remove metadata keys of a document (its chunks follow in place, nothing is re-indexed)."""
    from quarry.cli_metadata import parse_meta_options
    from quarry.protocol import DocumentOut

    changes: dict[str, Any] = {**guarded(lambda: parse_meta_options(assignments or [])), **dict.fromkeys(unset or [])}
    if not changes:
        fail("nothing to change: give key=value and/or --unset key")
    with services_for(settings_for(data_dir)) as services:
        ws = guarded(lambda: find_workspace(services, workspace))
        found = guarded(lambda: _find_document(services, ws, document))
        updated = guarded(lambda: services.documents.set_metadata(CLI_USER, ws.id, found.id, changes))
    out = DocumentOut.of(updated)
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
        return
    typer.echo(f"{out.name}: " + (", ".join(f"{k}={v}" for k, v in out.metadata.items()) or "no metadata"))


# ============================================================================ serve, cost, schema


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    data_dir: DataDir = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --host other than loopback (the dev identity is then served to the network; "
            "QUARRY_LOCAL_PUBLIC_HOST names the host clients use).",
        ),
    ] = False,
) -> None:
    """Run the whole platform on this machine: REST, WebSocket chat, uploads, ingestion and the UI."""
    from quarry.local.server import run_server

    run_server(settings_for(data_dir), host=host, port=port, allow_remote=allow_remote)


@app.command("dead-letters")
def dead_letters(data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """Messages the local bus gave up on after 3 attempts (chat jobs, upload events)."""
    from quarry.local.bus import read_dead_letters

    letters = read_dead_letters(settings_for(data_dir).data_dir / "dead-letters")
    if as_json:
        typer.echo(json.dumps(letters, indent=2))
        return
    if not letters:
        typer.echo("no dead letters")
    for letter in letters:
        typer.echo(f"{letter['queue']}  {letter['message_id']}  receives={letter['receives']}  {letter['body'][:120]}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def cost(ctx: typer.Context) -> None:
    """Itemised monthly cost estimate of a deployment configuration (see `quarry cost --help`)."""
    from quarry.deployment.cost import main as cost_main

    raise typer.Exit(cost_main(list(ctx.args)))


@app.command()
def schema(out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None) -> None:
    """JSON Schema of every wire message (the frontend's types come from it)."""
    from quarry.schema_export import export_schema

    text = json.dumps(export_schema(), indent=2, sort_keys=True) + "\n"
    if out:
        out.write_text(text)
    else:
        typer.echo(text)


def _register_subcommands() -> None:
    from quarry import cli_config, cli_deploy, cli_smoke, cli_summaries
    from quarry.cli_eval import bench_app, eval_app

    app.add_typer(eval_app, name="eval")
    app.add_typer(bench_app, name="bench")
    for module in (cli_deploy, cli_smoke, cli_config, cli_summaries):
        module.register(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
