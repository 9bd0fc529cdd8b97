"""Least privilege: no `*` or `service:*` action anywhere; the runtime's roles name every action and use
`Resource: *` only for the few APIs that support no resource-level permission."""

from __future__ import annotations

import pytest

from tests.cdk.cdk_synth import Synth, actions, logical_id, policy_statements

pytestmark = pytest.mark.cdk

# APIs without resource-level permissions (see stacks/nag.py for the reasons).
STAR_RESOURCE_OK = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "bedrock:Rerank",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
}


def test_no_wildcard_actions_anywhere(any_synth: Synth) -> None:
    statements = policy_statements(any_synth)
    assert statements
    for s in statements:
        for action in actions(s):
            assert action != "*" and not action.endswith(":*"), s


def _runtime_roles(synth: Synth) -> dict[str, str]:
    roles = {name: logical_id(synth, role) for name, role in synth.stack.functions.roles.items()}
    roles["batch-job"] = logical_id(synth, synth.stack.worker.job_role)
    for endpoint in synth.stack.models.endpoints:
        roles[endpoint.name] = logical_id(synth, endpoint.role)
    return roles


def test_runtime_roles_name_every_action(any_synth: Synth) -> None:
    for name, role in _runtime_roles(any_synth).items():
        statements = policy_statements(any_synth, role)
        assert statements, name
        for s in statements:
            assert s["Effect"] == "Allow"
            for action in actions(s):
                assert "*" not in action, (name, action)
            if s["Resource"] == "*" or s["Resource"] == ["*"]:
                assert set(actions(s)) <= STAR_RESOURCE_OK, (name, s)


def test_front_door_functions_hold_no_data_permissions(default_synth: Synth) -> None:
    role = logical_id(default_synth, default_synth.stack.functions.roles["ws_authorizer"])
    granted = {a for s in policy_statements(default_synth, role) for a in actions(s)}
    assert granted <= {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    connect = logical_id(default_synth, default_synth.stack.functions.roles["ws_connect"])
    granted = {a for s in policy_statements(default_synth, connect) for a in actions(s)}
    assert not any(a.startswith(("s3:", "bedrock:", "sns:", "states:")) for a in granted)
