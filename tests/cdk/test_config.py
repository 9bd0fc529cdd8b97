"""DeployConfig: defaults are the cheap configuration; inconsistent settings fail with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quarry.errors import InvalidInput
from stacks.config import DeployConfig, load_config

pytestmark = pytest.mark.cdk


def test_defaults_are_cheap_at_idle() -> None:
    config = DeployConfig()
    assert config.aurora.enabled and config.aurora.min_capacity == 0
    assert not config.opensearch.enabled
    assert not (config.sagemaker.embedding_endpoint or config.sagemaker.llm_endpoint)
    assert config.bedrock.enabled
    assert config.aurora.access == "data_api" and not config.lambdas_in_vpc
    assert config.nat_kind == "none"  # nothing private needs the internet
    assert not config.network.interface_endpoints
    assert (config.vector_index, config.embedder, config.chat_model) == ("pgvector", "bedrock", "bedrock")


def test_default_chat_model_needs_no_use_case_form() -> None:
    # Anthropic models need a one-time use-case form per account; Amazon Nova is on demand without one.
    assert DeployConfig().bedrock.chat_model_ids == ("amazon.nova-lite-v1:0",)


def test_processing_timeout_covers_every_job_attempt_and_the_start_margin() -> None:
    assert DeployConfig().ingestion.processing_timeout_seconds == (60 * 2 + 30) * 60
    ing = load_config({"ingestion": {"job_timeout_minutes": 120, "job_attempts": 3, "start_margin_minutes": 45}})
    assert ing.ingestion.processing_timeout_seconds == (120 * 3 + 45) * 60


def test_vpc_mode_needs_a_nat() -> None:
    config = load_config({"aurora": {"access": "vpc"}})
    assert config.lambdas_in_vpc
    assert config.nat_kind == "instance"  # psycopg Lambdas in the VPC push to WebSockets


def test_context_and_file_merge(tmp_path: Path) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text("[opensearch]\nenabled = true\n[aurora]\nmax_capacity = 8\n")
    config = load_config({"prefix": "demo", "aurora": {"min_capacity": 0.5}}, path)
    assert config.prefix == "demo"
    assert config.opensearch.enabled
    assert (config.aurora.min_capacity, config.aurora.max_capacity) == (0.5, 8)


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "deploy.json"
    path.write_text(json.dumps({"sagemaker": {"llm_endpoint": True}}))
    assert load_config(None, path).chat_model == "sagemaker"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"aurora": {"enabled": False}}, "at least one vector store"),
        ({"aurora": {"min_capacity": 8, "max_capacity": 4}}, "min_capacity"),
        ({"default_vector_index": "opensearch"}, "opensearch is disabled"),
        ({"aurora": {"access": "vpc"}, "network": {"nat": "none"}}, "needs a NAT"),
        ({"bedrock": {"enabled": False}}, "SageMaker endpoints"),
        ({"bedrock": {"chat_model_ids": []}}, "chat_model_ids needs at least one"),
        ({"prefix": "Bad Prefix"}, "prefix"),
        ({"no_such_key": 1}, "no_such_key"),
    ],
)
def test_invalid_configs_raise_typed_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_config(data)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_config(None, tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidInput, match="not valid json"):
        load_config(None, bad)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(InvalidInput, match="mapping"):
        load_config(None, listing)
