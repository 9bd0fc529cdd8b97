"""REST: GET /usage (the caller's own) and GET /workspaces/{id}/usage (its owner's), through the Lambda handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarry.adapters.memory_usage import InMemoryUsageLedger
from quarry.pricing import PRICES_AS_OF, token_cost
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import fake_overrides
from tests.unit.lambdas.rest_calls import rest
from tests.unit.lambdas.test_handlers import ALICE, HashEmbedder, Recorder
from tests.unit.services.test_usage import NOVA, PricedChat


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo(NOVA, "nova", "bedrock"), PricedChat)
    recorder = Recorder()
    overrides = fake_overrides(recorder, models, usage=InMemoryUsageLedger())
    built = build_services(Settings(data_dir=tmp_path), overrides=overrides)
    install_services(built)
    yield built
    reset_services()


def test_usage_views_sum_what_post_chat_spent(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    status, ws = rest("POST", "/workspaces", {"name": "handbook"})
    assert status == 201
    for _ in range(2):
        status, _answer = rest("POST", "/chat", {"text": "How long is leave?"})
        assert status == 200
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [d["model"] for d in emf if "ChatInputTokens" in d] == [NOVA, NOVA]  # POST /chat emits its metrics

    status, mine = rest("GET", "/usage")
    assert status == 200
    assert mine["scope"] == "user" and mine["id"] == ALICE and mine["currency"] == "USD"
    assert mine["prices_as_of"] == PRICES_AS_OF
    assert mine["total"]["requests"] == 2 and mine["total"]["prompt_tokens"] == 400
    assert mine["total"]["cost_usd"] == pytest.approx(2 * token_cost(NOVA, 200, 4))
    assert [(r["model"], r["requests"]) for r in mine["by_model"]] == [(NOVA, 2)]
    assert len(mine["days"]) == 1

    status, theirs = rest("GET", f"/workspaces/{ws['id']}/usage")
    assert status == 200 and theirs["scope"] == "workspace" and theirs["total"]["requests"] == 0


def test_workspace_usage_is_the_owners_and_dates_are_validated(services: Services) -> None:
    _, ws = rest("POST", "/workspaces", {"name": "handbook"})
    status, body = rest("GET", f"/workspaces/{ws['id']}/usage", user="mallory")
    assert status == 404 and body["error"]["code"] == "not_found"

    status, body = rest("GET", "/usage", since="2026-03-01", until="2026-03-31")
    assert status == 200 and (body["since"], body["until"]) == ("2026-03-01", "2026-03-31")
    status, body = rest("GET", "/usage", since="yesterday")
    assert status == 422 and body["error"]["code"] == "invalid_input"
    status, body = rest("GET", "/usage", since="2026-04-02", until="2026-04-01")
    assert status == 422 and "after" in body["error"]["message"]


def test_usage_routes_are_in_the_openapi_document(services: Services) -> None:
    status, spec = rest("GET", "/openapi.json")
    assert status == 200
    assert {"/usage", "/workspaces/{workspace_id}/usage"} <= set(spec["paths"])
