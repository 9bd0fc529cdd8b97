"""Observability probe: "what did this cost and why was it slow", asked as a user would, through the handlers.

Alice chats over REST and over the WebSocket path (the chat worker, whose job SQS delivers twice); then she
asks ``GET /usage`` and, as the owner, ``GET /workspaces/{id}/usage``. The answers must carry tokens, an
estimated cost from the price table ``quarry cost`` uses and timings, both in the stored message and in
the EMF metrics (dimension ``model``); the redelivered job must count nothing. Run on the local stores
(embedded Postgres: SQL chat history and counters) and on the AWS ones (DynamoDB in moto).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from quarry.adapters.dynamodb import create_tables
from quarry.local.handlers import LocalContext, load_handler
from quarry.pricing import token_cost
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import FakeBlobStore, FakeVectorIndex
from tests.unit.lambdas.test_handlers import ALICE, HashEmbedder, Recorder, chat_job_event
from tests.unit.lambdas.test_usage_routes import rest
from tests.unit.services.test_usage import NOVA, PricedChat


def _overrides(recorder: Recorder) -> dict[str, Any]:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo(NOVA, "nova", "bedrock"), PricedChat)
    return {
        "vector_index": FakeVectorIndex(),
        "blob_store": FakeBlobStore(),
        "bus": recorder,
        "workflow": recorder,
        "notifier": recorder,
        "models": models,
    }


@pytest.fixture(params=["postgres", "dynamodb"])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Services, Recorder]]:
    recorder = Recorder()
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_database")
        settings = Settings(data_dir=tmp_path, pg_dsn=dsn)  # SQL catalog, chat history and usage counters
        built = build_services(settings, overrides=_overrides(recorder))
        install_services(built)
        yield built, recorder
        reset_services()
        return
    with mock_aws():
        prefix = "hardening"
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), prefix)
        settings = Settings(
            data_dir=tmp_path,
            catalog="dynamodb",
            chat_history="dynamodb",
            connections="dynamodb",
            table_prefix=prefix,
            aws_region="us-east-1",
        )
        built = build_services(settings, overrides=_overrides(recorder))
        install_services(built)
        yield built, recorder
        reset_services()


def test_what_chatting_cost_and_why_it_was_slow(
    platform: tuple[Services, Recorder], capsys: pytest.CaptureFixture[str]
) -> None:
    services, _recorder = platform
    status, ws = rest("POST", "/workspaces", {"name": "handbook"})
    assert status == 201
    status, answer = rest("POST", "/chat", {"text": "How long is leave?"})
    assert status == 200 and answer["usage"] == {"prompt_tokens": 200, "completion_tokens": 4}

    job = chat_job_event("conn-1", answer["session_id"], "m-worker-1", "And for part-time staff?")
    for _ in range(2):  # SQS is at-least-once: the same job arrives twice
        assert load_handler("chat_worker")(job, LocalContext("chat_worker")) == {"batchItemFailures": []}

    # every answer's metrics, dimension model, in EMF on stdout (CloudWatch reads the log)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    per_answer = [d for d in emf if "ChatInputTokens" in d]
    assert per_answer and all(d["model"] == NOVA and "ChatTotalTime" in d for d in per_answer)
    assert all(sorted(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["model", "service"] for d in per_answer)

    # kept with the assistant messages: model, tokens, cost and timings
    messages = services.sessions.messages(ALICE, answer["session_id"]).items
    kept = [m.metadata for m in messages if m.role.value == "assistant"]
    assert len(kept) == 2
    assert kept[0]["usage"] == {"prompt_tokens": 200, "completion_tokens": 4}
    assert kept[1]["usage"] == {"prompt_tokens": 400, "completion_tokens": 5}  # condensing the follow-up counts
    assert all(k["model"] == NOVA and k["cost_usd"] > 0 and "first_token_ms" in k["timings"] for k in kept)

    # the caller's view: two answers, not three, priced from the same table as `quarry cost`
    status, mine = rest("GET", "/usage")
    assert status == 200
    assert (mine["total"]["requests"], mine["total"]["prompt_tokens"], mine["total"]["completion_tokens"]) == (
        2,
        600,
        9,
    )
    assert mine["total"]["cost_usd"] == pytest.approx(token_cost(NOVA, 200, 4) + token_cost(NOVA, 400, 5))
    assert [r["model"] for r in mine["by_model"]] == [NOVA]

    # the owner's workspace view, and nobody else's
    status, theirs = rest("GET", f"/workspaces/{ws['id']}/usage")
    assert status == 200 and theirs["scope"] == "workspace"
    status, _ = rest("GET", f"/workspaces/{ws['id']}/usage", user="mallory")
    assert status == 404
