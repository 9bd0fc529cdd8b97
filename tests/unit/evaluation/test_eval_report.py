"""The HTML report on a tiny dataset: one self-contained file with real embedded PNG plots."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.answers import AnswerRecord, evaluate_answers
from quarry.evaluation.bench import ScalingPoint, run_concurrent
from quarry.evaluation.metrics import evaluate
from quarry.evaluation.report import (
    BarChart,
    Histogram,
    LineChart,
    Note,
    Table,
    answer_sections,
    bench_sections,
    retrieval_sections,
    scaling_section,
    write_report,
)

pytest.importorskip("matplotlib")

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 1}, "q3": {"d4": 1}}
RUNS = {
    "dense": {"q1": {"d1": 0.9, "d2": 0.1}, "q2": {"d3": 0.8, "d2": 0.7}, "q3": {"d9": 0.5}},
    "keyword": {"q1": {"d2": 3.0, "d1": 2.0}, "q2": {"d2": 5.0}, "q3": {"d4": 1.0}},
}
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _sections() -> list:
    reports = {mode: evaluate(run, QRELS) for mode, run in RUNS.items()}
    bench = [
        run_concurrent(lambda q: sum(range(2000)), list(range(40)), clients=1, label="search"),
        run_concurrent(lambda q: sum(range(2000)), list(range(40)), clients=4, label="search"),
    ]
    points = [
        ScalingPoint(corpus_size=100, qps=900.0, clients=1),
        ScalingPoint(corpus_size=1000, qps=700.0, clients=1),
        ScalingPoint(corpus_size=100, qps=1500.0, clients=8),
        ScalingPoint(corpus_size=1000, qps=1100.0, clients=8),
    ]
    answers = evaluate_answers(
        [
            AnswerRecord(question="Q1", answer="yes [1]", passages=("p",), reference="yes", latency_ms=12.0),
            AnswerRecord(question="Q2", answer="I don't know.", passages=("p",), reference="no", latency_ms=15.0),
        ]
    )
    return [
        Note(title="About <this> run", text="Scores & <b>numbers</b>"),
        *retrieval_sections(reports),
        *bench_sections(bench),
        scaling_section(points),
        *answer_sections(answers),
    ]


def test_report_embeds_every_plot_as_png_and_writes_the_json(tmp_path: Path) -> None:
    sections = _sections()
    files = write_report(tmp_path / "out", "Quarry <eval> & bench", sections, data={"mode": "all"})
    page = files.html.read_text(encoding="utf-8")
    images = IMG.findall(page)
    # bar chart, 2 per-mode histograms, 2 latency charts, throughput line, token-F1 histogram
    assert files.plots == len(images) == 7
    for encoded in images:
        assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<title>Quarry &lt;eval&gt; &amp; bench</title>" in page
    assert "About &lt;this&gt; run" in page and "<b>numbers</b>" not in page
    assert "Retrieval quality by mode" in page and "Throughput against corpus size" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # nothing fetched from elsewhere
    raw = json.loads(files.json.read_text(encoding="utf-8"))
    assert files.json == tmp_path / "out" / "report.json"
    assert raw["data"] == {"mode": "all"}
    kinds = [section["kind"] for section in raw["sections"]]
    assert kinds.count("LatencyChart") == 2 and "LineChart" in kinds and "BarChart" in kinds
    line = next(s for s in raw["sections"] if s["kind"] == "LineChart")
    assert line["x"] == [100, 1000] and line["series"]["8 client(s)"] == [1500.0, 1100.0]


def test_empty_plots_say_so_and_bad_shapes_are_rejected(tmp_path: Path) -> None:
    files = write_report(tmp_path, "Empty", [Histogram(title="Nothing", values=[]), Table("T", ["a"], [[1.5]])])
    page = files.html.read_text(encoding="utf-8")
    assert files.plots == 0 and "No data." in page and "<td>1.5000</td>" in page
    with pytest.raises(InvalidInput, match="one value per category"):
        write_report(tmp_path, "Bad", [BarChart(title="B", categories=["x", "y"], series={"m": [1.0]})])
    with pytest.raises(InvalidInput, match="one value per x"):
        write_report(tmp_path, "Bad", [LineChart(title="L", x=[1, 2], series={"m": [1.0]})])
    with pytest.raises(InvalidInput):
        write_report(tmp_path, "None", [])
    with pytest.raises(InvalidInput):
        write_report(tmp_path, "Name", [Note("n", "t")], name="../escape")


def test_matplotlib_is_imported_only_when_a_report_is_drawn() -> None:
    code = "import sys, quarry.evaluation.report, quarry.evaluation; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
