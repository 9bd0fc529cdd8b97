"""Evaluation and benchmarking: BEIR datasets, retrieval and answer metrics, benchmarks, reports, gates.

Pure functions over data and ports; nothing here ingests or searches (the CLI wires these to the services).
Submodules: ``beir``, ``metrics``, ``answers``, ``qa_dataset``, ``bench``, ``report``, ``gates``,
``feedback_export``. matplotlib is imported only when a report is drawn.
"""

from quarry.evaluation.answers import AnswerRecord, AnswerReport, Judge, evaluate_answers
from quarry.evaluation.beir import BeirDataset, build_slice, load_beir
from quarry.evaluation.bench import (
    BenchResult,
    LatencyStats,
    ScalingPoint,
    by_clients,
    latency_stats,
    run_concurrent,
    run_levels,
)
from quarry.evaluation.metrics import RetrievalReport, evaluate
from quarry.evaluation.qa_dataset import Passage, QAItem, load_passages, load_qa

__all__ = [
    "AnswerRecord",
    "AnswerReport",
    "BeirDataset",
    "BenchResult",
    "Judge",
    "LatencyStats",
    "Passage",
    "QAItem",
    "RetrievalReport",
    "ScalingPoint",
    "build_slice",
    "by_clients",
    "evaluate",
    "evaluate_answers",
    "latency_stats",
    "load_beir",
    "load_passages",
    "load_qa",
    "run_concurrent",
    "run_levels",
]
