"""The daily token allowance at the edges, through the handlers as Lambda loads them: ``POST /chat`` answers
429 ``budget_exhausted`` with ``Retry-After`` until 00:00 UTC, ``GET /usage`` reports what is left, and the
WebSocket path (``ws_message``, then ``chat_worker`` for a job queued before the allowance ran out) sends an
``error`` event with the same code and message."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from quarry.adapters.memory_usage import InMemoryUsageLedger
from quarry.local.handlers import LocalContext, load_handler
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import fake_overrides
from tests.unit.lambdas.rest_calls import UI_ORIGIN, header, rest_response
from tests.unit.lambdas.test_handlers import ALICE, HashEmbedder, Recorder, chat_job_event, event
from tests.unit.services.test_usage import NOVA, PricedChat

BUDGET = 300  # PricedChat spends 204 tokens per answer (200 in, 4 out): two answers start, the third is refused
BOB = "0b5c3a2e-8f61-4c1d-a0b2-3c4d5e6f7a8b"
CONNECTION = "PQ2bZdPqIAMCJXA="  # the connection of tests/events/ws_message.json


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _services(tmp_path: Path, recorder: Recorder, daily_token_budget: int | None) -> Services:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo(NOVA, "nova", "bedrock"), PricedChat)
    overrides = fake_overrides(recorder, models, usage=InMemoryUsageLedger())
    return build_services(Settings(data_dir=tmp_path, daily_token_budget=daily_token_budget), overrides=overrides)


@pytest.fixture
def services(tmp_path: Path, recorder: Recorder) -> Iterator[Services]:
    built = _services(tmp_path, recorder, BUDGET)
    install_services(built)
    yield built
    reset_services()


def rest(method: str, path: str, body: dict[str, Any] | None = None, *, user: str = ALICE) -> dict[str, Any]:
    return rest_response(method, path, body, user=user, origin=UI_ORIGIN)


def seconds_to_utc_midnight(now: datetime) -> float:
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    return (datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC) - now).total_seconds()


def test_post_chat_answers_until_the_allowance_is_spent_then_429_with_retry_after(services: Services) -> None:
    for _ in range(2):  # 0 then 204 tokens used: both under 300
        assert rest("POST", "/chat", {"text": "How long is leave?"})["statusCode"] == 200

    before = datetime.now(UTC)
    refused = rest("POST", "/chat", {"text": "How long is leave?"})
    after = datetime.now(UTC)

    assert refused["statusCode"] == 429, refused
    body = json.loads(refused["body"])["error"]
    assert body["code"] == "budget_exhausted"
    retry_after = header(refused, "Retry-After")
    assert retry_after is not None and retry_after.isdigit()
    assert math.ceil(seconds_to_utc_midnight(after)) <= int(retry_after) <= math.ceil(seconds_to_utc_midnight(before))
    hours, minutes = divmod(math.ceil(int(retry_after) / 60), 60)
    assert body["message"] == (
        f"You have used your daily allowance of 300 tokens; it renews at 00:00 UTC (in {hours}h {minutes}m)."
    )
    assert "retry-after" in (header(refused, "Access-Control-Expose-Headers") or "").lower().split(",")
    assert len(services.sessions.list_sessions(ALICE).items) == 2  # the refused question opened nothing

    assert rest("POST", "/chat", {"text": "How long is leave?"}, user=BOB)["statusCode"] == 200


def test_get_usage_reports_the_allowance_and_what_is_left_today(services: Services) -> None:
    fresh = json.loads(rest("GET", "/usage")["body"])["allowance"]
    assert (fresh["daily_token_budget"], fresh["tokens_today"], fresh["tokens_left_today"]) == (300, 0, 300)
    assert datetime.fromisoformat(fresh["renews_at"]) == datetime.combine(
        datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC
    )

    rest("POST", "/chat", {"text": "How long is leave?"})
    rest("POST", "/chat", {"text": "How long is leave?"})
    spent = json.loads(rest("GET", "/usage")["body"])["allowance"]
    assert (spent["tokens_today"], spent["tokens_left_today"]) == (408, 0)

    ws = json.loads(rest("POST", "/workspaces", {"name": "handbook"})["body"])
    view = json.loads(rest("GET", f"/workspaces/{ws['id']}/usage")["body"])
    assert view["allowance"] is None  # an allowance is a user's, not a workspace's


def test_without_an_allowance_usage_reports_none_and_chat_is_never_refused(tmp_path: Path, recorder: Recorder) -> None:
    install_services(_services(tmp_path, recorder, None))
    try:
        for _ in range(3):
            assert rest("POST", "/chat", {"text": "How long is leave?"})["statusCode"] == 200
        assert json.loads(rest("GET", "/usage")["body"])["allowance"] is None
    finally:
        reset_services()


def test_a_websocket_chat_past_the_allowance_gets_an_error_event_and_publishes_nothing(
    services: Services, recorder: Recorder
) -> None:
    rest("POST", "/chat", {"text": "How long is leave?"})
    rest("POST", "/chat", {"text": "How long is leave?"})
    chat = {"action": "chat", "text": "How long is leave?"}

    assert load_handler("ws_message")(event("ws_message.json") | {"body": json.dumps(chat)}, LocalContext("ws")) == {
        "statusCode": 200
    }

    assert recorder.published == []
    connection, sent = recorder.sent[-1]
    assert connection == CONNECTION and sent["type"] == "error" and sent["code"] == "budget_exhausted"
    assert sent["message"].startswith("You have used your daily allowance of 300 tokens; it renews at 00:00 UTC")


def test_a_queued_job_whose_user_ran_out_meanwhile_gets_an_error_event_from_the_worker(
    services: Services, recorder: Recorder
) -> None:
    rest("POST", "/chat", {"text": "How long is leave?"})
    rest("POST", "/chat", {"text": "How long is leave?"})

    result = load_handler("chat_worker")(chat_job_event("conn-1", "s1", "m1", "And part-time?"), LocalContext("w"))

    assert result == {"batchItemFailures": []}  # refused, not failed: the queue must not deliver it again
    [sent] = [p for c, p in recorder.sent if c == "conn-1"]
    assert (sent["type"], sent["code"], sent["session_id"]) == ("error", "budget_exhausted", "s1")
    assert services.adapters.chat_history.get_session("s1") is None  # nothing stored for the refused question
