"""Quality gates: thresholds kept in the repository (``eval/gates.json``) checked against a results file.

``gates.json``::

    {
      "gates": {
        "retrieval/hybrid/ndcg@10": {"min": 0.70, "note": "SciFact slice, 50 queries"},
        "answers/refusal_rate":     {"max": 0.5}
      }
    }

Each key is a path into the results JSON, ``/``-separated (keys such as ``ndcg@10`` hold no slash). A gate
has ``min`` (the value must be at least this) or ``max`` (at most this), or both. A metric that is missing
from the results fails its gate: a silently skipped gate would hide a broken run.

A *ratio* gate compares two figures of the same run instead of one figure with a constant, for speed
properties that must not depend on how busy the machine is (``eval/gates-ci.json``)::

    "search/p99_ms_8_over_1": {"ratio": ["search/clients_8/p99_ms", "search/clients_1/p99_ms"], "max": 20}

Its key is only a name; the value checked is the first path's number divided by the second's (both must
be present, the second positive).

``python -m quarry.evaluation.gates RESULTS.json [--gates eval/gates.json] [--json]`` (or ``main(argv)``
from the CLI) prints one line per gate and exits 0 when all pass, 1 on a regression, 2 on unusable input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from quarry.errors import InvalidInput, NotFound, QuarryError

__all__ = [
    "DEFAULT_GATES",
    "Gate",
    "GateOutcome",
    "check",
    "format_outcome",
    "load_gates",
    "lookup",
    "main",
    "parse_gates",
    "value_of",
]

DEFAULT_GATES = Path("eval") / "gates.json"


@dataclass(frozen=True, slots=True)
class Gate:
    metric: str
    min: float | None = None
    max: float | None = None
    note: str = ""
    ratio: tuple[str, str] | None = None  # (numerator, denominator) paths: the value is their quotient

    def describe(self) -> str:
        return f"{self.metric} ({self.ratio[0]} / {self.ratio[1]})" if self.ratio else self.metric


@dataclass(frozen=True, slots=True)
class GateOutcome:
    metric: str
    passed: bool
    actual: float | None
    bound: str
    threshold: float | None
    shortfall: float | None
    message: str


def _number(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{where} must be a finite number, got {value!r}")
    return float(value)


def parse_gates(document: Mapping[str, Any]) -> list[Gate]:
    entries = document.get("gates")
    if not isinstance(entries, Mapping) or not entries:
        raise InvalidInput("gates file needs a non-empty 'gates' object")
    gates: list[Gate] = []
    for metric, spec in entries.items():
        if not isinstance(spec, Mapping):
            raise InvalidInput(f"gate {metric!r} must be an object with 'min' and/or 'max'")
        low = _number(f"gate {metric!r} min", spec.get("min"))
        high = _number(f"gate {metric!r} max", spec.get("max"))
        if low is None and high is None:
            raise InvalidInput(f"gate {metric!r} has neither 'min' nor 'max'")
        ratio = _ratio(str(metric), spec.get("ratio"))
        gates.append(Gate(metric=str(metric), min=low, max=high, note=str(spec.get("note", "")), ratio=ratio))
    return gates


def _ratio(metric: str, value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(path, str) and path.strip() for path in value)
    ):
        raise InvalidInput(f"gate {metric!r} ratio must be two metric paths: [numerator, denominator]")
    return (value[0], value[1])


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise NotFound(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc}") from exc


def load_gates(path: str | Path = DEFAULT_GATES) -> list[Gate]:
    document = _read_json(Path(path), "gates file")
    if not isinstance(document, Mapping):
        raise InvalidInput(f"gates file {path} must hold a JSON object")
    return parse_gates(document)


def lookup(results: Any, metric: str) -> float | None:
    """The number at ``metric`` (a ``/``-separated path), or None when absent or not a number."""
    node = results
    for key in metric.split("/"):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        return None
    return float(node)


def _relative(shortfall: float, threshold: float) -> str:
    return f" ({shortfall / abs(threshold):.1%})" if threshold else ""


def _judge(gate: Gate, actual: float) -> GateOutcome:
    if gate.min is not None and actual < gate.min:
        drop = gate.min - actual
        message = (
            f"FAIL {gate.describe()} = {actual:.4f} fell below the minimum {gate.min:.4f} "
            f"by {drop:.4f}{_relative(drop, gate.min)}"
        )
        return GateOutcome(gate.metric, False, actual, "min", gate.min, drop, message)
    if gate.max is not None and actual > gate.max:
        excess = actual - gate.max
        message = (
            f"FAIL {gate.describe()} = {actual:.4f} rose above the maximum {gate.max:.4f} "
            f"by {excess:.4f}{_relative(excess, gate.max)}"
        )
        return GateOutcome(gate.metric, False, actual, "max", gate.max, excess, message)
    bounds = " ".join(
        part
        for part in (
            f">= {gate.min:.4f}" if gate.min is not None else "",
            f"<= {gate.max:.4f}" if gate.max is not None else "",
        )
        if part
    )
    bound = "min" if gate.min is not None else "max"
    threshold = gate.min if gate.min is not None else gate.max
    return GateOutcome(
        gate.metric, True, actual, bound, threshold, 0.0, f"ok   {gate.describe()} = {actual:.4f} ({bounds})"
    )


def value_of(results: Any, gate: Gate) -> float | None:
    """The number ``gate`` judges: its metric, or the quotient of its ratio's two metrics."""
    if gate.ratio is None:
        return lookup(results, gate.metric)
    numerator, denominator = (lookup(results, path) for path in gate.ratio)
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def check(results: Any, gates: Sequence[Gate]) -> list[GateOutcome]:
    outcomes: list[GateOutcome] = []
    for gate in gates:
        actual = value_of(results, gate)
        if actual is None:
            bound = "min" if gate.min is not None else "max"
            threshold = gate.min if gate.min is not None else gate.max
            what = " (or its denominator is not positive)" if gate.ratio else ""
            message = f"FAIL {gate.describe()} is missing from the results{what}"
            outcomes.append(GateOutcome(gate.metric, False, None, bound, threshold, None, message))
        else:
            outcomes.append(_judge(gate, actual))
    return outcomes


def format_outcome(outcome: GateOutcome) -> str:
    return outcome.message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quarry eval gate", description="Fail when a metric falls below its gate.")
    parser.add_argument("results", type=Path, help="results JSON written by quarry eval / bench --json")
    parser.add_argument("--gates", type=Path, default=DEFAULT_GATES, help="thresholds file (default: eval/gates.json)")
    parser.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        gates = load_gates(args.gates)
        results = _read_json(args.results, "results file")
    except QuarryError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    outcomes = check(results, gates)
    failed = [o for o in outcomes if not o.passed]
    if args.json:
        print(json.dumps({"passed": not failed, "outcomes": [asdict(o) for o in outcomes]}, indent=2), file=stream)
    else:
        for outcome in outcomes:
            print(format_outcome(outcome), file=stream)
        verdict = (
            f"all {len(outcomes)} gates held"
            if not failed
            else f"REGRESSION: {len(failed)} of {len(outcomes)} gates fell"
        )
        print(verdict, file=stream)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
