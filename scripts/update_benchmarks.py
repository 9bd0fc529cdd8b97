#!/usr/bin/env python
"""Regenerate docs/benchmarks.md from the JSON the quarry commands print. No number is typed by hand.

    python scripts/update_benchmarks.py                 run every command, save its JSON, write the page
    python scripts/update_benchmarks.py --only chat     rerun one command (others are read from their JSON)
    python scripts/update_benchmarks.py --from-raw      only rewrite the page from the saved JSON

Each command's output is kept in docs/benchmarks/<name>.json (with the command line and the machine it ran
on), so the page can always be traced back to, and rebuilt from, what the commands printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SCIFACT = DATASETS / "beir" / "scifact"
MINI_WIKI = DATASETS / "qa" / "rag-mini-wikipedia"
ANSWER_QUESTIONS = 30
ANSWER_POOL = 5
ANSWER_DISTRACTORS = 100
SUMMARY_REVIEWS = 2000


@dataclass(frozen=True)
class Step:
    name: str
    args: list[str]
    about: str
    module: str = "quarry.cli"  # run as `python -m <module> <args> --json`


def steps(questions: int) -> list[Step]:
    scifact = str(SCIFACT)
    return [
        Step("retrieval", ["eval", "retrieval", "--dataset", scifact, "--mode", "all"], "full SciFact, every mode"),
        Step("search", ["bench", "search", "--dataset", scifact, "--clients", "1", "--clients", "8"], "SciFact"),
        Step("ingest", ["bench", "ingest", "--dataset", scifact], "full SciFact corpus"),
        Step("chat", ["bench", "chat", "--questions", "5", "--max-tokens", "32"], "5 questions, 32 tokens"),
        Step(
            "answers",
            [
                "eval",
                "answers",
                "--dataset",
                str(MINI_WIKI / "questions.csv"),
                "--corpus",
                str(MINI_WIKI / "passages.csv"),
                "--limit",
                str(questions),
                "--pool",
                str(ANSWER_POOL),
                "--distractors",
                str(ANSWER_DISTRACTORS),
                "--judge",
                "default",
            ],
            f"first {questions} rag-mini-wikipedia questions, pooled corpus, local judge, 128 tokens",
        ),
        Step(
            "summaries",
            ["bench", "summaries", "--reviews", str(SUMMARY_REVIEWS)],
            f"{SUMMARY_REVIEWS:,} constructed reviews, a pros-and-cons job per product, local model and judge",
        ),
        Step(
            "lambda",
            ["--repeat", "5"],
            "default template's functions, 5 cold starts each, as the rehearsal tier runs them",
            module="tests.rehearsal.cold_start",
        ),
    ]


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": commit or None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def run_step(step: Step, raw_dir: Path, data_dir: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", step.module, *step.args, "--json"]
    if data_dir and step.module == "quarry.cli":
        command += ["--data-dir", data_dir]
    print(f"running {step.name}: {' '.join(command[2:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{step.name} failed with exit status {done.returncode}")
    record = {
        "name": step.name,
        "about": step.about,
        "command": ("quarry" if step.module == "quarry.cli" else f"python -m {step.module}")
        + " "
        + " ".join(step.args)
        + " --json",
        "ran_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "result": json.loads(done.stdout),
    }
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / f"{step.name}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


# --------------------------------------------------------------------------- rendering


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(record: dict[str, Any]) -> str:
    m = record["machine"]
    return (
        f"`{record['command']}` — {record['about']}; ran {record['ran_at']} in {record['seconds']} s on "
        f"{m['cpus']} CPUs, {m['platform']}, Python {m['python']}, commit {m['commit']}, "
        f"load average {', '.join(f'{x:.1f}' for x in m['load_average'] or [])}."
    )


def retrieval_section(record: dict[str, Any]) -> str:
    r = record["result"]
    modes = r.get("modes") or {r.get("mode", "hybrid"): r}
    rows = [
        [
            name,
            fmt(m.get("ndcg@10")),
            fmt(m.get("recall@10")),
            fmt(m.get("recall@100")),
            fmt(m.get("mrr@10")),
            ms(m.get("latency_ms", {}).get("p50_ms")),
            str(m.get("queries")),
        ]
        for name, m in modes.items()
    ]
    hybrid = modes.get("hybrid", {}).get("ndcg@10")
    verdict = "met" if hybrid is not None and hybrid >= 0.71 else "**not met**"
    d = r["dataset"]
    return "\n\n".join(
        [
            "## Retrieval quality (SciFact)",
            table(["mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50 ms", "queries"], rows),
            f"Target: hybrid nDCG@10 ≥ 0.71 — {verdict} ({fmt(hybrid)}). Corpus {d['documents']:,} documents, "
            f"{d['queries']} test queries; indexed in {fmt(r['ingest']['seconds'], 1)} s.",
            provenance(record),
        ]
    )


def search_section(record: dict[str, Any]) -> str:
    r = record["result"]
    targets = {1: 80.0, 8: 250.0}
    rows = []
    for run in r["runs"]:
        target = targets.get(run["clients"])
        met = "n/a" if target is None else ("met" if run.get("p99_ms", 1e9) <= target else "**not met**")
        rows.append(
            [
                run["label"],
                str(run["clients"]),
                str(run["requests"]),
                str(run["errors"]),
                fmt(run["qps"], 1),
                ms(run.get("p50_ms")),
                ms(run.get("p95_ms")),
                ms(run.get("p99_ms")),
                f"≤ {target:.0f} ms: {met}" if target else "n/a",
                ms(run.get("peak_rss_mb")),
            ]
        )
    columns = ["run", "clients", "requests", "errors", "qps", "p50 ms", "p95 ms", "p99 ms", "p99 target", "peak RSS MB"]
    return "\n\n".join(
        [
            "## Search speed (SciFact, no reranker)",
            table(columns, rows),
            f"Corpus {r['dataset']['documents']:,} documents.",
            provenance(record),
        ]
    )


def ingest_section(record: dict[str, Any]) -> str:
    r = record["result"]
    p, e = r["pipeline"], r["embedder"]
    rows = [
        ["documents", f"{p['documents']:,}"],
        ["chunks", f"{p['chunks']:,}"],
        ["pipeline seconds", fmt(p["seconds"], 1)],
        ["pipeline documents/s", fmt(p["documents_per_second"], 1)],
        ["pipeline chunks/s", fmt(p["chunks_per_second"], 1)],
        ["embedder alone, chunks/s", fmt(e["chunks_per_second"], 1)],
        ["pipeline / embedder", fmt(r.get("ratio"))],
        ["peak RSS MB", ms(r.get("peak_rss_mb"))],
    ]
    return "\n\n".join(
        ["## Ingestion throughput (SciFact corpus)", table(["figure", "value"], rows), provenance(record)]
    )


def chat_section(record: dict[str, Any]) -> str:
    r = record["result"]
    rows = []
    for way, label in (
        ("websocket", "WebSocket (local runtime)"),
        ("service", "chat service"),
        ("model_only", "model"),
    ):
        first, total = r[way]["first_token"] or {}, r[way]["total"] or {}
        rows.append([label, ms(first.get("p50_ms")), ms(first.get("p95_ms")), ms(total.get("p50_ms"))])
    o = r["overhead_ms"]
    verdict = "met" if o["meets_target"] else "**not met**"
    return "\n\n".join(
        [
            "## Chat latency",
            table(["path", "first token p50 ms", "first token p95 ms", "total p50 ms"], rows),
            f"WebSocket overhead (gateway, handlers and bus; per request, client time minus the server's own "
            f"time): first token p50 {ms(o['first_token']['p50_ms'])} ms, p95 {ms(o['first_token']['p95_ms'])} "
            f"ms; whole answer p50 {ms(o['total']['p50_ms'])} ms. Target < {o['target_ms']:.0f} ms — {verdict}. "
            f"Model {r['model']}, {r['questions']} questions, {r['max_tokens']} tokens each.",
            provenance(record),
        ]
    )


def answers_section(record: dict[str, Any]) -> str:
    r = record["result"]
    latency, first = r.get("latency") or {}, r.get("first_token") or {}
    validity = r.get("citation_validity")
    verdict = "n/a" if validity is None else ("met" if validity >= 0.95 else "**not met**")
    rows = [
        ["questions", str(r["items"])],
        ["exact match", fmt(r.get("exact_match"))],
        ["token F1", fmt(r.get("token_f1"))],
        ["reference in answer", fmt(r.get("reference_in_answer"))],
        ["judge correctness", fmt(r.get("judge_correctness"))],
        ["faithfulness", fmt(r.get("faithfulness"))],
        [f"citation validity (target ≥ 0.95: {verdict})", fmt(validity)],
        ["answers with / without citations", f"{r['cited_answers']} / {r['uncited_answers']}"],
        ["refusal rate", fmt(r.get("refusal_rate"))],
        ["latency p50 / p95 ms", f"{ms(latency.get('p50_ms'))} / {ms(latency.get('p95_ms'))}"],
        ["first token p50 ms", ms(first.get("p50_ms"))],
    ]
    judge = r.get("judge") or {}
    corpus = r.get("corpus", {})
    notes = (
        f"Judge: {judge.get('model', 'none')}: {judge.get('support_calls', 0)} support questions and "
        f"{judge.get('correctness_calls', 0)} correctness questions asked; settled by rule: "
        f"{judge.get('verbatim', 0)} statements quoted word for word (supported), "
        f"{judge.get('exact_matches', 0)} exact answers (correct), {judge.get('refusals', 0)} refusals (not "
        f"correct); {judge.get('unparsed', 0)} unreadable replies. The local 0.5B model is a weak judge (it "
        f"agreed with 8 of 12 hand-checked verdicts), so its correctness and faithfulness are indicative "
        f"only; `--judge` with a Bedrock model id uses the same prompts. Corpus: "
        f"{corpus.get('indexed', corpus.get('passages'))} of {corpus.get('passages')} passages (the 5 best "
        f"of each question by BM25 plus 100 sampled distractors: the dataset does not link questions to "
        f"passages). Citation validity is measured on the model's own text, before the chat service drops "
        f"markers that name no source."
    )
    return "\n\n".join(
        ["## Answer quality (rag-mini-wikipedia)", table(["metric", "value"], rows), notes, provenance(record)]
    )


def lambda_section(record: dict[str, Any]) -> str:
    r = record["result"]
    layer = r["layer"]
    sizes = table(
        ["Lambda layer", "value"],
        [
            ["unzipped MB (Lambda's limit: 250 with the code)", fmt(layer["unzipped_bytes"] / 1e6, 1)],
            ["zipped MB", fmt(layer["zipped_bytes"] / 1e6, 1)],
            ["top-level packages", str(len(layer["packages"]))],
        ],
    )
    starts = table(
        ["function", "memory MB", "init ms (median)", "init ms (max)", "modules loaded"],
        [
            [name, str(f["memory_mb"]), ms(f["init_ms_median"]), ms(f["init_ms_max"]), str(f["modules"])]
            for name, f in r["functions"].items()
        ],
    )
    note = (
        "Init is the handler's import (Lambda's INIT phase, less the runtime's own start), on this machine's "
        "CPU rather than a Lambda's share of one; compare functions with each other and across commits."
    )
    return "\n\n".join(["## Lambda package and cold start", sizes, starts, note, provenance(record)])


def judge_trust(calibration: dict[str, Any]) -> str:
    accuracy, yes_rate = calibration.get("accuracy"), calibration.get("yes_rate")
    if accuracy is None:
        return "not calibrated in this run, so its faithfulness is unverified"
    if accuracy < 0.7:
        return (
            f"it was right on {accuracy:.0%} of them (yes on {yes_rate:.0%}), no better than a coin, so its "
            "faithfulness is reported but not trusted and the ground truth's is the figure to read"
        )
    return f"it was right on {accuracy:.0%} of them, so its faithfulness is indicative"


def summaries_section(record: dict[str, Any]) -> str:
    r = record["result"]
    total, memory, targets = r.get("total", {}), r.get("memory", {}), r.get("targets", {})
    e, calibration, resume = r.get("evaluation", {}), r.get("judge_calibration") or {}, r.get("resume") or {}
    reviews = r.get("reviews", {})
    others = sum(n for language, n in reviews.get("languages", {}).items() if language != "en")

    def target(name: str) -> str:
        t = targets.get(name) or {}
        return f"target ≥ {t.get('min')}: " + ("met" if t.get("met") else "**not met**") if t else "n/a"

    for_2000 = targets.get("seconds_for_2000")
    rows = [
        ["reviews (not in English)", f"{reviews.get('reviews', 0):,} ({others:,})"],
        ["jobs (one per product)", str(len(r.get("jobs", [])))],
        ["batches (failed)", f"{total.get('batches')} ({total.get('batches_failed')})"],
        ["wall time s", fmt(total.get("seconds"), 1)],
        ["documents/s", fmt(total.get("documents_per_second"), 2)],
        [
            f"2,000 reviews, s ({targets.get('seconds_for_2000_is', 'n/a')})",
            f"{ms(for_2000)}: target < 1,800 s " + ("met" if targets.get("time_met") else "**not met**"),
        ],
        ["peak RSS MB (sampled every 2 s)", ms(memory.get("peak_mb"))],
        [
            "RSS growth MB per 1,000 documents (after the first batch)",
            fmt(memory.get("growth_mb_per_1000_documents"), 1),
        ],
        [f"citation validity ({target('citation_validity')})", fmt(e.get("citation_validity"))],
        [f"faithfulness, judge ({target('faithfulness')})", fmt(e.get("faithfulness"))],
        ["faithfulness, ground truth", fmt(e.get("faithfulness_ground_truth"))],
        ["judge agrees with the ground truth", fmt(e.get("judge_agreement"))],
        [
            "judge accuracy on labelled pairs (yes rate)",
            f"{fmt(calibration.get('accuracy'))} ({fmt(calibration.get('yes_rate'))})",
        ],
        ["coverage of frequent pros and cons", fmt(e.get("coverage"))],
        ["polarity accuracy", fmt(e.get("polarity_accuracy"))],
        [
            "resume after a kill",
            f"killed with {resume.get('done_at_kill')} of {resume.get('batches_total')} batches done; "
            f"{resume.get('redone_after_restart')} redone, {resume.get('summarised_after_restart')} summarised "
            f"after the restart: " + ("passed" if resume.get("passed") else "**failed**")
            if resume
            else "not run",
        ],
    ]
    notes = (
        "Evaluation set: constructed, not collected (`quarry.evaluation.review_set`, seed "
        f"{reviews.get('seed')}): no review data set with aspect labels is packaged on the registries this "
        "project can reach. Three products, each with known aspects (frequency, share of praise), reviews of "
        "one to three hand-written phrasings in English, German, Spanish or French, so every review's aspects "
        "and polarities are known. Citation validity, ground-truth faithfulness, coverage (pros and cons "
        "mentioned by at least 10% of a product's reviews, right polarity) and polarity accuracy come from "
        "that ground truth, after mapping each point to the aspects it names; points naming none go to the "
        f"judge. The judge ({e.get('judge') or 'none'}) is calibrated on labelled (point, review) pairs first: "
        f"{judge_trust(calibration)}; `--judge` with a Bedrock model id asks the same questions."
    )
    return "\n\n".join(
        ["## Summaries (constructed review set)", table(["figure", "value"], rows), notes, provenance(record)]
    )


SECTIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "retrieval": retrieval_section,
    "search": search_section,
    "ingest": ingest_section,
    "chat": chat_section,
    "answers": answers_section,
    "summaries": summaries_section,
    "lambda": lambda_section,
}


def render(records: dict[str, dict[str, Any]]) -> str:
    head = (
        "# Benchmarks\n\n"
        "Generated by `python scripts/update_benchmarks.py` from the JSON the commands printed "
        "(kept in `docs/benchmarks/*.json`); do not edit by hand. Local defaults: embedded Postgres + "
        "pgvector, all-MiniLM-L6-v2, Qwen2.5 0.5B through llama.cpp, no reranker."
    )
    parts = [head]
    for name, section in SECTIONS.items():
        parts.append(section(records[name]) if name in records else f"## {name}\n\nNot measured yet.")
    return "\n\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--raw", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--only", action="append", choices=list(SECTIONS), help="rerun only these (repeatable)")
    parser.add_argument("--from-raw", action="store_true", help="do not run anything; rebuild from saved JSON")
    parser.add_argument("--questions", type=int, default=ANSWER_QUESTIONS, help="rag-mini-wikipedia questions")
    parser.add_argument("--data-dir", help="Quarry data dir for the runs (default: the usual one)")
    args = parser.parse_args(argv)
    if not args.from_raw:
        for step in steps(args.questions):
            if not args.only or step.name in args.only:
                run_step(step, args.raw, args.data_dir)
    records = {}
    for name in SECTIONS:
        path = args.raw / f"{name}.json"
        if path.is_file():
            records[name] = json.loads(path.read_text(encoding="utf-8"))
    if not records:
        print(f"no results in {args.raw}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(records), encoding="utf-8")
    print(f"wrote {args.out} from {', '.join(records)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
