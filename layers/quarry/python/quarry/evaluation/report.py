"""Self-contained HTML reports: one file with every plot embedded as a base64 PNG, the raw JSON beside it.

Sections are typed values (``Histogram``, ``BarChart``, ``LatencyChart``, ``LineChart``, ``Table``, ``Note``);
the ``*_sections`` helpers build the usual ones from retrieval, answer and benchmark results. matplotlib is
imported only when a report is written, and only its object API with the Agg canvas is used (no pyplot, no
global state), so reports can be drawn from any thread and never need a display.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quarry.errors import InvalidInput, QuarryError
from quarry.evaluation.bench import BenchResult, ScalingPoint, percentile

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from quarry.evaluation.answers import AnswerReport
    from quarry.evaluation.metrics import RetrievalReport

__all__ = [
    "BarChart",
    "Histogram",
    "LatencyChart",
    "LineChart",
    "Note",
    "ReportFiles",
    "ReportUnavailable",
    "Section",
    "Table",
    "answer_sections",
    "bench_sections",
    "retrieval_sections",
    "scaling_section",
    "write_report",
]


class ReportUnavailable(QuarryError):
    status = 503
    code = "report_unavailable"


@dataclass(frozen=True, slots=True)
class Histogram:
    title: str
    values: Sequence[float]
    xlabel: str = ""
    bins: int = 20
    value_range: tuple[float, float] | None = None
    caption: str = ""


@dataclass(frozen=True, slots=True)
class BarChart:
    """Grouped bars: one group per category, one bar per series (e.g. metrics x modes)."""

    title: str
    categories: Sequence[str]
    series: Mapping[str, Sequence[float]]
    ylabel: str = ""
    caption: str = ""


@dataclass(frozen=True, slots=True)
class LatencyChart:
    """Latency histogram with p50/p95/p99 markers."""

    title: str
    latencies_ms: Sequence[float]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class LineChart:
    title: str
    x: Sequence[float]
    series: Mapping[str, Sequence[float]]
    xlabel: str = ""
    ylabel: str = ""
    caption: str = ""
    log_x: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Note:
    title: str
    text: str


Section = Histogram | BarChart | LatencyChart | LineChart | Table | Note


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    json: Path
    plots: int = 0
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- drawing


def _new_figure() -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ReportUnavailable("HTML reports need matplotlib: install quarry[local]") from exc
    return Figure(figsize=(7.5, 3.8), dpi=100, layout="constrained")


def _png(figure: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _finish(axes: Axes, title: str, xlabel: str = "", ylabel: str = "") -> None:
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)


def _draw_histogram(section: Histogram) -> Figure:
    figure = _new_figure()
    axes = figure.subplots()
    axes.hist(list(section.values), bins=section.bins, range=section.value_range, color="#3b6ea8", edgecolor="white")
    _finish(axes, section.title, section.xlabel, "count")
    return figure


def _draw_bars(section: BarChart) -> Figure:
    figure = _new_figure()
    axes = figure.subplots()
    names = list(section.series)
    width = 0.8 / max(len(names), 1)
    for index, name in enumerate(names):
        positions = [c + (index - (len(names) - 1) / 2) * width for c in range(len(section.categories))]
        bars = axes.bar(positions, list(section.series[name]), width=width, label=name)
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
    axes.set_xticks(range(len(section.categories)), list(section.categories))
    axes.legend(fontsize=8)
    _finish(axes, section.title, "", section.ylabel)
    return figure


def _draw_latency(section: LatencyChart) -> Figure:
    figure = _new_figure()
    axes = figure.subplots()
    values = list(section.latencies_ms)
    axes.hist(values, bins=min(50, max(5, len(values) // 5)), color="#5a8f5a", edgecolor="white")
    for p, colour in ((50, "#1f77b4"), (95, "#ff7f0e"), (99, "#d62728")):
        value = percentile(values, p)
        axes.axvline(value, color=colour, linestyle="--", label=f"p{p} = {value:.3g} ms")
    axes.legend(fontsize=8)
    _finish(axes, section.title, "latency (ms)", "requests")
    return figure


def _draw_lines(section: LineChart) -> Figure:
    figure = _new_figure()
    axes = figure.subplots()
    for name, values in section.series.items():
        axes.plot(list(section.x), list(values), marker="o", label=name)
    if section.log_x:
        axes.set_xscale("log")
    axes.legend(fontsize=8)
    _finish(axes, section.title, section.xlabel, section.ylabel)
    return figure


def _is_empty(section: Section) -> bool:
    if isinstance(section, Histogram):
        return not section.values
    if isinstance(section, LatencyChart):
        return not section.latencies_ms
    if isinstance(section, BarChart | LineChart):
        return not section.series
    return False


def _check_shape(section: Section) -> None:
    if isinstance(section, BarChart):
        lengths = {len(values) for values in section.series.values()}
        if lengths and lengths != {len(section.categories)}:
            raise InvalidInput(f"bar chart {section.title!r}: every series needs one value per category")
    if isinstance(section, LineChart):
        lengths = {len(values) for values in section.series.values()}
        if lengths and lengths != {len(section.x)}:
            raise InvalidInput(f"line chart {section.title!r}: every series needs one value per x")


_DRAWERS: dict[type, Callable[[Any], Figure]] = {
    Histogram: _draw_histogram,
    BarChart: _draw_bars,
    LatencyChart: _draw_latency,
    LineChart: _draw_lines,
}


# --------------------------------------------------------------------------- HTML


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return html.escape("" if value is None else str(value))


def _table_html(section: Table) -> str:
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in section.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(value)}</td>" for value in row) + "</tr>" for row in section.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section_html(section: Section) -> tuple[str, int]:
    """The section's HTML and how many plots it embeds."""
    title = f"<h2>{html.escape(section.title)}</h2>"
    caption = getattr(section, "caption", "")
    tail = f"<p class='caption'>{html.escape(caption)}</p>" if caption else ""
    if isinstance(section, Note):
        return f"<section>{title}<p>{html.escape(section.text)}</p></section>", 0
    if isinstance(section, Table):
        return f"<section>{title}{_table_html(section)}{tail}</section>", 0
    if _is_empty(section):
        return f"<section>{title}<p class='empty'>No data.</p>{tail}</section>", 0
    _check_shape(section)
    encoded = _png(_DRAWERS[type(section)](section))
    alt = html.escape(section.title, quote=True)
    image = f'<img src="data:image/png;base64,{encoded}" alt="{alt}">'
    return f"<section>{title}{image}{tail}</section>", 1


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:60rem;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
img{max-width:100%}table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.caption,.meta{color:#666;
font-size:.85rem}.empty{color:#999}
"""


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return _jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path | datetime):
        return str(value)
    return value


def _section_json(section: Section) -> dict[str, Any]:
    return {"kind": type(section).__name__, **_jsonable(section)}


def write_report(
    out_dir: str | Path,
    title: str,
    sections: Sequence[Section],
    *,
    data: Any = None,
    name: str = "report",
) -> ReportFiles:
    """Write ``<name>.html`` (self-contained) and ``<name>.json`` (``data`` plus every section's numbers)."""
    if not sections:
        raise InvalidInput("a report needs at least one section")
    if not name or any(ch in name for ch in "/\\") or name.startswith("."):
        raise InvalidInput(f"invalid report name {name!r}")
    directory = Path(out_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create report directory {directory}: {exc.strerror or exc}") from exc
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts: list[str] = []
    plots = 0
    for section in sections:
        fragment, count = _section_html(section)
        parts.append(fragment)
        plots += count
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='meta'>Generated {generated} by quarry. "
        f"Raw numbers: {html.escape(name)}.json</p>{''.join(parts)}</body></html>"
    )
    html_path = directory / f"{name}.html"
    json_path = directory / f"{name}.json"
    payload = {
        "title": title,
        "generated_at": generated,
        "data": _jsonable(data),
        "sections": [_section_json(s) for s in sections],
    }
    html_path.write_text(page, encoding="utf-8")
    json_path.write_text(json.dumps(payload, indent=2, allow_nan=False), encoding="utf-8")
    return ReportFiles(html=html_path, json=json_path, plots=plots)


# --------------------------------------------------------------------------- ready-made sections


def retrieval_sections(reports: Mapping[str, RetrievalReport], *, metric: str = "ndcg@10") -> list[Section]:
    """Per-mode comparison, a per-query histogram of ``metric`` for each mode, and the numbers."""
    if not reports:
        raise InvalidInput("no retrieval results to report")
    first = next(iter(reports.values()))
    names = list(first.metrics)
    sections: list[Section] = [
        BarChart(
            title="Retrieval quality by mode",
            categories=names,
            series={mode: [report.metrics.get(n, 0.0) for n in names] for mode, report in reports.items()},
            ylabel="score",
        )
    ]
    for mode, report in reports.items():
        sections.append(
            Histogram(
                title=f"Per-query {metric} ({mode})",
                values=report.metric_values(metric) if metric in report.metrics else [],
                xlabel=metric,
                value_range=(0.0, 1.0),
                caption=f"{report.queries} queries",
            )
        )
    rows = [[mode, report.queries, *[report.metrics.get(n) for n in names]] for mode, report in reports.items()]
    sections.append(Table(title="Retrieval metrics", columns=["mode", "queries", *names], rows=rows))
    return sections


def answer_sections(report: AnswerReport) -> list[Section]:
    summary = report.to_dict(include_per_item=False)
    latency = summary.pop("latency") or {}
    rows = [[key, value] for key, value in summary.items()]
    rows += [[f"latency {key}", value] for key, value in latency.items() if key != "percentile_method"]
    sections: list[Section] = [Table(title="Answer quality", columns=["metric", "value"], rows=rows)]
    f1 = [item.token_f1 for item in report.per_item if item.token_f1 is not None]
    faithful = [item.faithfulness for item in report.per_item if item.faithfulness is not None]
    sections.append(Histogram(title="Token F1 per answer", values=f1, xlabel="token F1", value_range=(0.0, 1.0)))
    if faithful:
        sections.append(
            Histogram(title="Faithfulness per answer", values=faithful, xlabel="supported share", value_range=(0, 1))
        )
    return sections


def bench_sections(results: Sequence[BenchResult]) -> list[Section]:
    """A latency histogram with percentile markers per run, and a table of every run's figures."""
    if not results:
        raise InvalidInput("no benchmark results to report")
    sections: list[Section] = []
    for result in results:
        name = result.label or "run"
        sections.append(
            LatencyChart(title=f"Latency: {name}, {result.clients} client(s)", latencies_ms=result.latencies_ms)
        )
    columns = ["run", "clients", "requests", "errors", "qps", "p50 ms", "p95 ms", "p99 ms", "peak RSS MB"]
    rows = [
        [
            r.label,
            r.clients,
            r.requests,
            r.errors,
            r.qps,
            r.latency.p50_ms if r.latency else None,
            r.latency.p95_ms if r.latency else None,
            r.latency.p99_ms if r.latency else None,
            r.peak_rss_mb,
        ]
        for r in results
    ]
    sections.append(Table(title="Benchmark figures", columns=columns, rows=rows))
    return sections


def scaling_section(points: Sequence[ScalingPoint], *, title: str = "Throughput against corpus size") -> LineChart:
    """One line per (label, clients), queries per second against corpus size."""
    if not points:
        raise InvalidInput("no scaling points to report")
    sizes = sorted({p.corpus_size for p in points})
    series: dict[str, list[float]] = {}
    for key in dict.fromkeys((p.label, p.clients) for p in points):
        by_size = {p.corpus_size: p.qps for p in points if (p.label, p.clients) == key}
        label = f"{key[0] + ', ' if key[0] else ''}{key[1]} client(s)"
        series[label] = [by_size.get(size, float("nan")) for size in sizes]
    wide = sizes[0] > 0 and sizes[-1] / sizes[0] >= 20
    return LineChart(
        title=title, x=sizes, series=series, xlabel="documents in corpus", ylabel="queries per second", log_x=wide
    )
