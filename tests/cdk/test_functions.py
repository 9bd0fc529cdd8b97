"""Lambda functions: one per handler folder, python3.12 x86_64 with the shared layer, Powertools and
QUARRY_* settings; only the Postgres users are in the VPC."""

from __future__ import annotations

import pytest

from stacks.functions import FUNCTIONS
from tests.cdk.cdk_synth import ROOT, Synth, function

pytestmark = pytest.mark.cdk

POSTGRES_USERS = {"rest_api", "chat_worker", "ingest_status", "workspace_setup"}


def test_every_handler_is_deployed_the_same_way(any_synth: Synth) -> None:
    for name in FUNCTIONS:
        assert (ROOT / "lambdas" / name / "handler.py").is_file()
        props = function(any_synth, name)["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["x86_64"]
        assert props["Handler"] == "handler.handler"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == f"quarry-{name}"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Quarry"
        assert env["QUARRY_RUNTIME"] == "aws"
        assert env["QUARRY_CATALOG"] == "dynamodb"
        assert "LoggingConfig" in props  # its own log group


def test_no_function_reserves_concurrency(any_synth: Synth) -> None:
    """A new account's Lambda quota is 10 concurrent executions and 10 must stay unreserved: any reservation
    fails the deploy (and rolls the stack back)."""
    functions = any_synth.resources("AWS::Lambda::Function")
    assert functions
    for logical, fn in functions.items():
        assert "ReservedConcurrentExecutions" not in fn["Properties"], logical


def test_log_groups_have_retention(any_synth: Synth) -> None:
    groups = any_synth.resources("AWS::Logs::LogGroup")
    assert groups
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


def test_only_postgres_users_are_in_the_vpc_and_only_in_vpc_mode(default_synth: Synth, full_synth: Synth) -> None:
    for synth, in_vpc_mode in ((default_synth, False), (full_synth, True)):
        for name in FUNCTIONS:
            in_vpc = "VpcConfig" in function(synth, name)["Properties"]
            assert in_vpc == (in_vpc_mode and name in POSTGRES_USERS), name
            env = function(synth, name)["Properties"]["Environment"]["Variables"]
            assert ("QUARRY_PG_SECRET_ARN" in env) == (name in POSTGRES_USERS), name


def test_workflow_arns_reach_the_starters(default_synth: Synth) -> None:
    for name in ("rest_api", "ingest_trigger"):
        env = function(default_synth, name)["Properties"]["Environment"]["Variables"]
        assert "QUARRY_INGEST_STATE_MACHINE_ARN" in env and "QUARRY_DELETE_STATE_MACHINE_ARN" in env
    status_env = function(default_synth, "ingest_status")["Properties"]["Environment"]["Variables"]
    assert "QUARRY_INGEST_STATE_MACHINE_ARN" not in status_env  # the machine invokes it: no cycle


def test_full_config_points_the_runtime_at_the_optional_services(full_synth: Synth) -> None:
    env = function(full_synth, "chat_worker")["Properties"]["Environment"]["Variables"]
    assert env["QUARRY_CHAT_MODEL"] == "sagemaker" and env["QUARRY_EMBEDDER"] == "sagemaker"
    assert env["QUARRY_SAGEMAKER_LLM_ENDPOINT"] == "quarry-llm"
    assert env["QUARRY_SAGEMAKER_EMBEDDING_ENDPOINT"] == "quarry-embedding"
    assert env["QUARRY_OPENSEARCH_SERVERLESS"] == "true" and "QUARRY_OPENSEARCH_ENDPOINT" in env
