"""Retrieval metrics with BEIR's conventions (BEIR scores runs with pytrec_eval, i.e. trec_eval 9.x).

Conventions, each checked against trec_eval's source:

* **Ranking**: a run gives each document a score; documents are ranked by score descending, ties broken
  by document id *descending* (trec_eval's ``comp_sim_docno``: ``strcmp(p2->docno, p1->docno)``). The
  order in which the run lists documents does not matter.
* **nDCG@k** (``ndcg_cut``): linear gain, the grade itself, discounted by ``log2(rank + 1)``; the ideal
  DCG sorts every judged grade > 0 of the query. Grades <= 0 give no gain.
* **Recall@k** (``recall``): relevant (grade >= 1) documents in the top k over *all* relevant documents.
* **Precision@k** (``P``): relevant documents in the top k over k (even when fewer were retrieved).
* **MRR@k** (BEIR's ``custom_metrics.mrr``): 1 / rank of the first relevant document within the top k.
* **Identical ids**: BEIR drops a document whose id equals the query id from that query's results before
  scoring (``ignore_identical_ids=True``, on by default here too).
* **Which queries count**: the queries of the qrels. A query the run does not mention is scored as an empty
  ranking (0 on every metric) rather than dropped, so a retriever that fails on a query is not rewarded. A
  query judged with no relevant document (every grade <= 0) scores 0 and stays in the mean, as with
  pytrec_eval. Run entries for queries absent from the qrels are ignored.
* **Aggregate**: the arithmetic mean over those queries; per-query values are kept.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from quarry.errors import InvalidInput

__all__ = [
    "RELEVANCE_LEVEL",
    "RetrievalReport",
    "evaluate",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "rank",
    "recall_at_k",
]

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

RELEVANCE_LEVEL = 1
"""Minimum grade that makes a judged document relevant for recall, precision and MRR (trec_eval's ``-l``)."""


def rank(doc_scores: Mapping[str, float], *, exclude: str | None = None) -> list[str]:
    """Document ids in trec_eval order: score descending, then id descending."""
    for doc_id, score in doc_scores.items():
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or math.isnan(score):
            raise InvalidInput(f"score of document {doc_id!r} must be a number, got {score!r}")
    items = [(float(score), doc_id) for doc_id, score in doc_scores.items() if doc_id != exclude]
    items.sort(reverse=True)
    return [doc_id for _, doc_id in items]


def _check_k(k: int) -> None:
    if k < 1:
        raise InvalidInput(f"cutoff k must be at least 1, got {k}")


def _dcg(gains: Iterable[float]) -> float:
    return sum(gain / math.log2(position + 2) for position, gain in enumerate(gains) if gain > 0)


def ndcg_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    _check_k(k)
    ideal = _dcg(sorted((grade for grade in judgments.values() if grade > 0), reverse=True)[:k])
    if ideal == 0.0:
        return 0.0
    return _dcg(judgments.get(doc_id, 0) for doc_id in ranking[:k]) / ideal


def _relevant(judgments: Mapping[str, int]) -> set[str]:
    return {doc_id for doc_id, grade in judgments.items() if grade >= RELEVANCE_LEVEL}


def recall_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    _check_k(k)
    relevant = _relevant(judgments)
    if not relevant:
        return 0.0
    return sum(1 for doc_id in ranking[:k] if doc_id in relevant) / len(relevant)


def precision_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    _check_k(k)
    relevant = _relevant(judgments)
    return sum(1 for doc_id in ranking[:k] if doc_id in relevant) / k


def mrr_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    _check_k(k)
    relevant = _relevant(judgments)
    for position, doc_id in enumerate(ranking[:k], start=1):
        if doc_id in relevant:
            return 1.0 / position
    return 0.0


_METRICS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
}


@dataclass(frozen=True, slots=True)
class RetrievalReport:
    """Mean metrics over the judged queries, plus every query's own values."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    queries: int
    missing_queries: list[str] = field(default_factory=list)

    def metric_values(self, name: str) -> list[float]:
        """One metric's per-query values, in query order (for histograms)."""
        return [values[name] for values in self.per_query.values()]

    def to_dict(self, *, include_per_query: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {**self.metrics, "queries": self.queries, "missing_queries": len(self.missing_queries)}
        if include_per_query:
            out["per_query"] = self.per_query
        return out


def _cutoffs(
    ndcg_at: Sequence[int], recall_at: Sequence[int], precision_at: Sequence[int], mrr_at: Sequence[int]
) -> list[tuple[str, str, int]]:
    plan = [("ndcg", ndcg_at), ("recall", recall_at), ("precision", precision_at), ("mrr", mrr_at)]
    names: list[tuple[str, str, int]] = []
    for metric, ks in plan:
        for k in ks:
            _check_k(k)
            names.append((f"{metric}@{k}", metric, k))
    if not names:
        raise InvalidInput("ask for at least one metric")
    return names


def evaluate(
    run: Run,
    qrels: Qrels,
    *,
    ndcg_at: Sequence[int] = (10,),
    recall_at: Sequence[int] = (10, 100),
    precision_at: Sequence[int] = (),
    mrr_at: Sequence[int] = (10,),
    ignore_identical_ids: bool = True,
) -> RetrievalReport:
    """Score ``run`` ({query_id: {doc_id: score}}) against ``qrels`` ({query_id: {doc_id: grade}})."""
    if not qrels:
        raise InvalidInput("qrels are empty: nothing to evaluate")
    plan = _cutoffs(ndcg_at, recall_at, precision_at, mrr_at)
    per_query: dict[str, dict[str, float]] = {}
    missing: list[str] = []
    for query_id, judgments in qrels.items():
        scores = run.get(query_id)
        if scores is None:
            missing.append(query_id)
            scores = {}
        ranking = rank(scores, exclude=query_id if ignore_identical_ids else None)
        per_query[query_id] = {name: _METRICS[metric](ranking, judgments, k) for name, metric, k in plan}
    count = len(per_query)
    means = {name: sum(values[name] for values in per_query.values()) / count for name, _, _ in plan}
    return RetrievalReport(metrics=means, per_query=per_query, queries=count, missing_queries=missing)
