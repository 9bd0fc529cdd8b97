"""Preflight checks, each against the AWS boundary it reads (moto; Stubber for Bedrock's control plane) and
real executables on a controlled PATH: the failure, its message and its fix."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from quarry.deployment.config import DeployConfig
from quarry.deployment.preflight import AwsClients, CheckResult, Preflight, Status, bedrock_model_ids, run_preflight
from tests.deployment.deploy_fixtures import (
    ACCOUNT,
    answering_engine,
    availability,
    aws_fixture,  # noqa: F401  (the `aws` fixture)
    bootstrap,
    clean_env,
    executable,
    stub_bedrock,
)

pytestmark = pytest.mark.aws


def _preflight(
    session: boto3.Session, tmp_path: Path, config: DeployConfig | None = None, *, max_monthly: float | None = None
) -> Preflight:
    """A preflight on the fake account with an empty ``PATH`` folder (tests put engines in it)."""
    config = config or DeployConfig()
    clients = AwsClients(config.region, session=session)
    return Preflight(config=config, clients=clients, env=clean_env(str(tmp_path / "bin")), max_monthly=max_monthly)


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_credentials_name_the_account_and_region(aws: boto3.Session, tmp_path: Path) -> None:
    ctx = _preflight(aws, tmp_path)
    [result] = run_preflight(ctx, only=["credentials"])
    assert result.status is Status.OK and ACCOUNT in result.message and "us-east-1" in result.message
    assert ctx.account == ACCOUNT


def test_an_account_in_the_config_must_be_the_callers(aws: boto3.Session, tmp_path: Path) -> None:
    ctx = _preflight(aws, tmp_path, DeployConfig(account="999999999999"))
    [result] = run_preflight(ctx, only=["credentials"])
    assert result.status is Status.FAILED
    assert "999999999999" in result.message and ACCOUNT in result.message
    assert result.fix and f'account = "{ACCOUNT}"' in result.fix


def test_an_unknown_region_is_named(aws: boto3.Session, tmp_path: Path) -> None:
    [result] = run_preflight(_preflight(aws, tmp_path, DeployConfig(region="us-nowhere-9")), only=["credentials"])
    assert result.status is Status.FAILED and "'us-nowhere-9' is not an AWS region" in result.message


def test_missing_bootstrap_stops_with_the_bootstrap_command(aws: boto3.Session, tmp_path: Path) -> None:
    results = run_preflight(_preflight(aws, tmp_path))
    assert [r.name for r in results] == ["credentials", "bootstrap"]  # stopped at the first failure
    failure = results[-1]
    assert failure.status is Status.FAILED and "/cdk-bootstrap/hnb659fds/version" in failure.message
    assert failure.fix and f"cdk bootstrap aws://{ACCOUNT}/us-east-1" in failure.fix


def test_an_old_bootstrap_is_refused(aws: boto3.Session, tmp_path: Path) -> None:
    bootstrap(aws, "us-east-1", version="5")
    result = _by_name(run_preflight(_preflight(aws, tmp_path)))["bootstrap"]
    assert result.status is Status.FAILED and "version 5" in result.message and "needs 6" in result.message


def test_a_toolkit_stack_without_the_parameter_is_mentioned(aws: boto3.Session, tmp_path: Path) -> None:
    aws.client("cloudformation").create_stack(
        StackName="CDKToolkit",
        TemplateBody='{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}',
    )
    result = _by_name(run_preflight(_preflight(aws, tmp_path)))["bootstrap"]
    assert result.status is Status.FAILED and "a CDKToolkit stack exists" in result.message


def test_no_container_engine_on_path(aws: boto3.Session, tmp_path: Path) -> None:
    bootstrap(aws, "us-east-1")
    results = run_preflight(_preflight(aws, tmp_path))
    assert [r.status for r in results] == [Status.OK, Status.OK, Status.FAILED]
    assert "none of docker, finch, podman is on PATH" in results[-1].message
    assert results[-1].fix and "CDK_DOCKER" in results[-1].fix


def test_an_engine_whose_daemon_is_down(aws: boto3.Session, tmp_path: Path) -> None:
    bootstrap(aws, "us-east-1")
    executable(tmp_path / "bin", "podman", 'echo "Cannot connect to Podman socket" >&2\nexit 125\n')
    result = _by_name(run_preflight(_preflight(aws, tmp_path)))["container"]
    assert result.status is Status.FAILED
    assert "daemon does not answer" in result.message and "Cannot connect to Podman socket" in result.message
    assert result.fix and "podman machine start" in result.fix


def test_cdk_docker_names_the_engine(aws: boto3.Session, tmp_path: Path) -> None:
    answering_engine(tmp_path / "bin", "docker")
    finch = answering_engine(tmp_path / "bin", "finch")
    ctx = _preflight(aws, tmp_path)
    ctx.env = {**ctx.env, "CDK_DOCKER": "finch"}
    [result] = run_preflight(ctx, only=["container"])
    assert result.status is Status.OK and ctx.container_engine == str(finch)


def test_every_configured_bedrock_model_is_checked(aws: boto3.Session, tmp_path: Path) -> None:
    bootstrap(aws, "us-east-1")
    answering_engine(tmp_path / "bin")
    config = DeployConfig.model_validate(
        {"bedrock": {"chat_model_ids": ["us.amazon.nova-pro-v1:0"], "rerank_model_id": "cohere.rerank-v3-5:0"}}
    )
    assert bedrock_model_ids(config) == [
        "us.amazon.nova-pro-v1:0",
        "amazon.titan-embed-text-v2:0",
        "cohere.rerank-v3-5:0",
    ]
    ctx = _preflight(aws, tmp_path, config)
    stubber = stub_bedrock(  # the inference profile is checked as the model behind it
        ctx.clients,
        [
            availability("amazon.nova-pro-v1:0"),
            availability("amazon.titan-embed-text-v2:0"),
            availability("cohere.rerank-v3-5:0"),
        ],
    )
    results = _by_name(run_preflight(ctx))
    assert results["bedrock"].status is Status.OK
    assert results["cost"].status is Status.OK and "per 1,000 chats" in results["cost"].message
    stubber.assert_no_pending_responses()


def test_a_model_without_access_is_named(aws: boto3.Session, tmp_path: Path) -> None:
    bootstrap(aws, "us-east-1")
    answering_engine(tmp_path / "bin")
    config = DeployConfig.model_validate(
        {"bedrock": {"chat_model_ids": ["amazon.nova-lite-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"]}}
    )
    ctx = _preflight(aws, tmp_path, config)
    stub_bedrock(
        ctx.clients,
        [
            availability("amazon.nova-lite-v1:0"),
            availability("anthropic.claude-3-haiku-20240307-v1:0", authorized=False),
            availability("amazon.titan-embed-text-v2:0"),
        ],
    )
    results = run_preflight(ctx)
    failure = results[-1]
    assert failure.name == "bedrock" and failure.status is Status.FAILED
    assert "anthropic.claude-3-haiku-20240307-v1:0: no access" in failure.message
    assert "nova-lite" not in failure.message
    assert failure.fix and "#/modelaccess" in failure.fix


def test_bedrock_disabled_is_skipped(aws: boto3.Session, tmp_path: Path) -> None:
    config = DeployConfig.model_validate(
        {"bedrock": {"enabled": False}, "sagemaker": {"embedding_endpoint": True, "llm_endpoint": True}}
    )
    ctx = _preflight(aws, tmp_path, config)
    results = _by_name(run_preflight(ctx, only=["credentials", "bedrock"]))
    assert results["bedrock"].status is Status.SKIPPED


def test_the_idle_estimate_over_the_ceiling_fails(aws: boto3.Session, tmp_path: Path) -> None:
    [result] = run_preflight(_preflight(aws, tmp_path, max_monthly=1.0), only=["cost"])
    assert result.status is Status.FAILED and "over --max-monthly $1.00" in result.message
    [result] = run_preflight(_preflight(aws, tmp_path, max_monthly=100.0), only=["cost"])
    assert result.status is Status.OK


def test_report_mode_runs_every_check(aws: boto3.Session, tmp_path: Path) -> None:
    results = run_preflight(_preflight(aws, tmp_path, max_monthly=1.0), report_all=True, skip=["bedrock"])
    assert [(r.name, r.status) for r in results] == [
        ("credentials", Status.OK),
        ("bootstrap", Status.FAILED),
        ("container", Status.FAILED),
        ("bedrock", Status.SKIPPED),
        ("cost", Status.FAILED),
    ]


def test_an_edge_stack_needs_us_east_1_bootstrapped_too(aws: boto3.Session, tmp_path: Path) -> None:
    """Outside us-east-1 the UI's web ACL deploys in a us-east-1 stack: both regions must be bootstrapped."""
    config = DeployConfig(region="eu-west-1", waf={"enabled": True})
    bootstrap(aws, "eu-west-1")
    result = _by_name(run_preflight(_preflight(aws, tmp_path, config), only=["credentials", "bootstrap"]))["bootstrap"]
    assert result.status is Status.FAILED
    assert f"aws://{ACCOUNT}/us-east-1 (the edge stack QuarryEdge deploys there)" in result.message
    assert result.fix and f"cdk bootstrap aws://{ACCOUNT}/us-east-1" in result.fix

    bootstrap(aws, "us-east-1")
    result = _by_name(run_preflight(_preflight(aws, tmp_path, config), only=["credentials", "bootstrap"]))["bootstrap"]
    assert result.status is Status.OK and "eu-west-1" in result.message and "us-east-1" in result.message

    without_ui_acl = DeployConfig(region="eu-west-1", waf={"enabled": True, "cloudfront": False})
    aws.client("ssm", region_name="us-east-1").delete_parameter(Name="/cdk-bootstrap/hnb659fds/version")
    result = _by_name(run_preflight(_preflight(aws, tmp_path, without_ui_acl), only=["credentials", "bootstrap"]))
    assert result["bootstrap"].status is Status.OK  # no edge stack, so us-east-1 is not needed
