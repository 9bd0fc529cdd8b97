"""The CI gate as CI runs it: scripts/eval_gate.sh against eval/gates-ci.json, on the ci-slice results shape."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quarry.errors import InvalidInput, NotFound
from quarry.evaluation.answers import AnswerRecord
from quarry.evaluation.answers_run import AskedItem, answer_results
from quarry.evaluation.bench import by_clients, latency_stats, run_concurrent
from quarry.evaluation.ci_slice import SliceSpec
from quarry.evaluation.gates import load_gates, lookup
from quarry.evaluation.metrics import evaluate
from quarry.evaluation.qa_dataset import QAItem

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "eval_gate.sh"
CI_GATES = REPO / "eval" / "gates-ci.json"


def _slice_shaped_results() -> dict[str, Any]:
    """Results built by the same functions the ci-slice uses, on tiny inputs (no models)."""
    report = evaluate(
        {"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d1": 1}}, ndcg_at=(10,), recall_at=(10, 100), mrr_at=(10,)
    )
    retrieval = {
        mode: {**report.to_dict(include_per_query=False), "latency_ms": latency_stats([1.0, 2.0]).to_dict()}
        for mode in ("dense", "keyword", "hybrid")
    }
    item = QAItem(id="1", question="Who?", reference="Ilse Marrow")
    asked = [
        AskedItem(
            item=item,
            record=AnswerRecord("Who?", "Ilse Marrow [1].", ("Ilse Marrow opened it.",), "Ilse Marrow", None, 5.0, "1"),
            delivered="Ilse Marrow [1].",
            first_token_ms=2.0,
            grounded=True,
            source_mismatches=0,
        )
    ]
    _, answers = answer_results(asked)
    search = by_clients([run_concurrent(lambda _x: None, [1, 2, 3], clients=n, warmup=0) for n in (1, 8)])
    return {"retrieval": retrieval, "answers": answers, "search": search}


def _set(results: dict[str, Any], metric: str, value: float) -> None:
    node = results
    *parents, leaf = metric.split("/")
    for key in parents:
        node = node[key]
    node[leaf] = value


def _passing(gates_path: Path = CI_GATES) -> dict[str, Any]:
    results = _slice_shaped_results()
    for gate in load_gates(gates_path):
        _set(results, gate.metric, gate.min + 0.01 if gate.min is not None else max((gate.max or 0) - 1.0, 0.0))
    return results


def _gate(tmp_path: Path, results: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    return subprocess.run(
        ["bash", str(SCRIPT), "--check", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHON": sys.executable},
    )


def test_every_ci_gate_names_a_metric_the_ci_slice_produces() -> None:
    results = _slice_shaped_results()
    gates = load_gates(CI_GATES)
    assert {g.metric.split("/")[0] for g in gates} == {"retrieval", "answers", "search"}
    for gate in gates:
        assert lookup(results, gate.metric) is not None, gate.metric


def test_the_slice_passes_when_every_metric_holds(tmp_path: Path) -> None:
    done = _gate(tmp_path, _passing())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gates held" in done.stdout


def test_an_injected_quality_regression_fails_ci_naming_the_metric_and_the_drop(tmp_path: Path) -> None:
    results = _passing()
    gate = next(g for g in load_gates(CI_GATES) if g.metric == "retrieval/hybrid/ndcg@10")
    assert gate.min is not None
    broken = copy.deepcopy(results)
    broken["retrieval"]["hybrid"]["ndcg@10"] = gate.min - 0.1

    done = _gate(tmp_path, broken)

    assert done.returncode == 1
    line = next(x for x in done.stdout.splitlines() if "retrieval/hybrid/ndcg@10" in x)
    assert line.startswith("FAIL") and "fell below the minimum" in line and "by 0.1000" in line
    assert "REGRESSION: 1 of" in done.stdout


def test_a_slower_search_fails_ci(tmp_path: Path) -> None:
    broken = _passing()
    gate = next(g for g in load_gates(CI_GATES) if g.metric == "search/clients_8/p99_ms")
    assert gate.max is not None
    broken["search"]["clients_8"]["p99_ms"] = gate.max * 2

    done = _gate(tmp_path, broken)

    assert done.returncode == 1
    assert "search/clients_8/p99_ms" in done.stdout and "rose above the maximum" in done.stdout


def test_a_run_that_lost_its_answers_fails_rather_than_passing_silently(tmp_path: Path) -> None:
    broken = _passing()
    broken["answers"]["citation_validity"] = None  # e.g. every answer refused, none cited

    done = _gate(tmp_path, broken)

    assert done.returncode == 1
    assert "answers/citation_validity is missing" in done.stdout


def test_unusable_input_exits_2(tmp_path: Path) -> None:
    missing = subprocess.run(
        ["bash", str(SCRIPT), "--check", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert missing.returncode == 2
    assert "not found" in missing.stderr
    usage = subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_the_slice_reads_the_shared_datasets_where_they_are(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="dataset folder not found"):
        SliceSpec(datasets=tmp_path).check()
    with pytest.raises(InvalidInput):
        SliceSpec(qa_questions=0)
    with pytest.raises(InvalidInput):
        SliceSpec(search_clients=())
