"""The CI gate: passes on good numbers, fails on an injected regression naming the metric and the drop."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.gates import check, load_gates, lookup, main, parse_gates

REPO = Path(__file__).resolve().parents[3]
GATES = REPO / "eval" / "gates.json"

GOOD: dict[str, Any] = {
    "retrieval": {
        "hybrid": {"ndcg@10": 0.80, "recall@100": 0.97, "mrr@10": 0.75, "queries": 50},
        "keyword": {"ndcg@10": 0.74},
        "dense": {"ndcg@10": 0.70},
    },
    "answers": {"citation_validity": 0.98, "token_f1": 0.31},
    "search": {"clients_1": {"p99_ms": 41.0}, "clients_8": {"p99_ms": 120.0}},
}


def _run(tmp_path: Path, results: dict[str, Any], *extra: str) -> tuple[int, str]:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    out = io.StringIO()
    code = main([str(path), "--gates", str(GATES), *extra], out=out)
    return code, out.getvalue()


def test_the_repository_gates_file_is_valid() -> None:
    gates = load_gates(GATES)
    assert {gate.metric for gate in gates} >= {"retrieval/hybrid/ndcg@10", "answers/citation_validity"}
    paths = [path for gate in gates for path in (gate.ratio or (gate.metric,))]
    assert all(lookup(GOOD, path) is not None for path in paths)


def test_good_results_pass(tmp_path: Path) -> None:
    code, output = _run(tmp_path, GOOD)
    assert code == 0
    assert "FAIL" not in output and output.strip().endswith("gates held")


def test_an_injected_regression_fails_and_says_which_metric_fell_by_how_much(tmp_path: Path) -> None:
    bad = copy.deepcopy(GOOD)
    threshold = next(g.min for g in load_gates(GATES) if g.metric == "retrieval/hybrid/ndcg@10")
    assert threshold is not None
    bad["retrieval"]["hybrid"]["ndcg@10"] = threshold - 0.05
    code, output = _run(tmp_path, bad)
    assert code == 1
    failing = [line for line in output.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1
    assert "retrieval/hybrid/ndcg@10" in failing[0] and "fell below the minimum" in failing[0]
    assert "by 0.0500" in failing[0]
    assert "REGRESSION: 1 of" in output


def test_search_that_collapses_under_concurrency_fails_and_no_absolute_latency_is_gated(tmp_path: Path) -> None:
    assert all(gate.ratio or not gate.metric.endswith("_ms") for gate in load_gates(GATES))  # busy machines pass
    slow = copy.deepcopy(GOOD)
    slow["search"]["clients_8"]["p99_ms"] = 41.0 * 25
    code, output = _run(tmp_path, slow, "--json")
    assert code == 1
    report = json.loads(output)
    (failed,) = [o for o in report["outcomes"] if not o["passed"]]
    assert failed["metric"] == "search/p99_ms_8_over_1_client" and failed["shortfall"] == pytest.approx(5.0)


def test_a_ratio_gate_judges_one_figure_against_another_of_the_same_run() -> None:
    gates = parse_gates(
        {"gates": {"scaling": {"ratio": ["search/clients_8/p99_ms", "search/clients_1/p99_ms"], "max": 4}}}
    )
    assert gates[0].ratio == ("search/clients_8/p99_ms", "search/clients_1/p99_ms")
    (ok,) = check(GOOD, gates)  # 120 / 41
    assert ok.passed and ok.actual == pytest.approx(120 / 41)
    assert ok.message.startswith("ok   scaling (search/clients_8/p99_ms / search/clients_1/p99_ms) = 2.9268")
    slow = copy.deepcopy(GOOD)
    slow["search"] = {"clients_1": {"p99_ms": 410.0}, "clients_8": {"p99_ms": 1200.0}}  # 10x slower, same shape
    assert check(slow, gates)[0].passed
    slow["search"]["clients_8"]["p99_ms"] = 2000.0
    (failed,) = check(slow, gates)
    assert not failed.passed and "rose above the maximum 4.0000" in failed.message


@pytest.mark.parametrize(
    "search", [{"clients_8": {"p99_ms": 120.0}}, {"clients_1": {"p99_ms": 0.0}, "clients_8": {"p99_ms": 120.0}}]
)
def test_a_ratio_without_both_figures_or_with_a_zero_denominator_fails(search: dict[str, Any]) -> None:
    gates = parse_gates(
        {"gates": {"scaling": {"ratio": ["search/clients_8/p99_ms", "search/clients_1/p99_ms"], "max": 4}}}
    )
    (outcome,) = check({"search": search}, gates)
    assert not outcome.passed and "missing" in outcome.message


@pytest.mark.parametrize("ratio", ["a/b", ["a/b"], ["a/b", ""], ["a/b", 3], ["a", "b", "c"]])
def test_a_ratio_must_name_two_metrics(ratio: Any) -> None:
    with pytest.raises(InvalidInput, match="ratio"):
        parse_gates({"gates": {"scaling": {"ratio": ratio, "max": 4}}})


def test_a_missing_metric_fails_rather_than_being_skipped() -> None:
    outcomes = check({"retrieval": {}}, parse_gates({"gates": {"retrieval/hybrid/ndcg@10": {"min": 0.5}}}))
    assert not outcomes[0].passed and "missing" in outcomes[0].message
    assert lookup({"a": {"b": "text"}}, "a/b") is None


def test_unusable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent.json"), "--gates", str(GATES)]) == 2
    broken = tmp_path / "gates.json"
    broken.write_text("{not json", encoding="utf-8")
    assert main([str(tmp_path / "absent.json"), "--gates", str(broken)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    unusable: list[dict[str, Any]] = [{}, {"gates": {"x": {}}}, {"gates": {"x": {"min": "high"}}}, {"gates": {"x": 3}}]
    for bad in unusable:
        with pytest.raises(InvalidInput):
            parse_gates(bad)


def test_module_entry_point_exit_code(tmp_path: Path) -> None:
    bad = copy.deepcopy(GOOD)
    bad["answers"]["citation_validity"] = 0.5
    path = tmp_path / "results.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "quarry.evaluation.gates", str(path), "--gates", str(GATES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "answers/citation_validity" in done.stdout and "by 0.4500" in done.stdout
