"""`quarry config`: the file it writes is the configuration chosen, validated, minimal and priced on the way."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from quarry.cli import app
from quarry.deployment.config import DeployConfig, load_config
from quarry.deployment.cost import estimate
from quarry.deployment.wizard import changes, configure, parse_setting, render, totals, write

NOVA_LITE = "amazon.nova-lite-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"


def _run(tmp_path: Path, *args: str, input: str | None = None, context: dict | None = None) -> Result:
    """`quarry config` with a cdk.json (default: none, so the baseline is DeployConfig's defaults)."""
    cdk_json = tmp_path / "cdk.json"
    if context is not None:
        cdk_json.write_text(json.dumps({"context": {"quarry": context}}))
    return CliRunner().invoke(app, ["config", "--cdk-json", str(cdk_json), *args], input=input)


def _idle_figures(output: str) -> list[float]:
    return [float(v.replace(",", "")) for v in re.findall(r"estimate: \$([\d,.]+)/month idle", output)]


# ---------------------------------------------------------------------------------------------- flags


def test_flags_write_a_minimal_file_that_load_config_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "deploy.toml"
    result = _run(
        tmp_path,
        "--set",
        "opensearch.enabled=true",
        "--set",
        f'bedrock.chat_model_ids=["{NOVA_PRO}", "{NOVA_LITE}"]',
        "--set",
        "region=eu-west-1",
        "--out",
        str(out),
        "--yes",
    )
    assert result.exit_code == 0, result.output
    expected = DeployConfig.model_validate(
        {"opensearch": {"enabled": True}, "bedrock": {"chat_model_ids": [NOVA_PRO, NOVA_LITE]}, "region": "eu-west-1"}
    )
    assert load_config(None, out) == expected
    text = out.read_text()
    assert tomllib.loads(text) == {
        "region": "eu-west-1",
        "opensearch": {"enabled": True},
        "bedrock": {"chat_model_ids": [NOVA_PRO, NOVA_LITE]},
    }
    assert f"quarry deploy --config {out.name}" in text.splitlines()[2]  # the header says how to use it
    idle = totals(estimate(expected)).idle
    assert f"Idle (per month): {idle:,.2f}" in result.output


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("opensearch.enabld=true", "did you mean opensearch.enabled"),
        ("spend.chat_max_concurrency=many", "spend.chat_max_concurrency"),
        ("spend.chat_max_concurrency=1", "spend.chat_max_concurrency"),
        ("rollout.strategy=blue_green", "rollout.strategy"),
        ("aurora.enabled=false", "at least one vector store"),
        ("prefix.name=x", "prefix is a value, not a section"),
        ("opensearch.enabled", "KEY=VALUE"),
    ],
)
def test_an_invalid_setting_names_the_field_and_writes_nothing(tmp_path: Path, setting: str, named: str) -> None:
    result = _run(tmp_path, "--set", setting, "--out", str(tmp_path / "deploy.toml"), "--yes")
    assert result.exit_code == 2
    assert named in result.output
    assert not list(tmp_path.glob("*.toml"))


def test_the_file_is_what_cdk_json_lacks(tmp_path: Path) -> None:
    """Only differences from the cdk.json context are written; a choice equal to a default it overrides is kept."""
    context = {"prefix": "teamrag", "waf": {"enabled": True}}
    out = tmp_path / "deploy.toml"
    result = _run(
        tmp_path, "--set", "region=eu-west-1", "--set", "waf.enabled=false", "--out", str(out), context=context
    )
    assert result.exit_code == 0, result.output
    assert tomllib.loads(out.read_text()) == {"region": "eu-west-1", "waf": {"enabled": False}}
    chosen = load_config(context, out)
    assert (chosen.prefix, chosen.region, chosen.waf.enabled) == ("teamrag", "eu-west-1", False)


def test_a_null_is_refused_for_toml_and_written_to_json(tmp_path: Path) -> None:
    no_budget = "spend.daily_token_budget_per_user=null"
    refused = _run(tmp_path, "--set", no_budget, "--out", str(tmp_path / "deploy.toml"))
    assert refused.exit_code == 2
    assert "spend.daily_token_budget_per_user" in refused.output and ".json" in refused.output
    assert not (tmp_path / "deploy.toml").exists()

    out = tmp_path / "deploy.json"
    assert _run(tmp_path, "--set", no_budget, "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text()) == {"spend": {"daily_token_budget_per_user": None}}
    assert load_config(None, out).spend.daily_token_budget_per_user is None


def test_yaml_is_written_with_its_header(tmp_path: Path) -> None:
    out = tmp_path / "deploy.yaml"
    result = _run(tmp_path, "--set", "rollout.strategy=linear", "--set", "monitoring.dashboard=true", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Quarry deploy configuration")
    chosen = load_config(None, out)
    assert (chosen.rollout.strategy, chosen.monitoring.dashboard) == ("linear", True)


def test_an_existing_file_is_overwritten_only_with_yes(tmp_path: Path) -> None:
    out = tmp_path / "deploy.toml"
    out.write_text('prefix = "mine"\n')
    refused = _run(tmp_path, "--set", "region=eu-west-1", "--out", str(out), "--non-interactive")
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert out.read_text() == 'prefix = "mine"\n'


def test_from_keeps_the_existing_values(tmp_path: Path) -> None:
    existing = tmp_path / "deploy.toml"
    existing.write_text('prefix = "myrag"\n[waf]\nenabled = true\nrate_limit_per_5_minutes = 300\n')
    result = _run(tmp_path, "--from", str(existing), "--set", "spend.chat_max_concurrency=4", "--yes")
    assert result.exit_code == 0, result.output
    chosen = load_config(None, existing)  # --out defaults to the --from file
    assert chosen.prefix == "myrag"
    assert (chosen.waf.enabled, chosen.waf.rate_limit_per_5_minutes) == (True, 300)
    assert chosen.spend.chat_max_concurrency == 4


# ---------------------------------------------------------------------------------------------- interactive

# One answer per question, in the order asked (an empty answer keeps the value in brackets).
_ANSWERS = [
    "myrag",  # prefix
    "",  # stack name
    "eu-west-1",  # region
    "destroy",  # removal
    "opensearch",  # vector store
    f"{NOVA_PRO}, {NOVA_LITE}",  # chat models
    "",  # SageMaker endpoints: off
    "yes",  # crawler
    "ops@example.com",  # alarm e-mail
    "no",  # dashboard
    "5",  # chat concurrency cap
    "200000",  # daily token budget
    "canary",  # rollout
    "20",  # percent (asked because canary)
    "10",  # minutes
    "yes",  # WAF
    "",  # rate limit (asked because WAF is on)
    "no",  # WAF on CloudFront
    "y",  # write it
]


def test_interactive_answers_produce_the_file_and_show_each_choice_priced(tmp_path: Path) -> None:
    out = tmp_path / "deploy.toml"
    result = _run(tmp_path, "--interactive", "--out", str(out), input="\n".join(_ANSWERS) + "\n")
    assert result.exit_code == 0, result.output
    expected = DeployConfig.model_validate(
        {
            "prefix": "myrag",
            "region": "eu-west-1",
            "removal": "destroy",
            "aurora": {"enabled": False},
            "opensearch": {"enabled": True},
            "bedrock": {"chat_model_ids": [NOVA_PRO, NOVA_LITE]},
            "ingestion": {"crawler": True},
            "monitoring": {"alarm_email": "ops@example.com"},
            "spend": {"chat_max_concurrency": 5, "daily_token_budget_per_user": 200_000},
            "rollout": {"strategy": "canary", "percent": 20, "interval_minutes": 10},
            "waf": {"enabled": True, "cloudfront": False},
        }
    )
    assert load_config(None, out) == expected
    assert "Write " in result.output and out.read_text() in result.output  # shown before it was written

    idle = _idle_figures(result.output)
    default_idle = totals(estimate(DeployConfig())).idle
    assert idle[0] == default_idle  # before the first question
    assert idle[4] == default_idle  # unchanged by prefix, stack name, region and removal
    opensearch_only = [parse_setting("opensearch.enabled=true"), parse_setting("aurora.enabled=false")]
    assert idle[5] == totals(estimate(configure(DeployConfig(), opensearch_only))).idle  # after the vector store
    assert idle[5] > default_idle + 100  # OpenSearch's OCUs show up at once
    assert "/month idle (+" in result.output.split("Vector store")[1].split("\n\n")[0]  # shown as a change


def test_interactive_reasks_a_rejected_answer(tmp_path: Path) -> None:
    out = tmp_path / "deploy.toml"
    answers = ["Bad_Prefix", "myrag", *[""] * 13, "y"]  # then the 13 other questions
    result = _run(tmp_path, "--interactive", "--out", str(out), input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "prefix" in result.output.split("Bad_Prefix")[1]  # the error names the field
    assert tomllib.loads(out.read_text()) == {"prefix": "myrag"}


def test_interactive_from_a_file_offers_its_values_and_keeps_them(tmp_path: Path) -> None:
    existing = tmp_path / "deploy.toml"
    existing.write_text('prefix = "myrag"\n[opensearch]\nenabled = true\n[rollout]\nstrategy = "linear"\n')
    before = load_config(None, existing)
    answers = [""] * 16 + ["y"]  # 14 questions + percent and minutes (linear); Enter everywhere
    result = _run(tmp_path, "--interactive", "--from", str(existing), input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "Prefix [myrag]" in result.output
    assert "Vector store (pgvector-data-api/pgvector-vpc/opensearch/both) [both]" in result.output
    assert load_config(None, existing) == before


def test_declining_to_write_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "deploy.toml"
    result = _run(tmp_path, "--interactive", "--out", str(out), input="\n" * 14 + "n\n")
    assert result.exit_code == 0, result.output
    assert "not written" in result.output
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- core


def test_an_endpoint_section_is_written_whole_so_it_validates(tmp_path: Path) -> None:
    chosen = configure(DeployConfig(), [parse_setting("sagemaker.llm.instance_type=ml.g6.xlarge")])
    written = changes(chosen, DeployConfig())
    assert set(written["sagemaker"]["llm"]) >= {"instance_type", "image_uri"}  # image_uri has no default
    out = tmp_path / "deploy.toml"
    write(out, render(written, out), chosen, {})
    assert load_config(None, out) == chosen


def test_write_refuses_text_that_does_not_read_back(tmp_path: Path) -> None:
    out = tmp_path / "deploy.toml"
    chosen = configure(DeployConfig(), [parse_setting("region=eu-west-1")])
    with pytest.raises(Exception, match="read back"):
        write(out, 'region = "us-west-2"\n', chosen, {})
    assert list(tmp_path.iterdir()) == []
