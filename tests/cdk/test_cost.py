"""`quarry cost`: the default idle estimate is small; always-on options add their documented items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quarry.deployment.config import DeployConfig, load_config
from quarry.deployment.cost import HOURS_PER_MONTH, PRICES, Bound, Estimate, LineItem, Workload, estimate, main
from quarry.errors import InvalidInput
from quarry.pricing import TOKEN_PRICES_1K, token_cost

pytestmark = pytest.mark.cdk


def _item(items: list[LineItem], fragment: str) -> LineItem:
    found = [i for i in items if fragment in i.item]
    assert len(found) == 1, (fragment, items)
    return found[0]


def test_default_idle_is_small_and_has_no_always_on_compute() -> None:
    est = estimate(DeployConfig())
    assert Estimate.total(est.idle) < 20
    components = {i.component for i in est.idle if i.usd > 0}
    assert not components & {"opensearch", "sagemaker"}
    assert _item(est.idle, "compute while paused").usd == 0
    assert not [i for i in est.idle if "NAT" in i.item or "endpoint" in i.item]
    calls = _item(est.per_1000_chats, "RDS Data API calls")
    assert calls.usd == pytest.approx(
        1000 * Workload().data_api_calls_per_chat / 1e6 * PRICES["rds_data_api_per_million"]
    )


def test_default_idle_is_at_most_5_dollars_with_dashboard_and_function_alarms_opt_in() -> None:
    base = estimate(DeployConfig())
    assert Estimate.total(base.idle) <= 5
    assert not [i for i in base.idle if "dashboard" in i.item]
    assert _item(base.idle, "alarms").usd == pytest.approx(5 * PRICES["cw_alarm_month"])  # DLQs, 5xx, executions
    opted = estimate(load_config({"monitoring": {"dashboard": True, "function_alarms": True}}))
    assert _item(opted.idle, "CloudWatch dashboard").usd == PRICES["cw_dashboard_month"]
    assert _item(opted.idle, "alarms").usd == pytest.approx(16 * PRICES["cw_alarm_month"])
    added = Estimate.total(opted.idle) - Estimate.total(base.idle)
    assert added == pytest.approx(PRICES["cw_dashboard_month"] + 11 * PRICES["cw_alarm_month"], abs=0.01)


def test_token_prices_are_the_runtime_table() -> None:
    assert PRICES["bedrock_tokens_1k"] is TOKEN_PRICES_1K
    model = "amazon.nova-pro-v1:0"
    est = estimate(load_config({"bedrock": {"chat_model_ids": [f"us.{model}"]}}), Workload())
    llm = _item(est.per_1000_chats, "LLM us.amazon.nova-pro")
    assert llm.usd == pytest.approx(
        1000 * token_cost(f"us.{model}", Workload().prompt_tokens, Workload().completion_tokens)
    )


def test_vpc_mode_adds_a_nat_instance_and_drops_the_data_api_calls() -> None:
    est = estimate(load_config({"aurora": {"access": "vpc"}}))
    nat = _item(est.idle, "NAT instance")
    assert 0 < nat.usd < 10
    assert Estimate.total(est.idle) == pytest.approx(Estimate.total(estimate(DeployConfig()).idle) + nat.usd, abs=0.01)
    assert not [i for i in est.per_1000_chats if "Data API" in i.item]


def test_opensearch_and_sagemaker_add_their_hourly_items() -> None:
    base = estimate(DeployConfig())
    config = load_config(
        {"opensearch": {"enabled": True}, "sagemaker": {"embedding_endpoint": True, "llm_endpoint": True}}
    )
    est = estimate(config)
    ocu = _item(est.idle, "Serverless 1 OCU")
    assert ocu.usd == pytest.approx(PRICES["aoss_ocu_hour"] * HOURS_PER_MONTH)
    llm = _item(est.idle, "LLM endpoint 1 x ml.g5.xlarge")
    assert llm.usd == pytest.approx(PRICES["sagemaker_instance_hour"]["ml.g5.xlarge"] * HOURS_PER_MONTH)
    embedding = _item(est.idle, "embedding + cross-encoder endpoint")
    added = Estimate.total(est.idle) - Estimate.total(base.idle)
    assert added == pytest.approx(ocu.usd + llm.usd + embedding.usd + _item(est.idle, "index storage").usd, abs=0.02)
    # with a SageMaker LLM and embedder the per-chat token bill disappears
    assert not [i for i in est.per_1000_chats if i.component == "bedrock"]


def test_standby_replicas_double_the_ocus() -> None:
    est = estimate(load_config({"opensearch": {"enabled": True, "standby_replicas": True}}))
    assert _item(est.idle, "Serverless 2 OCU").usd == pytest.approx(2 * PRICES["aoss_ocu_hour"] * HOURS_PER_MONTH)


def test_per_1000_chats_and_documents() -> None:
    est = estimate(DeployConfig(), Workload(prompt_tokens=2000, completion_tokens=400))
    llm = _item(est.per_1000_chats, "LLM amazon.nova-lite")  # the default chat model
    assert llm.usd == pytest.approx(1000 * (2.0 * 0.00006 + 0.4 * 0.00024))
    fargate = _item(est.per_1000_documents, "Fargate 2 vCPU")
    assert fargate.usd == pytest.approx(
        1000 * 120 / 3600 * (2 * PRICES["fargate_vcpu_hour"] + 4 * PRICES["fargate_gb_hour"])
    )
    spot = _item(estimate(load_config({"ingestion": {"spot": True}})).per_1000_documents, "Fargate Spot")
    assert spot.usd == pytest.approx(fargate.usd * PRICES["fargate_spot_factor"])


def test_inference_profiles_are_priced_as_their_model() -> None:
    config = load_config({"bedrock": {"chat_model_ids": ["us.anthropic.claude-3-5-haiku-20241022-v1:0"]}})
    assert _item(estimate(config).per_1000_chats, "LLM us.anthropic").usd > 0


def test_unknown_prices_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match=r"no price for 'ml\.p5\.48xlarge'"):
        estimate(
            load_config(
                {"sagemaker": {"llm_endpoint": True, "llm": {"instance_type": "ml.p5.48xlarge", "image_uri": "x"}}}
            )
        )


def test_main_prints_json_and_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "deploy.json"
    config.write_text(json.dumps({"opensearch": {"enabled": True}}))
    assert main(["--config", str(config), "--json", "--cdk-json", str(tmp_path / "none.json")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["currency"] == "USD" and data["prices_as_of"]
    assert data["idle"]["total"] > 175
    assert {"idle", "per_1000_chats", "per_1000_documents"} <= set(data)
    assert main(["--cdk-json", str(tmp_path / "none.json")]) == 0
    table = capsys.readouterr().out
    assert "Idle (per month)" in table and "Per 1,000 documents" in table


def test_main_reads_cdk_json_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"quarry": {"sagemaker": {"llm_endpoint": True}}}}))
    assert main(["--cdk-json", str(cdk_json), "--json"]) == 0
    assert any("LLM endpoint" in i["item"] for i in json.loads(capsys.readouterr().out)["idle"]["items"])


def test_main_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "missing.json")]) == 2
    assert "cannot read deploy config" in capsys.readouterr().err
    assert main(["--workload", "nonsense"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["--workload", "prompt_tokens=many"]) == 2


def test_quarry_cost_command_runs_the_packaged_estimate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from quarry.cli import app

    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"quarry": {"opensearch": {"enabled": True}}}}))
    result = CliRunner().invoke(app, ["cost", "--cdk-json", str(cdk_json), "--json"])
    assert result.exit_code == 0, result.output
    config = load_config({"opensearch": {"enabled": True}})
    assert json.loads(result.stdout) == estimate(config).to_dict()

    refused = CliRunner().invoke(app, ["cost", "--cdk-json", str(cdk_json), "--workload", "nonsense"])
    assert refused.exit_code == 2 and "KEY=VALUE" in refused.stderr

    usage = CliRunner().invoke(app, ["cost", "--help"])  # the estimate's own options, not an empty typer page
    assert usage.exit_code == 0 and "--workload KEY=VALUE" in usage.stdout and "--cdk-json" in usage.stdout


def test_the_stacks_deploy_the_schema_quarry_cost_prices() -> None:
    import stacks.config

    assert stacks.config.DeployConfig is DeployConfig and stacks.config.load_config is load_config


def test_a_gradual_rollout_adds_its_rollback_alarms_and_codedeploy_is_free() -> None:
    base = estimate(DeployConfig())
    assert not [i for i in base.idle if i.component == "rollout"]
    for strategy in ("canary", "linear"):
        est = estimate(load_config({"rollout": {"strategy": strategy, "percent": 25, "interval_minutes": 3}}))
        assert _item(est.idle, "alarms").usd == pytest.approx(
            _item(base.idle, "alarms").usd + 3 * PRICES["cw_alarm_month"]
        )
        codedeploy = _item(est.idle, "CodeDeploy")
        assert codedeploy.usd == 0 and "free" in codedeploy.note
        assert f"{strategy} 25% / 3 min, 3 functions" in codedeploy.item
        added = Estimate.total(est.idle) - Estimate.total(base.idle)
        assert added == pytest.approx(3 * PRICES["cw_alarm_month"], abs=0.01)


def _bound(est: Estimate, name: str) -> Bound:
    [found] = [b for b in est.chat_bounds if b.name == name]
    return found


def test_the_chat_concurrency_cap_bounds_what_chat_can_spend() -> None:
    work = Workload(chat_worker_seconds=6.0)
    est = estimate(load_config({"spend": {"chat_max_concurrency": 20}}), work)
    cap = _bound(est, "chat concurrency")
    assert "at most 20 chats" in cap.limit
    hourly = 20 * 3600 / 6.0 / 1000 * Estimate.total(est.per_1000_chats)  # every worker busy all hour
    assert cap.usd_per_day == pytest.approx(24 * hourly)
    assert cap.usd_per_month == pytest.approx(HOURS_PER_MONTH * hourly)
    halved = _bound(estimate(load_config({"spend": {"chat_max_concurrency": 10}}), work), "chat concurrency")
    assert cap.usd_per_day is not None and halved.usd_per_day == pytest.approx(cap.usd_per_day / 2)


def test_the_daily_token_budget_caps_each_users_model_spend() -> None:
    model = "amazon.nova-pro-v1:0"
    config = load_config({"bedrock": {"chat_model_ids": [model]}, "spend": {"daily_token_budget_per_user": 200_000}})
    budget = _bound(estimate(config), "token budget")
    price_in, price_out = TOKEN_PRICES_1K[model]
    assert budget.usd_per_day == pytest.approx(200 * max(price_in, price_out))  # every token at the dearer price
    assert budget.usd_per_month == pytest.approx(200 * max(price_in, price_out) * HOURS_PER_MONTH / 24)
    assert "200,000 tokens per user per day" in budget.limit and model in budget.note
    # what the default budget lets one user spend on the default model
    default = _bound(estimate(DeployConfig()), "token budget")
    assert default.usd_per_day == pytest.approx(500 * max(TOKEN_PRICES_1K["amazon.nova-lite-v1:0"]))

    unbounded = _bound(estimate(load_config({"spend": {"daily_token_budget_per_user": None}})), "token budget")
    assert unbounded.usd_per_day is None and "unbounded" in unbounded.note
    hourly = _bound(estimate(load_config({"sagemaker": {"llm_endpoint": True}})), "token budget")
    assert hourly.usd_per_day is None and "by the hour" in hourly.note  # a SageMaker LLM has no token price


def test_the_bounds_are_printed_and_in_the_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--cdk-json", str(tmp_path / "none.json"), "--json"]) == 0
    bounds = json.loads(capsys.readouterr().out)["per_1000_chats"]["bounds"]
    assert [b["name"] for b in bounds] == ["chat concurrency", "token budget"]
    assert all(b["usd_per_day"] > 0 for b in bounds)
    assert main(["--cdk-json", str(tmp_path / "none.json")]) == 0
    table = capsys.readouterr().out
    chats = table.split("Per 1,000 chats")[1].split("Per 1,000 documents")[0]
    assert "bounded by:" in chats and "spend.chat_max_concurrency" in chats and "spend.daily_token_budget" in chats
