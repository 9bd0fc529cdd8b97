"""Recording usage: every answer's tokens, cost and timings are kept with its message and counted once."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from quarry.adapters.cloudwatch_metrics import (
    COST,
    FIRST_TOKEN_TIME,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    RETRIEVAL_TIME,
    TOTAL_TIME,
    emit_answer_metrics,
)
from quarry.adapters.memory_usage import InMemoryUsageLedger
from quarry.errors import InvalidInput, NotFound
from quarry.models import Role, Usage, UsageScope
from quarry.ports import ChatDelta, ChatTurn
from quarry.pricing import token_cost
from quarry.services.chat import ChatRequest
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.usage import UsageService
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import Services, build_services
from tests.fakes import FakeCatalog, fake_overrides
from tests.unit.lambdas.test_handlers import HashEmbedder, Recorder

NOVA = "amazon.nova-lite-v1:0"


class PricedChat:
    """A chat model named like a Bedrock model; reports 200 tokens in per call and 1 out per piece."""

    name, context_tokens = NOVA, 2048

    def __init__(self) -> None:
        self.calls = 0

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        self.calls += 1
        pieces = ["Leave ", "is ", "27 ", "days."] if max_tokens > 64 else ["How long is leave?"]
        yield from (ChatDelta(p) for p in pieces)
        yield ChatDelta("", usage=Usage(prompt_tokens=200, completion_tokens=len(pieces)))


@pytest.fixture
def ledger() -> InMemoryUsageLedger:
    return InMemoryUsageLedger()


@pytest.fixture
def services(tmp_path: Path, ledger: InMemoryUsageLedger) -> Services:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo(NOVA, "nova", "bedrock"), PricedChat)
    recorder = Recorder()
    overrides = fake_overrides(recorder, models, usage=ledger)
    return build_services(Settings(data_dir=tmp_path), overrides=overrides)


def test_an_answer_keeps_its_tokens_cost_and_timings_and_is_counted(services: Services) -> None:
    outcome = services.chat.answer(ChatRequest(user="alice", text="How long is leave?"))
    answer = outcome.answer
    assert answer.model == NOVA and answer.usage == Usage(prompt_tokens=200, completion_tokens=4)
    [_, stored] = services.sessions.messages("alice", outcome.session.id).items
    assert stored.role is Role.ASSISTANT
    meta = stored.metadata
    assert meta["model"] == NOVA and meta["priced"] is True
    assert meta["usage"] == {"prompt_tokens": 200, "completion_tokens": 4}
    assert meta["cost_usd"] == pytest.approx(token_cost(NOVA, 200, 4)) and meta["cost_usd"] > 0
    assert {"first_token_ms", "generate_ms", "total_ms"} <= set(meta["timings"])

    report = services.usage.for_user("alice")
    assert [(r.model, r.requests, r.prompt_tokens, r.completion_tokens) for r in report.days] == [(NOVA, 1, 200, 4)]
    assert report.total().cost_usd == pytest.approx(meta["cost_usd"])


def test_a_follow_up_counts_the_condensing_call_too(services: Services) -> None:
    first = services.chat.answer(ChatRequest(user="alice", text="How long is leave?"))
    second = services.chat.answer(
        ChatRequest(user="alice", text="And for part-time staff?", session_id=first.session.id)
    )
    # condense: 200 in, 1 out; answer: 200 in, 4 out
    assert second.answer.usage == Usage(prompt_tokens=400, completion_tokens=5)
    assert "condense_ms" in second.answer.timings
    assert services.usage.for_user("alice").total().prompt_tokens == 600


def test_workspace_answers_count_for_the_workspace_and_only_its_owner_sees_them(services: Services) -> None:
    ws = services.workspaces.create("alice", WorkspaceSpec(name="handbook"))
    services.adapters.catalog.put_workspace(replace(ws, shared_with=("bob",)))
    services.chat.answer(ChatRequest(user="bob", text="How long is leave?", workspace_id=ws.id))
    report = services.usage.for_workspace("alice", ws.id)
    assert report.scope is UsageScope.WORKSPACE and report.total().requests == 1
    assert services.usage.for_user("bob").total().requests == 1
    assert services.usage.for_user("alice").total().requests == 0
    with pytest.raises(NotFound):
        services.usage.for_workspace("bob", ws.id)  # a reader, not the owner
    with pytest.raises(NotFound):
        services.usage.for_workspace("mallory", ws.id)


def test_views_default_to_the_last_30_days_and_refuse_bad_ranges(ledger: InMemoryUsageLedger) -> None:
    from quarry.services.access import WorkspaceAccess

    usage = UsageService(
        ledger=ledger, access=WorkspaceAccess(FakeCatalog()), clock=lambda: datetime(2026, 3, 31, 23, tzinfo=UTC)
    )
    report = usage.for_user("alice")
    assert (report.since, report.until) == (date(2026, 3, 2), date(2026, 3, 31))
    with pytest.raises(InvalidInput, match="after"):
        usage.for_user("alice", since=date(2026, 4, 2), until=date(2026, 4, 1))
    with pytest.raises(InvalidInput, match="366"):
        usage.for_user("alice", since=date(2024, 1, 1), until=date(2026, 1, 1))


def test_answer_metrics_are_emf_with_the_model_dimension(
    services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = services.chat.answer(ChatRequest(user="alice", text="How long is leave?")).answer
    capsys.readouterr()
    emit_answer_metrics(answer, service="chat")
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Quarry" and sorted(directive["Dimensions"][0]) == ["model", "service"]
    assert document["model"] == NOVA
    assert document[INPUT_TOKENS] == [200.0] and document[OUTPUT_TOKENS] == [1.0 * answer.usage.completion_tokens]
    assert document[COST] == [pytest.approx(token_cost(NOVA, 200, answer.usage.completion_tokens))]
    assert document[FIRST_TOKEN_TIME] == [answer.timings["first_token_ms"]]
    assert TOTAL_TIME in document and RETRIEVAL_TIME not in document  # no workspace: nothing was searched
