#!/usr/bin/env bash
# Install everything Quarry needs on a fresh machine, idempotently.
#   scripts/bootstrap.sh          the platform: Python env (torch CPU, llama.cpp, models) + the built UI
#   scripts/bootstrap.sh --test   also the test tools: Chromium for browser tests, the pinned CDK CLI
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.quarry-installed
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "installing Python packages (first run builds llama.cpp from source: ~6 min on 2 cores)"
  .venv/bin/python -m pip install --quiet --upgrade pip wheel setuptools
  # The CPU build of torch; any other pin pulls a multi-GB CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".[local,aws,cdk,dev]"
  echo "$want" > "$stamp"
fi

if [[ -f frontend/package-lock.json ]]; then
  lock=$(sha256sum frontend/package-lock.json | cut -c1-16)
  if [[ ! -f frontend/node_modules/.quarry-lock || $(cat frontend/node_modules/.quarry-lock) != "$lock" ]]; then
    say "installing the frontend's npm packages"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock" > frontend/node_modules/.quarry-lock
  fi
  if [[ ! -f frontend/dist/index.html || -n $(find frontend/src frontend/index.html layers/quarry/python/quarry/protocol.py -newer frontend/dist/index.html -print -quit) ]]; then
    say "building the UI"
    (cd frontend && npm run --silent build >/dev/null)
  fi
fi

if [[ $want_test == 1 ]]; then
  if [[ ! -x node_modules/.bin/cdk ]]; then
    say "installing the pinned CDK CLI (aws-cdk@2.1148.1)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    say "installing Debian's chromium for the browser tests"
    if [[ $(id -u) == 0 ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
  fi
fi
say "ready"
