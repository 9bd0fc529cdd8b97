"""`quarry eval ...` and `quarry bench ...`: quality and speed as commands that print JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from quarry.cli_common import DataDir, JsonOpt, guarded, services_for, settings_for
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


QAFileOpt = Annotated[
    Path, typer.Option("--dataset", help="Questions: CSV or JSONL with question, answer, optional passages.")
]


@contextmanager
def _answer_target(
    services: Any,
    workspace: str | None,
    corpus: Path | None,
    questions: list[str],
    pool: tuple[int, int] | None,
    *,
    quiet: bool,
) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(user, workspace, description): an existing workspace, or a throwaway one holding the corpus file."""
    from rich.progress import Progress

    from quarry.evaluation.answers_run import CLI_USER, EVAL_USER, corpus_workspace, find_workspace, pool_passages
    from quarry.evaluation.qa_dataset import load_passages

    if workspace is not None:
        yield CLI_USER, guarded(lambda: find_workspace(services, workspace)), {"workspace": workspace}
        return
    assert corpus is not None
    passages = guarded(lambda: load_passages(corpus))
    described: dict[str, Any] = {"corpus": {"file": str(corpus), "passages": len(passages)}}
    if pool is not None:
        per_question, distractors = pool
        passages = guarded(
            lambda: pool_passages(passages, questions, per_question=per_question, distractors=distractors)
        )
        described["corpus"]["pooled"] = {
            "per_question": per_question,
            "distractors": distractors,
            "seed": 13,
            "method": "the best passages of each question by BM25, plus sampled distractors",
        }
        described["corpus"]["indexed"] = len(passages)
    with ExitStack() as stack:
        with Progress(disable=quiet, transient=True) as progress:
            task = progress.add_task(f"Indexing {len(passages)} passages", total=len(passages))
            ws, figures = stack.enter_context(
                corpus_workspace(services, passages, on_progress=lambda n: progress.advance(task, n))
            )
        yield EVAL_USER, ws, {**described, "ingest": figures.to_dict()}


@eval_app.command("answers")
def eval_answers(
    dataset: QAFileOpt,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Answer from this workspace.")] = None,
    corpus: Annotated[
        Path | None, typer.Option("--corpus", help="Answer from these passages (CSV/JSONL id,passage), indexed.")
    ] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", help="Judge model id, or 'default' for the configured chat model.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Ask the first N questions.")] = None,
    pool: Annotated[
        int | None, typer.Option("--pool", help="Index only the N best passages of each question (BM25).")
    ] = None,
    distractors: Annotated[int, typer.Option(help="With --pool: also index N other passages.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 128,
    top_k: Annotated[int, typer.Option("--top-k", help="Sources given to the model.")] = 5,
    report: ReportOpt = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Correctness (EM, token F1, judge), faithfulness, citation validity, refusals and latency of answers."""
    from rich.progress import Progress

    from quarry.evaluation.answers_run import AskOptions, answer_results, ask_all, judge_for
    from quarry.evaluation.qa_dataset import load_qa

    if (workspace is None) == (corpus is None):
        raise typer.BadParameter("give either --workspace or --corpus")
    items = guarded(lambda: load_qa(dataset, limit=limit))
    options = guarded(lambda: AskOptions(max_tokens=max_tokens, top_k=top_k))
    questions = [item.question for item in items]
    with (
        services_for(settings_for(data_dir)) as services,
        _answer_target(
            services, workspace, corpus, questions, None if pool is None else (pool, distractors), quiet=as_json
        ) as (user, ws, target),
    ):
        grader = guarded(lambda: judge_for(services, judge)) if judge else None
        with Progress(disable=as_json, transient=True) as progress:
            task = progress.add_task("Asking", total=len(items))
            asked = guarded(
                lambda: ask_all(services, user, ws, items, options, on_item=lambda _a: progress.advance(task))
            )
        scored, out = guarded(lambda: answer_results(asked, judge=grader, include_per_item=as_json or bool(report)))
        model = services.models.chat_models.info(options.model)
    out = {
        **out,
        "dataset": {"file": str(dataset), "questions": len(items)},
        **target,
        "settings": {"model": model.id, "max_tokens": max_tokens, "top_k": top_k, "temperature": options.temperature},
    }
    if report is not None:
        from quarry.evaluation.report import answer_sections, write_report

        files = write_report(report, "Answer evaluation", answer_sections(scored), data=out, name="answers")
        out["report"] = str(files.html)
    _emit(out, as_json)


JudgeOpt = Annotated[
    str, typer.Option("--judge", help="Judge model id, 'default' (the configured chat model) or 'none'.")
]
ReviewsOpt = Annotated[int, typer.Option("--reviews", help="Reviews of the constructed set to load (all products).")]
ProductOpt = Annotated[list[str] | None, typer.Option("--product", help="Summarise only these products.")]
CalibrateOpt = Annotated[
    int, typer.Option("--calibrate-judge", help="First measure the judge on N labelled (point, review) pairs.")
]


def _summary_options(**values: Any) -> Any:
    from quarry.evaluation.summary_bench import SummaryRunOptions

    judge = values.pop("judge")
    products = tuple(values.pop("products") or ())
    return guarded(lambda: SummaryRunOptions(judge=None if judge == "none" else judge, products=products, **values))


def _run_summaries_with_progress(services: Any, options: Any, *, quiet: bool) -> dict[str, Any]:
    """``run_summaries`` under a progress bar (none with --json): its stage as the label, documents read."""
    from rich.progress import Progress

    from quarry.evaluation.summary_bench import run_summaries

    with Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task("Summarising", total=None)
        out: dict[str, Any] = guarded(
            lambda: run_summaries(
                services,
                options,
                stage=lambda text: progress.update(task, description=text),
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        )
    return out


@eval_app.command("summaries")
def eval_summaries(
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="With --job: the job's workspace (name or id).")
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="Evaluate this finished job (and store the figures).")
    ] = None,
    reviews: ReviewsOpt = 60,
    seed: Annotated[int, typer.Option(help="Seed of the constructed review set.")] = 19,
    products: ProductOpt = None,
    kind: Annotated[str, typer.Option(help="pros_cons or themes.")] = "pros_cons",
    language: Annotated[str, typer.Option(help="Language of the summaries.")] = "English",
    max_points: Annotated[int, typer.Option(help="Points per kind.")] = 5,
    judge: JudgeOpt = "default",
    calibrate_judge: CalibrateOpt = 0,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Faithfulness, citation validity, coverage and polarity accuracy of summary jobs.

    With --workspace and --job: that job's result, scored against the documents its filter selects (the
    ground truth is known for documents of the constructed review set), stored with the job. Otherwise: the
    first --reviews reviews of the constructed set are loaded into a throwaway workspace and summarised, one
    job per product, then scored."""
    from quarry.summary_models import SummaryKind

    try:
        summary_kind = SummaryKind(kind)
    except ValueError:
        raise typer.BadParameter(f"kind must be pros_cons, themes or custom, not {kind!r}") from None
    if (workspace is None) != (job is None):
        raise typer.BadParameter("give both --workspace and --job, or neither (a fresh run)")
    with services_for(settings_for(data_dir)) as services:
        if workspace is not None and job is not None:
            out = guarded(lambda: _evaluate_existing(services, workspace, job, judge))
        else:
            options = _summary_options(
                reviews=reviews,
                seed=seed,
                products=products,
                kind=summary_kind,
                language=language,
                max_points=max_points,
                judge=judge,
                judge_calibration=calibrate_judge,
            )
            out = _run_summaries_with_progress(services, options, quiet=as_json)
    _emit(out, as_json)


def _evaluate_existing(services: Any, workspace: str, job_id: str, judge: str) -> dict[str, Any]:
    from quarry.errors import NotFound
    from quarry.evaluation.answers_run import CLI_USER, judge_for
    from quarry.evaluation.summary_bench import evaluate_job, store_evaluation

    found = services.workspaces.find_by_name(CLI_USER, workspace) or services.adapters.catalog.get_workspace(workspace)
    if found is None:
        raise NotFound(f"unknown workspace {workspace!r}")
    job = services.adapters.summaries.get_job(found.id, job_id)
    if job is None:
        raise NotFound(f"summary job {job_id} not found in workspace {workspace!r}")
    grader = judge_for(services, judge) if judge != "none" else None
    evaluation = evaluate_job(services, job, judge=grader)
    store_evaluation(services, job, evaluation)
    return {"workspace": found.id, "job_id": job.id, "stored": True, **evaluation.to_dict()}


@eval_app.command("gate")
def eval_gate(
    results: Annotated[Path, typer.Argument(help="A results JSON written by an eval command.")],
    gates: Annotated[Path | None, typer.Option(help="Thresholds file (default eval/gates.json).")] = None,
) -> None:
    """Fail (exit 1) when a metric fell below its threshold, saying which and by how much."""
    from quarry.evaluation.gates import main as gates_main

    argv = [str(results)] + (["--gates", str(gates)] if gates else [])
    raise typer.Exit(gates_main(argv))


@eval_app.command("ci-slice")
def eval_ci_slice(
    datasets: Annotated[
        Path | None, typer.Option("--datasets", help="The shared datasets folder (default ../shared/datasets).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Results JSON to write.")] = Path("eval-results-ci.json"),
    gates: Annotated[Path | None, typer.Option(help="Thresholds (default eval/gates-ci.json).")] = None,
    questions: Annotated[int, typer.Option("--questions", help="rag-mini-wikipedia questions to ask.")] = 20,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 64,
    gate: Annotated[bool, typer.Option(help="Check the results against the gates.")] = True,
    data_dir: DataDir = None,
) -> None:
    """The CI slice: SciFact (50 queries) and rag-mini-wikipedia questions, one results JSON, then the gates."""
    from quarry.evaluation.ci_slice import DEFAULT_DATASETS, SliceSpec, run_ci_slice, write_results
    from quarry.evaluation.gates import main as gates_main
    from quarry.paths import PROJECT_ROOT

    spec = guarded(
        lambda: SliceSpec(datasets=datasets or DEFAULT_DATASETS, qa_questions=questions, max_tokens=max_tokens)
    )
    settings = settings_for(data_dir, candidates=100)

    def stage(text: str) -> None:
        typer.secho(f"ci-slice: {text}", err=True, dim=True)

    with services_for(settings) as services:
        results = guarded(lambda: run_ci_slice(services, spec, stage))
    guarded(lambda: write_results(results, out))
    typer.echo(f"wrote {out} ({results['seconds']['total']} s)")
    if gate:
        raise typer.Exit(gates_main([str(out), "--gates", str(gates or PROJECT_ROOT / "eval" / "gates-ci.json")]))


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
    rows = result.rows
    guarded(lambda: write_jsonl(rows, out))
    typer.echo(f"wrote {len(rows)} rows to {out}")


# ============================================================================ bench


@bench_app.command("search")
def bench_search(
    dataset: DatasetOpt,
    mode: ModeChoice = "hybrid",
    clients: Annotated[list[int] | None, typer.Option("--clients", help="Concurrency levels.")] = None,
    limit_queries: LimitOpt = None,
    filtered: Annotated[
        bool, typer.Option("--filtered", help="Also time searches filtered to 10% of the documents (after the runs).")
    ] = False,
    report: ReportOpt = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Search latency p50/p95/p99 and qps at 1 and 8 concurrent clients over the dataset's queries;
    ``--filtered``: the same searches with and without a metadata filter selecting 10% of the documents."""
    from quarry.evaluation.bench import measure_filtered_search, run_concurrent

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
        narrowed = (
            guarded(lambda: measure_filtered_search(services, ws, list(data.corpus), queries)) if filtered else None
        )
    out = {"dataset": data.stats(), "ingest": figures.to_dict(), "runs": [r.to_dict() for r in results]}
    if narrowed is not None:
        out["filtered"] = narrowed
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


@bench_app.command("chat")
def bench_chat(
    questions: Annotated[int, typer.Option(help="How many questions (1-8).")] = 5,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 32,
    report: ReportOpt = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Time to first token and total time of WebSocket chat through the local runtime, next to the chat
    service and the bare model; the WebSocket overhead (bus + handlers) per request, target < 50 ms."""
    from quarry.evaluation.bench import RssSampler
    from quarry.evaluation.chat_bench import ChatBenchOptions, run_chat_bench

    options = guarded(lambda: ChatBenchOptions(questions=questions, max_tokens=max_tokens))
    with RssSampler() as rss:
        out = guarded(lambda: run_chat_bench(settings_for(data_dir), options))
    out["peak_rss_mb"] = rss.peak_mb
    if report is not None:
        from quarry.evaluation.report import LatencyChart, Table, write_report

        rows = [[r["way"], r["question"], r["first_token_ms"], r["total_ms"]] for r in out["runs"]]
        sections: list[Any] = [
            LatencyChart(
                title=f"Time to first token: {way}",
                latencies_ms=[r["first_token_ms"] for r in out["runs"] if r["way"] == way and r["first_token_ms"]],
            )
            for way in ("websocket", "service", "model")
        ]
        sections.append(Table(title="Answers", columns=["way", "question", "first token ms", "total ms"], rows=rows))
        files = write_report(report, "Chat benchmark", sections, data=out, name="bench-chat")
        out["report"] = str(files.html)
    _emit(out, as_json)


@bench_app.command("summaries")
def bench_summaries(
    reviews: ReviewsOpt = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the constructed review set.")] = 19,
    products: ProductOpt = None,
    judge: JudgeOpt = "default",
    calibrate_judge: CalibrateOpt = 30,
    resume_check: Annotated[
        bool, typer.Option(help="Also kill a job's process mid-run and check that it resumes.")
    ] = True,
    kill_after: Annotated[int, typer.Option(help="Resume check: kill after this many batches.")] = 2,
    timeout: Annotated[float, typer.Option(help="Longest a job may take, in seconds.")] = 3600.0,
    keep: Annotated[bool, typer.Option(help="Keep the workspace and its jobs afterwards.")] = False,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """A pros-and-cons job per product over the constructed review set, through the real engine and the
    local model: wall time, documents/s, batches, resident memory over time, the quality figures, and
    (--resume-check) a run killed mid-job that resumes from its last finished batch."""
    from quarry.evaluation.bench import RssSampler

    options = _summary_options(
        reviews=reviews,
        seed=seed,
        products=products,
        judge=judge,
        judge_calibration=calibrate_judge,
        resume_check=resume_check,
        resume_kill_after=kill_after,
        timeout_s=timeout,
        keep=keep,
    )
    with services_for(settings_for(data_dir)) as services, RssSampler() as rss:
        out = _run_summaries_with_progress(services, options, quiet=as_json)
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
