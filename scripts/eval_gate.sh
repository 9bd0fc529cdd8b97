#!/usr/bin/env bash
# CI quality gate: run the fast evaluation slice and hold it to eval/gates-ci.json. Part of `make test`, so
# it holds no absolute time, latency or throughput limit (those measure the machine's load): quality gates,
# and speed only as a ratio of two figures of the same run (see eval/README.md).
#
#   scripts/eval_gate.sh [ci-slice options]   run the slice (SciFact: 50 queries, their judged documents and
#                                             500 distractors; the first rag-mini-wikipedia questions), write
#                                             ONE results JSON, then check it against the gates
#   scripts/eval_gate.sh --check RESULTS.json check an existing results file only (no models: seconds)
#
# Environment:
#   QUARRY_DATASETS  the shared datasets (default: ../shared/datasets next to the repository; read, never copied)
#   EVAL_RESULTS     where the results JSON goes (default: ./eval-results-ci.json)
#   EVAL_QUESTIONS   how many rag-mini-wikipedia questions to ask (default: 20)
#   EVAL_GATES       thresholds file (default: eval/gates-ci.json)
#   QUARRY_*         the usual settings (data dir, model path, ...)
#
# Exit status: 0 every gate held; 1 a metric regressed (each failing metric is named with its drop);
# 2 the results or the gates file is unusable.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gates="${EVAL_GATES:-$root/eval/gates-ci.json}"
python="${PYTHON:-python}"

if [[ "${1:-}" == "--check" ]]; then
  if [[ $# -ne 2 ]]; then
    echo "usage: $0 --check RESULTS.json" >&2
    exit 2
  fi
  exec "$python" -m quarry.evaluation.gates "$2" --gates "$gates"
fi

datasets="${QUARRY_DATASETS:-$root/../shared/datasets}"
results="${EVAL_RESULTS:-$PWD/eval-results-ci.json}"
exec "$python" -m quarry.cli eval ci-slice \
  --datasets "$datasets" \
  --out "$results" \
  --gates "$gates" \
  --questions "${EVAL_QUESTIONS:-20}" \
  "$@"
