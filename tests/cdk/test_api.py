"""API: REST with a Cognito authorizer, request models from quarry.protocol, throttling and access logs;
WebSocket with a Lambda authorizer on $connect."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.api import BODY_ROUTES, PUBLIC_ROUTES
from stacks.api_schemas import request_schema
from tests.cdk.cdk_synth import ROOT, Synth, actions, flatten, logical_id, policy_statements

pytestmark = pytest.mark.cdk


def test_every_method_but_public_ones_needs_cognito(default_synth: Synth) -> None:
    methods = default_synth.resources("AWS::ApiGateway::Method")
    public = [m for m in methods.values() if m["Properties"]["AuthorizationType"] == "NONE"]
    assert len(public) == len(PUBLIC_ROUTES)
    assert all(m["Properties"]["HttpMethod"] == "GET" for m in public)
    others = [m for m in methods.values() if m["Properties"]["AuthorizationType"] != "NONE"]
    assert all(m["Properties"]["AuthorizationType"] == "COGNITO_USER_POOLS" for m in others)
    assert all("RequestValidatorId" in m["Properties"] for m in others)
    default_synth.template.has_resource_properties("AWS::ApiGateway::Authorizer", {"Type": "COGNITO_USER_POOLS"})


def test_body_routes_are_validated_against_the_protocol_models(default_synth: Synth) -> None:
    models = {
        m["Properties"]["Name"]: m["Properties"] for m in default_synth.resources("AWS::ApiGateway::Model").values()
    }
    for model in BODY_ROUTES.values():
        assert models[model.__name__]["Schema"] == request_schema(model)
        assert models[model.__name__]["Schema"]["$schema"].startswith("http://json-schema.org/draft-04")
    posts = [
        m
        for m in default_synth.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
    ]
    assert len(posts) == len(BODY_ROUTES)
    assert all("application/json" in m["Properties"]["RequestModels"] for m in posts)
    default_synth.template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )


def test_body_routes_cover_the_handlers_post_routes() -> None:
    """Every POST route of lambdas/rest_api that takes a body has a gateway model (no drift)."""
    found = set()
    for path in (ROOT / "lambdas" / "rest_api").rglob("*.py"):
        for route, params in re.findall(r'@\w+\.post\("([^"]+)"[^)]*\)\s*\ndef \w+\(([^)]*)\)', path.read_text()):
            if "body" in params:
                found.add(re.sub(r"<(\w+)>", r"{\1}", route))
    assert found, "no POST routes found in lambdas/rest_api"
    assert found == set(BODY_ROUTES), found ^ set(BODY_ROUTES)


def test_stage_throttling_access_logs_and_tracing(default_synth: Synth) -> None:
    default_synth.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "prod",
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "ThrottlingRateLimit": 50,
                            "ThrottlingBurstLimit": 100,
                            "LoggingLevel": "ERROR",
                            "DataTraceEnabled": False,
                        }
                    )
                ]
            ),
        },
    )


def test_gateway_errors_use_the_api_error_shape(default_synth: Synth) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in default_synth.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert responses["BAD_REQUEST_BODY"]["StatusCode"] == "422"
    assert responses["THROTTLED"]["StatusCode"] == "429"
    template = responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"]
    assert template == '{"error":{"code":"unauthorized","message":$context.error.messageString}}'


def test_websocket_routes_and_authorizer(default_synth: Synth) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in default_synth.resources("AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    default_synth.template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {"AuthorizerType": "REQUEST", "IdentitySource": ["route.request.querystring.token"]},
    )
    default_synth.template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "prod",
            "AutoDeploy": True,
            "AccessLogSettings": Match.object_like({"DestinationArn": Match.any_value()}),
            "DefaultRouteSettings": Match.object_like(
                {"ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 50, "LoggingLevel": "ERROR"}
            ),
        },
    )


def test_websocket_pushers_may_manage_connections_of_this_stage_only(default_synth: Synth) -> None:
    for name in ("chat_worker", "ws_message", "ingest_status", "sweeper"):
        role = logical_id(default_synth, default_synth.stack.functions.roles[name])
        arns = [
            flatten(s["Resource"])
            for s in policy_statements(default_synth, role)
            if "execute-api:ManageConnections" in actions(s)
        ]
        assert arns and all(a.endswith("/prod/*/@connections/*") for a in arns), name
    role = logical_id(default_synth, default_synth.stack.functions.roles["ws_connect"])
    assert not [s for s in policy_statements(default_synth, role) if "execute-api:ManageConnections" in actions(s)]


def _logs(stage: dict[str, Any]) -> bool:
    props = stage["Properties"]
    route = props.get("DefaultRouteSettings", {})
    methods = props.get("MethodSettings", [])
    return bool(
        props.get("AccessLogSetting")
        or props.get("AccessLogSettings")
        or route.get("LoggingLevel", "OFF") != "OFF"
        or route.get("DataTraceEnabled")
        or any(m.get("LoggingLevel", "OFF") != "OFF" for m in methods)
    )


def test_every_logging_stage_waits_for_the_account_cloudwatch_role_set_here(any_synth: Synth) -> None:
    """A fresh region has no API Gateway CloudWatch role: a stage that logs (execution or access logs, REST or
    WebSocket) is refused unless this stack has set it (AWS::ApiGateway::Account) before the stage is made."""
    resources = any_synth.json["Resources"]
    accounts = any_synth.resources("AWS::ApiGateway::Account")
    assert len(accounts) == 1
    ((account_id, account),) = accounts.items()
    role = resources[account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(role["ManagedPolicyArns"])
    stages = {**any_synth.resources("AWS::ApiGateway::Stage"), **any_synth.resources("AWS::ApiGatewayV2::Stage")}
    assert len(stages) == 2
    for logical, stage in stages.items():
        assert _logs(stage), logical
        assert account_id in stage.get("DependsOn", []), logical
