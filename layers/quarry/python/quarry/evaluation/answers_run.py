"""`quarry eval answers`: put a question/answer set to the chat service and score what comes back.

Each question is asked in a fresh session through ``services.chat.answer`` (the same use case the
WebSocket worker runs), against an existing workspace or a throwaway one holding a passage file.
What is scored:

* the answer as the model wrote it (streamed tokens, citation markers such as ``[Source 2]`` brought to
  ``[2]`` but none dropped), because the chat service removes markers that point at no source before the
  user sees them: citation validity measured after that clean-up would be 1.0 by construction;
* the passages the model was given, source ``[n]`` at index n - 1: the search the chat service ran is
  repeated with its standalone question (search is deterministic) and the service's relevance floor,
  and every returned citation is checked against them (``source_mismatches`` counts disagreements);
* latency: wall time of the whole answer, and time to the first token;
* ``reference_in_answer``: the share of answers holding the reference word for word (after SQuAD
  normalisation), next to EM and token F1 which punish the long answers small models write.

A passage file can be large (rag-mini-wikipedia has 3,200 passages and no link from questions to
passages); ``pool_passages`` keeps, TREC-pooling style, the top passages of each question by BM25 plus
sampled distractors, so a small run indexes a small, deterministic corpus.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from quarry.errors import InvalidInput, NotFound
from quarry.evaluation.answers import (
    AnswerRecord,
    AnswerReport,
    Judge,
    evaluate_answers,
    normalize_answer,
    strip_citations,
)
from quarry.evaluation.bench import latency_stats
from quarry.evaluation.bulk_index import index_documents
from quarry.evaluation.qa_dataset import Passage, QAItem
from quarry.evaluation.retrieval_run import IngestFigures, throwaway_workspace
from quarry.models import Document, DocumentSource, Hit, SearchMode, SearchRequest, Workspace
from quarry.ports import ParsedDocument
from quarry.services.chat import ChatOutcome, ChatRequest
from quarry.text.bm25 import BM25, query_terms
from quarry.wiring import Services

__all__ = [
    "CLI_USER",
    "EVAL_USER",
    "AskOptions",
    "AskedItem",
    "answer_results",
    "ask_all",
    "ask_one",
    "corpus_workspace",
    "find_workspace",
    "ingest_passages",
    "judge_for",
    "model_text",
    "pool_passages",
    "reference_in_answer",
]

CLI_USER = "local"  # owner of the workspaces `quarry ingest` creates
EVAL_USER = "eval"  # owner of throwaway evaluation workspaces

# Marker variants small models write: "[Source 2]", "[source 1, 3]", "[1; 2]".
_VARIANT = re.compile(r"\[(?:sources?\s*)?(\d+(?:\s*[,;]\s*(?:sources?\s*)?\d+)*)\]", re.IGNORECASE)
_TERM = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class AskOptions:
    """How each question is asked. Temperature 0 by default: a run must be repeatable to be gated."""

    max_tokens: int = 128
    temperature: float = 0.0
    top_k: int = 5
    model: str | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise InvalidInput("max_tokens must be at least 1")
        if not 1 <= self.top_k <= 20:
            raise InvalidInput("top_k must be within 1..20")
        if not 0.0 <= self.temperature <= 2.0:
            raise InvalidInput("temperature must be within 0..2")


@dataclass(frozen=True, slots=True)
class AskedItem:
    item: QAItem
    record: AnswerRecord
    delivered: str
    first_token_ms: float | None
    grounded: bool
    source_mismatches: int


# --------------------------------------------------------------------------- where the answers come from


def find_workspace(services: Services, name: str, *, user: str = CLI_USER) -> Workspace:
    workspace = services.workspaces.find_by_name(user, name)
    if workspace is None:
        raise NotFound(f"unknown workspace {name!r} (create it with `quarry ingest PATH --workspace {name}`)")
    return workspace


def _terms(text: str) -> list[str]:
    return _TERM.findall(text.lower())


def pool_passages(
    passages: Sequence[Passage],
    questions: Sequence[str],
    *,
    per_question: int = 5,
    distractors: int = 0,
    seed: int = 13,
) -> list[Passage]:
    """The ``per_question`` best passages of each question by BM25 (k1 1.2, b 0.75; each distinct query
    term once) over all ``passages``, plus ``distractors`` others sampled with ``random.Random(seed)``;
    file order is kept."""
    if per_question < 1:
        raise InvalidInput("per_question must be at least 1")
    if distractors < 0:
        raise InvalidInput("distractors must not be negative")
    if not passages:
        raise InvalidInput("no passages to pool")
    bm25 = BM25((p.text for p in passages), analyzer=_terms, k1=1.2, b=0.75)
    keep: set[int] = set()
    for question in questions:
        scores = bm25.scores(query_terms(_terms(question), repeated=False))
        ranked = sorted((-score, index) for index, score in scores.items() if score > 0)
        keep.update(index for _, index in ranked[:per_question])
    others = [index for index in range(len(passages)) if index not in keep]
    keep.update(random.Random(seed).sample(others, min(distractors, len(others))))
    return [passages[index] for index in sorted(keep)]


def ingest_passages(
    services: Services,
    workspace: Workspace,
    passages: Sequence[Passage],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> IngestFigures:
    """Index passages as text documents ``passage-<id>`` (no title: the prompt shows the id instead)."""
    ids = [f"passage-{p.id}" for p in passages]
    if len(set(ids)) != len(ids):
        raise InvalidInput("passage ids must be unique")
    items = [
        (
            Document(id=doc_id, workspace_id=workspace.id, name=doc_id, source=DocumentSource.TEXT),
            ParsedDocument(text=p.text, title=""),
        )
        for doc_id, p in zip(ids, passages, strict=True)
    ]
    started = time.perf_counter()
    chunks = index_documents(services, workspace, items, on_progress=on_progress)
    return IngestFigures(documents=len(items), chunks=chunks, seconds=time.perf_counter() - started)


@contextmanager
def corpus_workspace(
    services: Services, passages: Sequence[Passage], *, on_progress: Callable[[int], None] | None = None
) -> Iterator[tuple[Workspace, IngestFigures]]:
    """A throwaway workspace (owner ``eval``) holding ``passages``, purged afterwards."""
    workspace = throwaway_workspace(services, user=EVAL_USER)
    try:
        yield workspace, ingest_passages(services, workspace, passages, on_progress=on_progress)
    finally:
        services.workspaces.purge(workspace.id)


def judge_for(services: Services, model: str) -> Judge:
    """A judge on the chat model registered as ``model``; ``default`` (or ``local``) names the configured one."""
    from quarry.evaluation.judges import ChatModelJudge

    name = None if model in ("default", "local") else model
    return ChatModelJudge(services.models.chat_models.get(name))


# --------------------------------------------------------------------------- asking


def model_text(raw: str) -> str:
    """The model's text with marker variants written ``[n]`` / ``[n, m]``; unlike the chat service's
    clean-up, markers pointing at no source are kept (they are what citation validity measures)."""

    def fix(match: re.Match[str]) -> str:
        return "[" + ", ".join(re.findall(r"\d+", match.group(1))) + "]"

    return _VARIANT.sub(fix, raw)


def _sources(services: Services, user: str, workspace: Workspace, outcome: ChatOutcome, top_k: int) -> list[Hit]:
    """The passages the chat service gave the model: its search, repeated, above its relevance floor."""
    if not outcome.answer.grounded:
        return []
    request = SearchRequest(
        workspace_id=workspace.id, query=outcome.answer.standalone_question, top_k=top_k, mode=SearchMode.HYBRID
    )
    floor = services.settings.min_relevance
    hits = services.search.search(user, request).hits
    return [h for h in hits if h.dense_score is not None and h.dense_score >= floor]


def ask_one(services: Services, user: str, workspace: Workspace, item: QAItem, options: AskOptions) -> AskedItem:
    tokens: list[str] = []
    request = ChatRequest(
        user=user,
        text=item.question,
        workspace_id=workspace.id,
        model=options.model,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        top_k=options.top_k,
    )
    started = time.perf_counter()
    outcome = services.chat.answer(request, on_token=tokens.append)
    latency_ms = (time.perf_counter() - started) * 1000.0
    try:
        hits = _sources(services, user, workspace, outcome, options.top_k)
    finally:
        services.sessions.delete(user, outcome.session.id)  # evaluation leaves no chat history behind
    mismatches = sum(1 for c in outcome.answer.citations if c.n > len(hits) or hits[c.n - 1].chunk.id != c.chunk_id)
    record = AnswerRecord(
        question=item.question,
        answer=model_text("".join(tokens)),
        passages=tuple(h.chunk.text for h in hits),
        reference=item.reference or None,
        answerable=item.answerable,
        latency_ms=latency_ms,
        id=item.id,
    )
    return AskedItem(
        item=item,
        record=record,
        delivered=outcome.answer.text,
        first_token_ms=outcome.answer.timings.get("first_token_ms"),
        grounded=outcome.answer.grounded,
        source_mismatches=mismatches,
    )


def ask_all(
    services: Services,
    user: str,
    workspace: Workspace,
    items: Sequence[QAItem],
    options: AskOptions,
    *,
    on_item: Callable[[AskedItem], None] | None = None,
) -> list[AskedItem]:
    asked = []
    for item in items:
        result = ask_one(services, user, workspace, item, options)
        asked.append(result)
        if on_item is not None:
            on_item(result)
    return asked


# --------------------------------------------------------------------------- results


def reference_in_answer(answer: str, reference: str) -> bool:
    """The normalised reference occurs, word for word, in the normalised answer. Recall-minded where token
    F1 is not: a long answer that contains the right date or name still counts."""
    expected = normalize_answer(reference)
    return bool(expected) and f" {expected} " in f" {normalize_answer(strip_citations(answer))} "


def _scored(item: AskedItem) -> bool:
    return bool(item.record.reference) and item.record.answerable is not False


def _per_item(report: AnswerReport, asked: Sequence[AskedItem]) -> list[dict[str, Any]]:
    rows = []
    for result, a in zip(report.per_item, asked, strict=True):
        rows.append(
            {
                **asdict(result),
                "question": a.item.question,
                "reference": a.item.reference,
                "answer": a.record.answer,
                "reference_in_answer": reference_in_answer(a.record.answer, a.item.reference) if _scored(a) else None,
                "sources": len(a.record.passages),
                "latency_ms": a.record.latency_ms,
                "first_token_ms": a.first_token_ms,
            }
        )
    return rows


def answer_results(
    asked: Sequence[AskedItem], *, judge: Judge | None = None, include_per_item: bool = True
) -> tuple[AnswerReport, dict[str, Any]]:
    """Score the answers; the report and its JSON form (``AnswerReport.to_dict`` plus run figures)."""
    if not asked:
        raise InvalidInput("no answers to evaluate")
    report = evaluate_answers([a.record for a in asked], judge=judge)
    first = [a.first_token_ms for a in asked if a.first_token_ms is not None]
    scored = [reference_in_answer(a.record.answer, a.item.reference) for a in asked if _scored(a)]
    out: dict[str, Any] = {
        **report.to_dict(include_per_item=False),
        "reference_in_answer": sum(scored) / len(scored) if scored else None,
        "first_token": latency_stats(first).to_dict() if first else None,
        "grounded_answers": sum(a.grounded for a in asked),
        "source_mismatches": sum(a.source_mismatches for a in asked),
        "citation_validity_scope": "model output before the chat service drops markers that name no source",
    }
    stats = getattr(judge, "stats", None)
    if judge is not None:
        out["judge"] = {"model": getattr(judge, "name", type(judge).__name__), **(stats.to_dict() if stats else {})}
    if include_per_item:
        out["per_item"] = _per_item(report, asked)
    return report, out
