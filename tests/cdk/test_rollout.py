"""Safe rollout: with ``rollout.strategy`` canary or linear the API and chat functions are published behind a
``live`` alias that every caller invokes, and CodeDeploy shifts traffic onto a new version in the configured
steps, rolling back on failure or alarm. The default (``all_at_once``) adds none of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

from quarry.deployment.config import RolloutConfig
from quarry.deployment.cost import PRICES, estimate
from stacks.rollout import ALIAS, ROLLOUT_FUNCTIONS, traffic_routing
from tests.cdk.cdk_synth import Synth, logical_id, synthesize
from tests.cdk.test_cfn_lint import IGNORED

pytestmark = pytest.mark.cdk

CANARY = {"rollout": {"strategy": "canary", "percent": 20, "interval_minutes": 7}}
_ROLLOUT_TYPES = ("AWS::Lambda::Alias", "AWS::Lambda::Version", "AWS::CodeDeploy::DeploymentGroup")


@pytest.fixture(scope="module")
def canary_synth(code_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(CANARY, code_dirs, tmp_path_factory.mktemp("cdk-canary"))


def _refs(value: Any) -> set[str]:
    """Every logical id a CloudFormation value references (``Ref`` or ``Fn::GetAtt``)."""
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    if "Ref" in value:
        return {value["Ref"]}
    if "Fn::GetAtt" in value:
        return {value["Fn::GetAtt"][0]}
    return set().union(*(_refs(v) for v in value.values())) if value else set()


def _fn_id(synth: Synth, name: str) -> str:
    return logical_id(synth, synth.stack.functions.functions[name])


def _alias_id(synth: Synth, name: str) -> str:
    return logical_id(synth, synth.stack.functions.aliases[name])


def test_the_default_updates_the_functions_in_place(default_synth: Synth) -> None:
    for kind in (*_ROLLOUT_TYPES, "AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentConfig"):
        assert default_synth.resources(kind) == {}, kind
    assert default_synth.stack.functions.aliases == {}
    # callers invoke the functions themselves
    methods = default_synth.resources("AWS::ApiGateway::Method").values()
    targets = set().union(*(_refs(m["Properties"].get("Integration", {}).get("Uri")) for m in methods))
    assert _fn_id(default_synth, "rest_api") in targets
    mappings = default_synth.resources("AWS::Lambda::EventSourceMapping").values()
    assert any(_fn_id(default_synth, "chat_worker") in _refs(m["Properties"]["FunctionName"]) for m in mappings)


def test_each_rolled_out_function_has_a_version_behind_a_live_alias(canary_synth: Synth) -> None:
    versions = canary_synth.resources("AWS::Lambda::Version")
    aliases = canary_synth.resources("AWS::Lambda::Alias")
    assert len(aliases) == len(versions) == len(ROLLOUT_FUNCTIONS)
    groups = canary_synth.resources("AWS::CodeDeploy::DeploymentGroup")
    for name in ROLLOUT_FUNCTIONS:
        alias = aliases[_alias_id(canary_synth, name)]
        props = alias["Properties"]
        assert props["Name"] == ALIAS
        assert props["FunctionName"] == {"Ref": _fn_id(canary_synth, name)}
        [version_id] = _refs(props["FunctionVersion"])
        assert versions[version_id]["Properties"]["FunctionName"] == {"Ref": _fn_id(canary_synth, name)}
        # updating the alias is CodeDeploy's job: the stack update hands it to this function's group
        update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        assert update["DeploymentGroupName"]["Ref"] in groups


def test_codedeploy_shifts_by_the_configured_canary_and_rolls_back(canary_synth: Synth) -> None:
    [config] = canary_synth.resources("AWS::CodeDeploy::DeploymentConfig").values()
    assert config["Properties"]["ComputePlatform"] == "Lambda"
    assert config["Properties"]["TrafficRoutingConfig"] == {
        "Type": "TimeBasedCanary",
        "TimeBasedCanary": {"CanaryPercentage": 20, "CanaryInterval": 7},
    }
    [config_id] = canary_synth.resources("AWS::CodeDeploy::DeploymentConfig")
    groups = canary_synth.resources("AWS::CodeDeploy::DeploymentGroup").values()
    assert len(groups) == len(ROLLOUT_FUNCTIONS)
    for group in groups:
        props = group["Properties"]
        assert props["DeploymentConfigName"] == {"Ref": config_id}
        assert props["DeploymentStyle"] == {"DeploymentOption": "WITH_TRAFFIC_CONTROL", "DeploymentType": "BLUE_GREEN"}
        rollback = props["AutoRollbackConfiguration"]
        assert rollback["Enabled"] is True
        assert {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"} <= set(rollback["Events"])
        assert props["AlarmConfiguration"]["Enabled"] is True


def test_linear_and_canary_map_to_codedeploy_custom_routing() -> None:
    stack = Stack(App(), "Probe")
    for strategy in ("canary", "linear"):
        rollout = RolloutConfig(strategy=strategy, percent=25, interval_minutes=3)
        codedeploy.LambdaDeploymentConfig(stack, strategy, traffic_routing=traffic_routing(rollout))
    routings = [
        c["Properties"]["TrafficRoutingConfig"]
        for c in Template.from_stack(stack).find_resources("AWS::CodeDeploy::DeploymentConfig").values()
    ]
    assert {"Type": "TimeBasedLinear", "TimeBasedLinear": {"LinearPercentage": 25, "LinearInterval": 3}} in routings
    assert {"Type": "TimeBasedCanary", "TimeBasedCanary": {"CanaryPercentage": 25, "CanaryInterval": 3}} in routings
    with pytest.raises(ValueError, match="all_at_once"):
        traffic_routing(RolloutConfig())


def test_rollback_alarms_watch_the_new_version_and_the_rest_5xx(canary_synth: Synth) -> None:
    alarms = canary_synth.resources("AWS::CloudWatch::Alarm")
    topic = logical_id(canary_synth, canary_synth.stack.monitoring.topic)
    api_5xx = next(k for k, a in alarms.items() if a["Properties"]["MetricName"] == "5XXError")
    for name in ROLLOUT_FUNCTIONS:
        alias = canary_synth.resources("AWS::Lambda::Alias")[_alias_id(canary_synth, name)]
        [version_id] = _refs(alias["Properties"]["FunctionVersion"])
        group = next(
            g
            for k, g in canary_synth.resources("AWS::CodeDeploy::DeploymentGroup").items()
            if k == alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"]["Ref"]
        )
        watched = {a["Name"]["Ref"] for a in group["Properties"]["AlarmConfiguration"]["Alarms"]}
        errors = [alarms[w] for w in watched if alarms[w]["Properties"]["MetricName"] == "Errors"]
        assert len(errors) == 1, name
        props = errors[0]["Properties"]
        dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert dims["ExecutedVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
        assert dims["FunctionName"] == {"Ref": _fn_id(canary_synth, name)}
        assert dims["Resource"] == {"Fn::Join": ["", [{"Ref": _fn_id(canary_synth, name)}, f":{ALIAS}"]]}
        assert props["Threshold"] == 1 and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["AlarmActions"] == [{"Ref": topic}]  # a rollback reaches the alarm topic
        # the alarm is set on the new version before the alias (and so the traffic) moves
        alarm_id = next(w for w in watched if alarms[w]["Properties"]["MetricName"] == "Errors")
        assert alarm_id in alias.get("DependsOn", [])
        assert (api_5xx in watched) == (name == "rest_api"), name


def test_callers_invoke_the_alias_and_may_invoke_only_the_alias(canary_synth: Synth) -> None:
    s = canary_synth
    rest, ws, chat = (_alias_id(s, n) for n in ("rest_api", "ws_message", "chat_worker"))
    methods = [m["Properties"] for m in s.resources("AWS::ApiGateway::Method").values()]
    lambda_targets = [_refs(m["Integration"]["Uri"]) for m in methods if m["Integration"].get("Type") == "AWS_PROXY"]
    assert lambda_targets and all(t == {rest} for t in lambda_targets)
    integrations = s.resources("AWS::ApiGatewayV2::Integration").values()
    ws_targets = [_refs(i["Properties"]["IntegrationUri"]) for i in integrations]
    assert {ws} in ws_targets
    assert not any(_fn_id(s, "ws_message") in t for t in ws_targets)
    [chat_mapping] = [
        m["Properties"]
        for m in s.resources("AWS::Lambda::EventSourceMapping").values()
        if _refs(m["Properties"]["EventSourceArn"]) == {logical_id(s, s.stack.messaging.chat_queue)}
    ]
    assert _refs(chat_mapping["FunctionName"]) == {chat}
    assert chat_mapping["FunctionName"]["Fn::Join"][1][-1] == f":{ALIAS}"
    assert chat_mapping["ScalingConfig"] == {"MaximumConcurrency": s.config.spend.chat_max_concurrency}

    permissions = [p["Properties"] for p in s.resources("AWS::Lambda::Permission").values()]
    gateway = [p for p in permissions if p["Principal"] == "apigateway.amazonaws.com"]
    invoked = set().union(*(_refs(p["FunctionName"]) for p in gateway))
    assert {rest, ws} <= invoked
    assert not invoked & {_fn_id(s, "rest_api"), _fn_id(s, "ws_message")}


def test_quarry_cost_prices_the_rollback_alarms_and_calls_codedeploy_free(canary_synth: Synth) -> None:
    alarms = canary_synth.resources("AWS::CloudWatch::Alarm")
    est = estimate(canary_synth.stack.config)
    [count] = [i for i in est.idle if i.item.endswith(" alarms")]
    assert count.usd == pytest.approx(len(alarms) * PRICES["cw_alarm_month"])
    [codedeploy_item] = [i for i in est.idle if i.component == "rollout"]
    assert codedeploy_item.usd == 0 and "free" in codedeploy_item.note
    assert "canary 20% / 7 min" in codedeploy_item.item


def test_cdk_nag_passes_with_each_acknowledgement_explained(canary_synth: Synth) -> None:
    report = canary_synth.validation_report()
    errors = [v for p in report["pluginReports"] for v in p.get("violations", []) if v.get("severity") == "error"]
    assert errors == []
    reasons = [
        reason
        for group in canary_synth.stack.rollout.groups.values()
        for entry in group.node.metadata
        if isinstance(entry.data, dict)
        for rule, reason in entry.data.items()
        if "AWSCodeDeployRoleForLambdaLimited" in rule
    ]
    assert len(reasons) == len(ROLLOUT_FUNCTIONS) and all(len(r) > 30 for r in reasons)


def test_cfn_lint_is_clean(canary_synth: Synth) -> None:
    template = (canary_synth.outdir / f"{canary_synth.stack.stack_name}.template.json").read_text()
    matches = lint(template, config=ManualArgs(regions=[canary_synth.config.region], ignore_checks=IGNORED))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []
