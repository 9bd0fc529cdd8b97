"""Bounded chat spend in the template: the chat queue's event source runs at most ``spend.chat_max_concurrency``
workers, and the functions that admit or answer chats get the per-user daily token budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quarry.settings import Settings
from stacks.config import DeployConfig, load_config
from stacks.functions import FUNCTIONS
from stacks.runtime_env import quarry_environment
from tests.cdk.cdk_synth import Synth, function, logical_id, synthesize
from tests.cdk.test_runtime_env import RESOURCES

pytestmark = pytest.mark.cdk

BUDGETED = {"rest_api", "ws_message", "chat_worker", "summary_worker"}  # summary runs spend the owner's too
SPEND = {"spend": {"chat_max_concurrency": 25, "daily_token_budget_per_user": None}}


@pytest.fixture(scope="module")
def unbudgeted_synth(code_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(SPEND, code_dirs, tmp_path_factory.mktemp("cdk-spend"))


def _chat_mapping(synth: Synth) -> dict[str, object]:
    queue = logical_id(synth, synth.stack.messaging.chat_queue)
    [mapping] = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    ]
    return mapping


def _variables(synth: Synth, name: str) -> dict[str, object]:
    return dict(function(synth, name)["Properties"].get("Environment", {}).get("Variables", {}))


def test_the_chat_workers_run_at_most_the_configured_concurrency(default_synth: Synth, unbudgeted_synth: Synth) -> None:
    assert _chat_mapping(default_synth)["ScalingConfig"] == {"MaximumConcurrency": 10}  # the default cap
    assert _chat_mapping(unbudgeted_synth)["ScalingConfig"] == {"MaximumConcurrency": 25}
    # ingestion is not chat spend: its event source stays uncapped
    ingest = logical_id(default_synth, default_synth.stack.messaging.ingest_queue)
    [other] = [
        m["Properties"]
        for m in default_synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [ingest, "Arn"]}
    ]
    assert "ScalingConfig" not in other


def test_the_chat_functions_get_the_daily_token_budget(default_synth: Synth) -> None:
    budgeted = {name for name, spec in FUNCTIONS.items() if spec.token_budget}
    assert budgeted == BUDGETED
    for name in default_synth.stack.functions.functions:
        value = _variables(default_synth, name).get("QUARRY_DAILY_TOKEN_BUDGET")
        assert value == ("500000" if name in BUDGETED else None), name


def test_no_budget_sets_no_variable(unbudgeted_synth: Synth) -> None:
    for name in unbudgeted_synth.stack.functions.functions:
        assert "QUARRY_DAILY_TOKEN_BUDGET" not in _variables(unbudgeted_synth, name), name


def test_the_runtime_reads_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config({"spend": {"daily_token_budget_per_user": 120_000}})
    env = quarry_environment(config, RESOURCES, postgres="none", token_budget=True)
    assert env["QUARRY_DAILY_TOKEN_BUDGET"] == "120000"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings().daily_token_budget == 120_000
    assert "QUARRY_DAILY_TOKEN_BUDGET" not in quarry_environment(DeployConfig(), RESOURCES, postgres="none")
