"""The CI gate as CI runs it: scripts/eval_gate.sh against eval/gates-ci.json, on the ci-slice results shape."""

from __future__ import annotations

import copy
import json
import re
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
from quarry.evaluation.gates import Gate, load_gates, lookup, value_of
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


# Figures of a measured slice run (eval/README.md): search p99 66 ms at 1 client, 425 ms at 8.
P99_1, P99_8 = 66.0, 425.0
# What an absolute speed figure is called in the results: *_ms, qps, *_s, seconds, *_per_s, throughput.
SPEED = re.compile(r"(_ms|qps|_s|seconds|per_s|throughput)$")


def _passing(gates_path: Path = CI_GATES) -> dict[str, Any]:
    results = _slice_shaped_results()
    results["search"]["clients_1"]["p99_ms"] = P99_1
    results["search"]["clients_8"]["p99_ms"] = P99_8
    for gate in load_gates(gates_path):
        if gate.ratio is None:
            _set(results, gate.metric, gate.min + 0.01 if gate.min is not None else max((gate.max or 0) - 1.0, 0.0))
    return results


def _slowed(results: dict[str, Any], factor: float) -> dict[str, Any]:
    """The same run on a machine ``factor`` times slower: every time longer, every rate lower; quality equal."""
    slow = copy.deepcopy(results)
    for figures in slow["search"].values():
        for key, value in list(figures.items()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                if key.endswith("_ms") or key == "wall_s":
                    figures[key] = value * factor
                elif key == "qps":
                    figures[key] = value / factor
    for mode in slow["retrieval"].values():
        mode["latency_ms"] = {k: v * factor if k.endswith("_ms") else v for k, v in mode["latency_ms"].items()}
    return slow


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
        for path in gate.ratio or (gate.metric,):
            assert lookup(results, path) is not None, path


def _speed(gate: Gate) -> bool:
    return any(SPEED.search(path.split("/")[-1]) for path in (gate.ratio or (gate.metric,)))


def test_no_ci_gate_holds_an_absolute_time_latency_or_throughput() -> None:
    """`make test` runs these gates on whatever machine runs the tests: a speed figure may only be judged
    against another figure of the same run."""
    gates = load_gates(CI_GATES)
    absolute = [g.metric for g in gates if _speed(g) and g.ratio is None]
    assert absolute == [], f"absolute speed gates in {CI_GATES.name}: {absolute}"
    assert any(_speed(g) and g.ratio for g in gates), "the concurrency of search is still gated, as a ratio"
    assert [g.metric for g in gates if not _speed(g)] == [
        "retrieval/hybrid/ndcg@10",
        "retrieval/keyword/ndcg@10",
        "retrieval/dense/ndcg@10",
        "retrieval/hybrid/recall@10",
        "retrieval/hybrid/recall@100",
        "answers/citation_validity",
        "answers/token_f1",
        "answers/refusal_rate",
    ]  # every quality gate kept


def test_a_slow_but_proportional_run_passes(tmp_path: Path) -> None:
    """The run that failed CI on a busy machine (8-client p99 690 ms against 640), and one ten times slower
    than the calibration run: quality unchanged, every time stretched alike. Both pass."""
    busy = _passing()
    busy["search"]["clients_1"]["p99_ms"], busy["search"]["clients_8"]["p99_ms"] = 95.0, 690.0
    for results in (busy, _slowed(_passing(), 10.0)):
        done = _gate(tmp_path, results)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "FAIL" not in done.stdout and "gates held" in done.stdout


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


def test_a_quality_regression_on_a_slow_machine_still_fails(tmp_path: Path) -> None:
    broken = _slowed(_passing(), 3.0)
    broken["answers"]["citation_validity"] = 0.80

    done = _gate(tmp_path, broken)

    assert done.returncode == 1
    failing = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1 and "answers/citation_validity" in failing[0]


def test_search_that_collapses_under_concurrency_fails_ci(tmp_path: Path) -> None:
    """8 clients 30x slower than one at p99 (one client unchanged): something serialises or starves."""
    gate = next(g for g in load_gates(CI_GATES) if g.ratio == ("search/clients_8/p99_ms", "search/clients_1/p99_ms"))
    assert gate.max is not None and gate.max >= 2.4 * 8.2  # generous: well above any measured ratio
    broken = _passing()
    assert value_of(broken, gate) == pytest.approx(P99_8 / P99_1)
    broken["search"]["clients_8"]["p99_ms"] = P99_1 * 30

    done = _gate(tmp_path, broken)

    assert done.returncode == 1
    line = next(x for x in done.stdout.splitlines() if x.startswith("FAIL"))
    assert gate.metric in line and "search/clients_8/p99_ms / search/clients_1/p99_ms" in line
    assert "= 30.0000 rose above the maximum" in line


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
