"""BEIR retrieval metrics against values computed by hand (and against pytrec_eval when it is installed)."""

from __future__ import annotations

import json
import math
import random

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.metrics import evaluate, mrr_at_k, ndcg_at_k, precision_at_k, rank, recall_at_k

# q1: graded judgments, a tie at the top, an unjudged document (e) and a judged non-relevant one (c).
QRELS = {
    "q1": {"a": 2, "b": 1, "c": 0, "d": 1},
    "q3": {"z": 0},  # judged, but nothing relevant
}
RUN = {
    "q1": {"a": 0.5, "b": 0.9, "c": 0.9, "e": 0.7, "d": 0.1},
    "q3": {"z": 3.0, "y": 1.0},
    "not-judged": {"a": 1.0},  # ignored: not in the qrels
}
# Ranking of q1: c (0.9), b (0.9) -- tie broken by id descending --, e (0.7), a (0.5), d (0.1)
# Grades:        0        1                                          0 (unjudged), 2,     1
DCG5 = 0 / math.log2(2) + 1 / math.log2(3) + 0 / math.log2(4) + 2 / math.log2(5) + 1 / math.log2(6)
IDCG5 = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
DCG3 = 1 / math.log2(3)
IDCG3 = IDCG5  # the three relevant grades 2, 1, 1 fit in the first three ranks


def test_ranking_breaks_ties_by_document_id_descending_like_trec_eval() -> None:
    assert rank(RUN["q1"]) == ["c", "b", "e", "a", "d"]
    assert rank({"a": 1.0, "b": 1.0, "c": 2.0}) == ["c", "b", "a"]
    # string order, not numeric: "9" > "10"
    assert rank({"10": 1.0, "9": 1.0, "100": 1.0}) == ["9", "100", "10"]
    # the order the run lists documents in does not matter
    assert rank(dict(reversed(list(RUN["q1"].items())))) == rank(RUN["q1"])


def test_graded_ndcg_by_hand() -> None:
    ranking = rank(RUN["q1"])
    assert ndcg_at_k(ranking, QRELS["q1"], 5) == pytest.approx(DCG5 / IDCG5)
    assert ndcg_at_k(ranking, QRELS["q1"], 5) == pytest.approx(0.600185, abs=1e-6)
    assert ndcg_at_k(ranking, QRELS["q1"], 3) == pytest.approx(DCG3 / IDCG3)
    assert ndcg_at_k(ranking, QRELS["q1"], 3) == pytest.approx(0.201516, abs=1e-6)
    # gain is linear in the grade (trec_eval), not 2^grade - 1: a single grade-3 hit at rank 1 is perfect
    assert ndcg_at_k(["x", "y"], {"x": 3, "y": 1}, 2) == pytest.approx(1.0)
    assert ndcg_at_k(["y", "x"], {"x": 3, "y": 1}, 2) == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))


def test_recall_precision_mrr_by_hand() -> None:
    ranking = rank(RUN["q1"])
    judgments = QRELS["q1"]
    assert recall_at_k(ranking, judgments, 3) == pytest.approx(1 / 3)  # b of {a, b, d}
    assert recall_at_k(ranking, judgments, 5) == pytest.approx(1.0)
    assert precision_at_k(ranking, judgments, 3) == pytest.approx(1 / 3)
    assert precision_at_k(ranking, judgments, 10) == pytest.approx(3 / 10)  # divides by k, not by retrieved
    assert mrr_at_k(ranking, judgments, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(ranking, judgments, 1) == 0.0


def test_evaluate_means_over_judged_queries_and_keeps_per_query_values() -> None:
    report = evaluate(RUN, QRELS, ndcg_at=(3, 5), recall_at=(3,), precision_at=(10,), mrr_at=(10,))
    assert report.queries == 2
    assert set(report.per_query) == {"q1", "q3"}
    assert report.per_query["q3"] == {"ndcg@3": 0.0, "ndcg@5": 0.0, "recall@3": 0.0, "precision@10": 0.0, "mrr@10": 0.0}
    assert report.metrics["ndcg@5"] == pytest.approx(DCG5 / IDCG5 / 2)
    assert report.metrics["mrr@10"] == pytest.approx(0.25)
    assert report.metric_values("ndcg@5") == [pytest.approx(DCG5 / IDCG5), 0.0]
    json.dumps(report.to_dict())  # JSON-serialisable as it is


def test_a_query_id_returned_as_a_document_is_ignored_by_default() -> None:
    qrels = {"q2": {"x": 1}}
    run = {"q2": {"q2": 5.0, "y": 2.0, "x": 1.0}}
    ignored = evaluate(run, qrels)
    assert ignored.per_query["q2"]["mrr@10"] == pytest.approx(1 / 2)  # y, x
    assert ignored.per_query["q2"]["ndcg@10"] == pytest.approx(1 / math.log2(3))
    kept = evaluate(run, qrels, ignore_identical_ids=False)
    assert kept.per_query["q2"]["mrr@10"] == pytest.approx(1 / 3)  # q2, y, x
    assert kept.per_query["q2"]["ndcg@10"] == pytest.approx(1 / math.log2(4))


def test_a_query_missing_from_the_run_scores_zero_and_is_reported() -> None:
    report = evaluate({"q1": RUN["q1"]}, {"q1": QRELS["q1"], "q4": {"w": 1}})
    assert report.missing_queries == ["q4"]
    assert report.per_query["q4"]["ndcg@10"] == 0.0
    assert report.queries == 2


def test_empty_cases() -> None:
    assert ndcg_at_k([], {"a": 1}, 10) == 0.0
    assert recall_at_k([], {"a": 1}, 10) == 0.0
    assert mrr_at_k(["a"], {}, 10) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0
    assert ndcg_at_k(["a"], {"a": -1}, 10) == 0.0  # negative grades give no gain


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: evaluate({}, {}), "qrels are empty"),
        (lambda: evaluate({"q": {"a": float("nan")}}, {"q": {"a": 1}}), "must be a number"),
        (lambda: evaluate({}, {"q": {"a": 1}}, ndcg_at=(0,)), "at least 1"),
        (lambda: evaluate({}, {"q": {"a": 1}}, ndcg_at=(), recall_at=(), mrr_at=()), "at least one metric"),
    ],
)
def test_bad_input_gives_a_typed_error(call: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()  # type: ignore[operator]


def test_agrees_with_pytrec_eval_on_random_runs_with_ties() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(25)]
    for _ in range(50):
        qrels = {
            f"q{q}": {d: rng.choice([-1, 0, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 8))} for q in range(4)
        }
        run = {
            f"q{q}": {d: rng.choice([0.1, 0.2, 0.5, 1.0]) for d in rng.sample(docs, rng.randint(1, 20))}
            for q in range(4)
        }
        reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.5", "P.5", "recip_rank"}).evaluate(
            run
        )
        mine = evaluate(run, qrels, ndcg_at=(10,), recall_at=(5,), precision_at=(5,), mrr_at=(1000,))
        for qid, values in reference.items():
            ours = mine.per_query[qid]
            assert ours["ndcg@10"] == pytest.approx(values["ndcg_cut_10"])
            assert ours["recall@5"] == pytest.approx(values["recall_5"])
            assert ours["precision@5"] == pytest.approx(values["P_5"])
            assert ours["mrr@1000"] == pytest.approx(values["recip_rank"])
