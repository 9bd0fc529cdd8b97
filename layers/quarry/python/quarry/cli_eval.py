"""`quarry eval ...` and `quarry bench ...`: quality and speed as commands that print JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from quarry.cli import DataDir, JsonOpt, guarded, services_for, settings_for
from quarry.models import SearchMode, SearchRequest

__all__ = ["bench_app", "eval_app"]

eval_app = typer.Typer(no_args_is_help=True, help="Measure retrieval and answer quality.")
bench_app = typer.Typer(no_args_is_help=True, help="Measure speed, throughput and memory.")

DatasetOpt = Annotated[
    Path, typer.Option("--dataset", help="A BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/).")
]
LimitOpt = Annotated[int | None, typer.Option("--limit-queries", help="Use the first N judged queries.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write an HTML report with plots here.")]
ModeChoice = Annotated[str, typer.Option("--mode", help="dense, keyword, hybrid or all.")]


def _modes(mode: str) -> list[SearchMode]:
    if mode == "all":
        return list(SearchMode)
    try:
        return [SearchMode(mode)]
    except ValueError:
        raise typer.BadParameter(f"mode must be dense, keyword, hybrid or all, not {mode!r}") from None


@contextmanager
def _throwaway(services: Any, dataset: Any, *, quiet: bool) -> Iterator[tuple[Any, Any]]:
    """A workspace holding the dataset's corpus for the duration of a run, dropped afterwards."""
    from rich.progress import Progress

    from quarry.evaluation.retrieval_run import ingest_corpus, throwaway_workspace

    workspace = throwaway_workspace(services)
    try:
        with Progress(disable=quiet, transient=True) as progress:
            task = progress.add_task(f"Indexing {len(dataset.corpus)} documents", total=None)
            figures = ingest_corpus(services, workspace, dataset, on_progress=lambda n: progress.advance(task, n))
        yield workspace, figures
    finally:
        services.workspaces.purge(workspace.id)


def _load(dataset: Path, limit: int | None) -> Any:
    from quarry.evaluation.beir import load_beir

    return guarded(lambda: load_beir(dataset, limit_queries=limit))


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: DatasetOpt,
    mode: ModeChoice = "hybrid",
    limit_queries: LimitOpt = None,
    rerank: Annotated[bool, typer.Option(help="Rerank with the configured cross-encoder.")] = False,
    report: ReportOpt = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """nDCG@10, Recall@10/100 and MRR@10 over a BEIR dataset, BEIR conventions."""
    from quarry.evaluation.bench import latency_stats
    from quarry.evaluation.retrieval_run import score_modes

    modes = _modes(mode)
    data = _load(dataset, limit_queries)
    settings = settings_for(data_dir, candidates=100)
    with services_for(settings) as services, _throwaway(services, data, quiet=as_json) as (workspace, figures):
        scores = guarded(lambda: score_modes(services, workspace, data, modes, rerank=rerank))
    per_mode = {
        name: {
            **s.report.to_dict(include_per_query=False),
            "mode": name,
            "rerank": rerank,
            "latency_ms": latency_stats(s.latencies_ms).to_dict(),
        }
        for name, s in scores.items()
    }
    out: dict[str, Any] = per_mode[modes[0].value] if len(modes) == 1 else {"modes": per_mode}
    out = {**out, "dataset": data.stats(), "ingest": figures.to_dict()}
    if report is not None:
        from quarry.evaluation.report import retrieval_sections, write_report

        files = write_report(
            report,
            "Retrieval evaluation",
            retrieval_sections({k: v.report for k, v in scores.items()}),
            data=out,
            name="retrieval",
        )
        out["report"] = str(files.html)
    _emit(out, as_json)


@eval_app.command("gate")
def eval_gate(
    results: Annotated[Path, typer.Argument(help="A results JSON written by an eval command.")],
    gates: Annotated[Path | None, typer.Option(help="Thresholds file (default eval/gates.json).")] = None,
) -> None:
    """Fail (exit 1) when a metric fell below its threshold, saying which and by how much."""
    from quarry.evaluation.gates import main as gates_main

    argv = [str(results)] + (["--gates", str(gates)] if gates else [])
    raise typer.Exit(gates_main(argv))


@eval_app.command("export-feedback")
def eval_export_feedback(
    since: Annotated[str, typer.Option(help="How far back: 7d, 24h, 30m or an ISO date.")] = "7d",
    out: Annotated[Path, typer.Option(help="JSONL file to write.")] = Path("feedback-eval.jsonl"),
    data_dir: DataDir = None,
) -> None:
    """Turn thumbs-down answers into an unannotated evaluation file for later labelling."""
    from quarry.evaluation.feedback_export import export_feedback, parse_since, write_jsonl

    with services_for(settings_for(data_dir)) as services:
        a = services.adapters
        result = guarded(lambda: export_feedback(a.catalog, a.chat_history, since=parse_since(since)))
    rows = result.rows if hasattr(result, "rows") else result
    write_jsonl(rows, out)
    typer.echo(f"wrote {len(rows)} rows to {out}")


# ============================================================================ bench


@bench_app.command("search")
def bench_search(
    dataset: DatasetOpt,
    mode: ModeChoice = "hybrid",
    clients: Annotated[list[int] | None, typer.Option("--clients", help="Concurrency levels.")] = None,
    limit_queries: LimitOpt = None,
    report: ReportOpt = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Search latency p50/p95/p99 and qps at 1 and 8 concurrent clients over the dataset's queries."""
    from quarry.evaluation.bench import run_concurrent

    levels = clients or [1, 8]
    data = _load(dataset, limit_queries)
    queries = [q.text for q in data.queries.values()]
    results = []
    with services_for(settings_for(data_dir)) as services, _throwaway(services, data, quiet=as_json) as (ws, figures):
        for m in _modes(mode):

            def one(text: str, m: SearchMode = m) -> object:
                return services.search.search_workspace(
                    ws, SearchRequest(workspace_id=ws.id, query=text, top_k=10, mode=m)
                )

            for n in levels:
                results.append(
                    run_concurrent(
                        one,
                        queries,
                        clients=n,
                        label=f"{m.value} x{n}",
                        params={"mode": m.value, "clients": n, "corpus": len(data.corpus)},
                    )
                )
    out = {"dataset": data.stats(), "ingest": figures.to_dict(), "runs": [r.to_dict() for r in results]}
    _bench_report(report, "Search benchmark", results, out)
    _emit(out, as_json)


@bench_app.command("ingest")
def bench_ingest(
    dataset: DatasetOpt,
    limit_docs: Annotated[int | None, typer.Option("--limit-docs", help="Use the first N documents.")] = None,
    report: ReportOpt = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Pipeline documents/s and chunks/s next to the raw embedder's chunks/s on the same chunks."""
    from quarry.evaluation.bench import RssSampler
    from quarry.evaluation.ingest_bench import measure_ingest

    data = _load(dataset, None)
    with services_for(settings_for(data_dir)) as services, RssSampler() as rss:
        out = guarded(lambda: measure_ingest(services, data, limit_docs=limit_docs))
    out["peak_rss_mb"] = rss.peak_mb
    _emit(out, as_json)


def _bench_report(report: Path | None, title: str, results: list[Any], out: dict[str, Any]) -> None:
    if report is None:
        return
    from quarry.evaluation.report import bench_sections, write_report

    files = write_report(report, title, bench_sections(results), data=out, name="bench")
    out["report"] = str(files.html)


def _emit(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    for key, value in out.items():
        typer.echo(f"{key}: {json.dumps(value, default=str)}")
