"""The CI slice: a small, fixed, fast evaluation whose ONE results JSON the gates read (see eval/README.md).

* Retrieval and search speed: ``build_slice`` of SciFact (50 test queries, their judged documents and
  500 sampled distractors, seed 13) indexed in a throwaway workspace; nDCG@10, Recall@10/100 and MRR@10
  in each mode, then hybrid search latency at 1 and 8 concurrent clients over the slice's queries.
  ``make test`` runs this on any machine, so its gates judge no absolute speed: search is gated only as
  the ratio of the two runs' p99 (``eval/gates-ci.json``); the absolute figures are ``quarry bench``'s.
* Answers: the first N questions of rag-mini-wikipedia. Its questions carry no link to their passages,
  so the corpus is pooled: the 5 best passages of each question by BM25 over all 3,200 passages plus
  100 sampled distractors (seed 13), indexed in a throwaway workspace. Each question is asked through
  the chat service (temperature 0); citation validity, EM, token F1, refusal rate and latency are
  scored (no judge: CI time is kept for the questions).

The datasets are read where they are (``../shared/datasets`` next to the repository), never copied.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quarry.errors import InvalidInput, NotFound
from quarry.evaluation.answers_run import (
    EVAL_USER,
    AskOptions,
    answer_results,
    ask_all,
    corpus_workspace,
    pool_passages,
)
from quarry.evaluation.beir import BeirDataset, build_slice, load_beir
from quarry.evaluation.bench import by_clients, latency_stats, run_concurrent
from quarry.evaluation.qa_dataset import load_passages, load_qa
from quarry.evaluation.retrieval_run import ingest_corpus, score_modes, throwaway_workspace
from quarry.models import SearchMode, SearchRequest
from quarry.paths import PROJECT_ROOT
from quarry.wiring import Services

__all__ = ["DEFAULT_DATASETS", "SliceSpec", "answers_slice", "retrieval_slice", "run_ci_slice", "write_results"]

DEFAULT_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
SCIFACT = Path("beir") / "scifact"
MINI_WIKI = Path("qa") / "rag-mini-wikipedia"

Stage = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SliceSpec:
    datasets: Path = DEFAULT_DATASETS
    queries: int = 50
    distractors: int = 500
    seed: int = 13
    search_clients: tuple[int, ...] = (1, 8)
    qa_questions: int = 20
    qa_pool: int = 5
    qa_distractors: int = 100
    max_tokens: int = 64

    def __post_init__(self) -> None:
        if self.qa_questions < 1 or self.queries < 1:
            raise InvalidInput("the slice needs at least one query and one question")
        if not self.search_clients or min(self.search_clients) < 1:
            raise InvalidInput("search clients must be at least 1")

    def check(self) -> None:
        for folder in (self.datasets / SCIFACT, self.datasets / MINI_WIKI):
            if not folder.is_dir():
                raise NotFound(f"dataset folder not found: {folder} (the data lives in ../shared/datasets)")


def _noop(_stage: str) -> None:
    return None


def _search_speed(services: Services, workspace: Any, data: BeirDataset, clients: Sequence[int]) -> dict[str, Any]:
    queries = [q.text for q in data.queries.values()]

    def one(text: str) -> object:
        request = SearchRequest(workspace_id=workspace.id, query=text, top_k=10, mode=SearchMode.HYBRID)
        return services.search.search_workspace(workspace, request)

    params = {"mode": "hybrid", "corpus": len(data.corpus), "rerank": False}
    runs = [run_concurrent(one, queries, clients=n, label=f"hybrid x{n}", params=params) for n in clients]
    return by_clients(runs)


def retrieval_slice(services: Services, spec: SliceSpec, stage: Stage = _noop) -> dict[str, Any]:
    """``{"retrieval": {mode: metrics}, "search": {"clients_<n>": figures}, "scifact": {...}}``."""
    data = build_slice(
        load_beir(spec.datasets / SCIFACT), queries=spec.queries, distractors=spec.distractors, seed=spec.seed
    )
    workspace = throwaway_workspace(services)
    try:
        stage(f"indexing {len(data.corpus)} SciFact documents")
        figures = ingest_corpus(services, workspace, data)
        stage("scoring retrieval in every mode")
        scores = score_modes(services, workspace, data, list(SearchMode))
        stage("timing hybrid search")
        search = _search_speed(services, workspace, data, spec.search_clients)
    finally:
        services.workspaces.purge(workspace.id)
    retrieval = {
        mode: {**s.report.to_dict(include_per_query=False), "latency_ms": latency_stats(s.latencies_ms).to_dict()}
        for mode, s in scores.items()
    }
    return {"retrieval": retrieval, "search": search, "scifact": {**data.stats(), "ingest": figures.to_dict()}}


def answers_slice(services: Services, spec: SliceSpec, stage: Stage = _noop) -> dict[str, Any]:
    """``{"answers": AnswerReport.to_dict() + run figures, "qa": {...}}``."""
    folder = spec.datasets / MINI_WIKI
    items = load_qa(folder / "questions.csv", limit=spec.qa_questions)
    everything = load_passages(folder / "passages.csv")
    passages = pool_passages(
        everything,
        [item.question for item in items],
        per_question=spec.qa_pool,
        distractors=spec.qa_distractors,
        seed=spec.seed,
    )
    stage(f"indexing {len(passages)} pooled passages")
    with corpus_workspace(services, passages) as (workspace, figures):
        stage(f"asking {len(items)} questions")
        asked = ask_all(services, EVAL_USER, workspace, items, AskOptions(max_tokens=spec.max_tokens))
    _, answers = answer_results(asked, include_per_item=True)
    qa = {
        "name": MINI_WIKI.name,
        "questions": len(items),
        "passages": len(everything),
        "indexed": len(passages),
        "pool": {"per_question": spec.qa_pool, "distractors": spec.qa_distractors, "seed": spec.seed},
        "ingest": figures.to_dict(),
        "model": services.models.chat_models.info().id,
        "max_tokens": spec.max_tokens,
    }
    return {"answers": answers, "qa": qa}


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def run_ci_slice(services: Services, spec: SliceSpec, stage: Stage = _noop) -> dict[str, Any]:
    """Both halves, and how long each took; the shape eval/README.md describes."""
    spec.check()
    started = time.perf_counter()
    first = retrieval_slice(services, spec, stage)
    middle = time.perf_counter()
    second = answers_slice(services, spec, stage)
    ended = time.perf_counter()
    spec_dict = {**asdict(spec), "datasets": str(spec.datasets)}
    return {
        **first,
        **second,
        "slice": spec_dict,
        "seconds": {
            "retrieval": round(middle - started, 1),
            "answers": round(ended - middle, 1),
            "total": round(ended - started, 1),
        },
        "machine": _machine(),
    }


def write_results(results: dict[str, Any], path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
