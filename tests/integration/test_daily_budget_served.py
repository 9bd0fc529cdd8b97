"""The daily token allowance on `quarry serve` as a user meets it: real HTTP, a real WebSocket, the packaged
local chat model and the usage ledger in embedded Postgres. A user is answered until their tokens today reach
the allowance, then refused over REST (429, ``Retry-After``) and over the WebSocket (an ``error`` event);
another user is still answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from quarry.services.models_registry import ModelRegistry
from tests.platform_fixtures import LivePlatform, serve_live

pytestmark = [pytest.mark.integration, pytest.mark.llm]

# A short plain answer of the local model spends some 16 tokens (its prompt and a word or two): the
# allowance lasts a couple of answers.
BUDGET = 30
QUESTION = {"text": "Say hello in one word.", "model_kwargs": {"max_tokens": 8}}
SPENDER, OTHER = "spender", "other"


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, model_registry: ModelRegistry
) -> Iterator[LivePlatform]:
    with serve_live(tmp_path_factory.mktemp("budget"), pg_database, model_registry, daily_token_budget=BUDGET) as p:
        yield p


def api(live: LivePlatform, method: str, path: str, *, user: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{live.base_url}/api{path}", headers=live.headers(user), timeout=300, **kw)


def allowance(live: LivePlatform, user: str) -> dict[str, Any]:
    response = api(live, "GET", "/usage", user=user)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["allowance"]
    return found


async def ws_chat(live: LivePlatform, user: str) -> dict[str, Any]:
    """Ask over the WebSocket; the first event that ends the exchange (``final`` or ``error``)."""
    async with websockets.connect(f"{live.ws_url}?token={live.token_for(user)}") as ws:
        await ws.send(json.dumps({"action": "chat", **QUESTION}))
        while True:
            event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=300))
            if event["type"] in ("final", "error"):
                return event


def test_a_user_is_answered_until_the_allowance_is_spent_then_refused_and_others_are_not(
    live: LivePlatform,
) -> None:
    assert allowance(live, SPENDER) | {"renews_at": None} == {
        "daily_token_budget": BUDGET,
        "tokens_today": 0,
        "tokens_left_today": BUDGET,
        "renews_at": None,
    }

    answers, used = 0, 0
    while used < BUDGET:  # every question is answered while tokens are left, however few
        assert answers < 10, "answers spend no tokens"
        answered = api(live, "POST", "/chat", user=SPENDER, json=QUESTION)
        assert answered.status_code == 200, answered.text
        usage = answered.json()["usage"]
        answers, used = answers + 1, used + usage["prompt_tokens"] + usage["completion_tokens"]
    spent = allowance(live, SPENDER)
    assert (spent["tokens_today"], spent["tokens_left_today"]) == (used, 0)
    assert answers >= 2  # the allowance is not all spent by the first answer

    refused = api(live, "POST", "/chat", user=SPENDER, json=QUESTION)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert error["message"].startswith(f"You have used your daily allowance of {BUDGET} tokens; it renews at 00:00 UTC")
    assert 1 <= int(refused.headers["retry-after"]) <= 24 * 3600

    event = asyncio.run(ws_chat(live, SPENDER))
    assert (event["type"], event["code"], event["message"]) == ("error", "budget_exhausted", error["message"])
    sessions = api(live, "GET", "/sessions", user=SPENDER).json()["items"]
    assert len(sessions) == answers  # the answered questions' only: the refused ones opened nothing

    other = asyncio.run(ws_chat(live, OTHER))
    assert other["type"] == "final" and other["answer"]
    assert allowance(live, OTHER)["tokens_today"] > 0
