# The two commands of the README: `make serve` and `make test`.
.PHONY: serve test setup setup-test test-python test-frontend lint eval-gate

PY := .venv/bin/python

serve: setup          ## install everything, then run the whole platform on http://127.0.0.1:8000
	.venv/bin/quarry serve

test: setup-test      ## install what the tests need, then lint, then run every tier (unit, aws, cdk, integration, e2e, gates)
	$(MAKE) lint test-python test-frontend eval-gate

setup:
	scripts/bootstrap.sh

setup-test:
	scripts/bootstrap.sh --test

test-python:
	$(PY) -m pytest -q -p no:cacheprovider

test-frontend:
	cd frontend && npm test --silent

eval-gate:
	PYTHON=$(CURDIR)/.venv/bin/python scripts/eval_gate.sh

lint:                 ## every static check; any finding fails (mypy's targets and import roots: pyproject.toml)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	cd frontend && npm run --silent lint && npm run --silent typecheck

# Deploying to AWS: `make deploy` (ARGS="--config deploy.toml --yes" and any `quarry deploy --help` option).
.PHONY: deploy destroy

deploy: setup         ## preflight (credentials, CDK bootstrap, container engine, Bedrock access, cost), build, cdk deploy
	.venv/bin/quarry deploy $(ARGS)

destroy: setup        ## cdk destroy after a confirmation (ARGS="--yes" skips it); retained data is listed first
	.venv/bin/quarry destroy $(ARGS)
