"""`quarry smoke` against a deployment: stack outputs from CloudFormation and a temporary Cognito user, on moto.

moto's Cognito runs ADMIN_USER_PASSWORD_AUTH and issues RS256 ID tokens, so the real flow runs here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from quarry.cli import app
from quarry.deployment.smoke import SmokeOptions, run_smoke
from quarry.deployment.smoke_client import SmokeFailure
from quarry.deployment.smoke_target import CognitoTarget, StackOutputs, StackTarget, read_stack_outputs
from tests.aws_env import isolate_from_real_aws
from tests.platform_fixtures import free_port

pytestmark = pytest.mark.aws

REGION = "eu-west-1"
STACK = "QuarrySmokeTest"


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach real AWS, whatever the developer's shell has set."""
    isolate_from_real_aws(monkeypatch, region=REGION)


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def pool(session: boto3.Session) -> dict[str, str]:
    """A pool shaped like stacks/auth.py's: e-mail as the user name, strong passwords, SRP + admin flows."""
    cognito = session.client("cognito-idp")
    pool_id = cognito.create_user_pool(
        PoolName="quarry-users",
        UsernameAttributes=["email"],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 12,
                "RequireLowercase": True,
                "RequireUppercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
            }
        },
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="quarry-web",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return {"pool_id": pool_id, "client_id": client_id}


def _deploy_stack(session: boto3.Session, outputs: dict[str, str], name: str = STACK) -> None:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def _stack_outputs(
    pool: dict[str, str], api_url: str = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/"
) -> dict[str, str]:
    return {
        "AppUrl": "https://d111.cloudfront.net",
        "RestApiUrl": api_url,
        "WebSocketUrl": "wss://def.execute-api.eu-west-1.amazonaws.com/prod",
        "UserPoolId": pool["pool_id"],
        "UserPoolClientId": pool["client_id"],
    }


def _users(session: boto3.Session, pool: dict[str, str]) -> list[dict[str, Any]]:
    return list(session.client("cognito-idp").list_users(UserPoolId=pool["pool_id"])["Users"])


def _target(session: boto3.Session) -> StackTarget:
    return StackTarget(STACK, cloudformation=session.client("cloudformation"), cognito=session.client("cognito-idp"))


def test_signing_in_reads_the_outputs_and_signs_in_a_temporary_user_that_signing_out_deletes(
    session: boto3.Session, pool: dict[str, str]
) -> None:
    _deploy_stack(session, _stack_outputs(pool))
    target = _target(session)

    endpoints = target.sign_in()

    assert endpoints.api_url == "https://abc.execute-api.eu-west-1.amazonaws.com/prod/"
    assert endpoints.ws_url == "wss://def.execute-api.eu-west-1.amazonaws.com/prod"
    # The ID token, for this client: what the REST Cognito authorizer and the WebSocket authorizer accept.
    claims = jwt.decode(endpoints.token, options={"verify_signature": False})
    assert claims["token_use"] == "id" and claims["aud"] == pool["client_id"]
    assert claims["iss"].endswith(pool["pool_id"])
    (user,) = _users(session, pool)
    assert user["UserStatus"] == "CONFIRMED"  # a permanent password: no NEW_PASSWORD_REQUIRED challenge
    email = next(a["Value"] for a in user["Attributes"] if a["Name"] == "email")
    assert email.startswith("quarry-smoke-") and email in endpoints.identity
    assert claims["sub"] == user["Username"]

    assert target.sign_out() == f"deleted Cognito user {user['Username']}"
    assert _users(session, pool) == []
    assert target.sign_out() is None  # nothing left to undo


def test_a_failed_sign_in_still_deletes_the_user_it_created(session: boto3.Session, pool: dict[str, str]) -> None:
    outputs = StackOutputs(
        api_url="https://abc.example/prod/",
        ws_url="wss://def.example/prod",
        user_pool_id=pool["pool_id"],
        client_id="no-such-client",
    )
    target = CognitoTarget(outputs, session.client("cognito-idp"))

    with pytest.raises(SmokeFailure, match=r"could not sign it in .*ResourceNotFound.*fix: check the stack outputs"):
        target.sign_in()
    assert len(_users(session, pool)) == 1
    assert target.sign_out() is not None
    assert _users(session, pool) == []


def test_a_missing_stack_or_output_is_named(session: boto3.Session, pool: dict[str, str]) -> None:
    cloudformation = session.client("cloudformation")
    with pytest.raises(SmokeFailure, match=rf"no stack 'Nope' in {REGION}: deploy it"):
        read_stack_outputs("Nope", cloudformation)

    partial = _stack_outputs(pool)
    del partial["WebSocketUrl"], partial["UserPoolClientId"]
    _deploy_stack(session, partial, name="Partial")
    with pytest.raises(SmokeFailure, match=r"has no output WebSocketUrl, UserPoolClientId"):
        read_stack_outputs("Partial", cloudformation)


def test_a_run_that_fails_after_signing_in_deletes_its_temporary_user(
    session: boto3.Session, pool: dict[str, str]
) -> None:
    """The stack's API is unreachable: the run stops at the first REST call, and the user is gone anyway."""
    _deploy_stack(session, _stack_outputs(pool, api_url=f"http://127.0.0.1:{free_port()}/prod/"))

    report = run_smoke(_target(session), SmokeOptions(timeout_seconds=5))

    assert [(s.name, s.ok) for s in report.steps] == [
        ("sign in", True),
        ("create workspace", False),
        ("sign out", True),
    ]
    assert report.failure is not None and "POST" in report.failure.detail and "ConnectError" in report.failure.detail
    assert not report.ok
    assert _users(session, pool) == []


def test_the_cli_reads_the_stack_and_exits_non_zero_with_the_failing_step(
    session: boto3.Session, pool: dict[str, str]
) -> None:
    _deploy_stack(session, _stack_outputs(pool, api_url=f"http://127.0.0.1:{free_port()}/prod/"))

    result = CliRunner().invoke(app, ["smoke", "--stack", STACK, "--region", REGION, "--json"])

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["target"] == f"stack {STACK} in {REGION}" and report["failed_step"] == "create workspace"
    assert report["identity"].startswith("temporary Cognito user quarry-smoke-")
    assert [s["name"] for s in report["steps"]] == ["sign in", "create workspace", "sign out"]
    assert _users(session, pool) == []


def test_the_cli_names_what_is_missing(session: boto3.Session) -> None:
    runner = CliRunner()
    neither = runner.invoke(app, ["smoke"])
    assert neither.exit_code == 2 and "--url URL" in neither.output and "--stack NAME" in neither.output
    both = runner.invoke(app, ["smoke", "--url", "http://127.0.0.1:1", "--stack", STACK])
    assert both.exit_code == 2 and "got --url, --stack" in both.output
    partial = runner.invoke(app, ["smoke", "--api-url", "https://a/prod/", "--ws-url", "wss://b/prod"])
    assert partial.exit_code == 2 and "missing --user-pool-id, --client-id" in partial.output
    missing_stack = runner.invoke(app, ["smoke", "--stack", "Nope", "--region", REGION])
    assert missing_stack.exit_code == 1 and "no stack 'Nope'" in missing_stack.output
