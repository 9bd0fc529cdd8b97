"""The opt-in AWS WAF (``DeployConfig.waf``): nothing by default; when enabled a REGIONAL web ACL on the REST
stage and a CLOUDFRONT web ACL on the UI (in the main stack in us-east-1, in a us-east-1 edge stack otherwise,
its ARN carried by CDK's cross-region references); cdk-nag's WAF acknowledgements only without it; cfn-lint
clean; and ``quarry cost`` prices exactly the web ACLs deployed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from quarry.deployment.config import DeployConfig, load_config
from quarry.deployment.cost import PRICES, Estimate, LineItem, Workload, estimate
from quarry.deployment.waf import edge_stack_region
from tests.cdk.cdk_synth import Synth, logical_id, synthesize
from tests.cdk.test_cfn_lint import IGNORED

pytestmark = pytest.mark.cdk

RATE_LIMIT = 2345
API_RULES = [
    "RateLimitPerIp",
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
]
UI_RULES = API_RULES[:3]


@pytest.fixture(scope="module")
def waf_synth(code_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """WAF on in us-east-1: both web ACLs in the main stack."""
    overrides = {"waf": {"enabled": True, "rate_limit_per_5_minutes": RATE_LIMIT}}
    yield synthesize(overrides, code_dirs, tmp_path_factory.mktemp("cdk-waf"))


@pytest.fixture(scope="module")
def edge_synth(code_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """WAF on in eu-west-1: the UI's web ACL in a us-east-1 edge stack."""
    overrides = {"region": "eu-west-1", "waf": {"enabled": True}}
    yield synthesize(overrides, code_dirs, tmp_path_factory.mktemp("cdk-waf-edge"))


def _template(synth: Synth, stack_name: str) -> dict[str, Any]:
    return dict(json.loads((synth.outdir / f"{stack_name}.template.json").read_text()))


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def _acl(template: dict[str, Any], scope: str) -> tuple[str, dict[str, Any]]:
    acls = [(k, v["Properties"]) for k, v in _of_type(template, "AWS::WAFv2::WebACL").items()]
    found = [(k, p) for k, p in acls if p["Scope"] == scope]
    assert len(found) == 1, acls
    return found[0]


def _distribution(synth: Synth) -> dict[str, Any]:
    (dist,) = synth.resources("AWS::CloudFront::Distribution").values()
    return dict(dist["Properties"]["DistributionConfig"])


def _acknowledged(synth: Synth) -> dict[str, str]:
    acks: dict[str, str] = {}
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if "acknowledg" in str(entry.type).lower() and isinstance(entry.data, dict):
                acks.update({k.removeprefix("Annotation::"): v for k, v in entry.data.items() if "AwsSolutions-" in k})
    return acks


# ---------------------------------------------------------------------------------------------- templates


def test_default_config_deploys_no_waf(default_synth: Synth) -> None:
    assert not [r for r in default_synth.json["Resources"].values() if r["Type"].startswith("AWS::WAFv2::")]
    assert "WebACLId" not in _distribution(default_synth)
    assert [p.name for p in default_synth.outdir.glob("*.template.json")] == ["Quarry.template.json"]


def test_regional_web_acl_holds_the_managed_rules_and_the_configured_rate_limit(waf_synth: Synth) -> None:
    _, acl = _acl(waf_synth.json, "REGIONAL")
    assert acl["DefaultAction"] == {"Allow": {}}
    assert acl["VisibilityConfig"]["CloudWatchMetricsEnabled"] and acl["VisibilityConfig"]["SampledRequestsEnabled"]
    rules = {r["Name"]: r for r in acl["Rules"]}
    assert [r["Name"] for r in sorted(acl["Rules"], key=lambda r: r["Priority"])] == API_RULES
    assert len({r["Priority"] for r in acl["Rules"]}) == len(API_RULES)
    rate = rules["RateLimitPerIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "Limit": RATE_LIMIT,
        "EvaluationWindowSec": 300,
    }
    for name in API_RULES[1:]:
        group = rules[name]["Statement"]["ManagedRuleGroupStatement"]
        assert (group["VendorName"], group["Name"]) == ("AWS", name)
        assert rules[name]["OverrideAction"] == {"None": {}}  # the group's own block actions apply
    for rule in acl["Rules"]:
        assert rule["VisibilityConfig"]["SampledRequestsEnabled"], rule["Name"]


def test_request_bodies_larger_than_8_kb_are_counted_not_blocked(waf_synth: Synth) -> None:
    """Raw text documents (up to 1,000,000 characters) and chat questions exceed the common rule set's cap."""
    for scope in ("REGIONAL", "CLOUDFRONT"):
        _, acl = _acl(waf_synth.json, scope)
        common = next(r for r in acl["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet")
        overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
        counted = {o["Name"] for o in overrides if o["ActionToUse"] == {"Count": {}}}
        assert "SizeRestrictions_BODY" in counted
        assert len(counted) == len(overrides)  # overrides only ever relax a rule to count


def test_the_regional_web_acl_is_associated_with_the_rest_stage(waf_synth: Synth) -> None:
    acl_id, _ = _acl(waf_synth.json, "REGIONAL")
    (association,) = waf_synth.resources("AWS::WAFv2::WebACLAssociation").values()
    props = association["Properties"]
    assert props["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    rest = waf_synth.stack.rest.api
    stage = logical_id(waf_synth, rest.deployment_stage)
    assert props["ResourceArn"] == {
        "Fn::Join": [
            "",
            [
                "arn:aws:apigateway:us-east-1::/restapis/",
                {"Ref": logical_id(waf_synth, rest)},
                "/stages/",
                {"Ref": stage},
            ],
        ]
    }
    assert not [p for p in waf_synth.resources("AWS::WAFv2::WebACLAssociation").values() if "/apis/" in str(p)]


def test_in_us_east_1_the_ui_web_acl_is_in_the_main_stack_on_the_distribution(waf_synth: Synth) -> None:
    acl_id, acl = _acl(waf_synth.json, "CLOUDFRONT")
    assert [r["Name"] for r in sorted(acl["Rules"], key=lambda r: r["Priority"])] == UI_RULES
    rate = next(r for r in acl["Rules"] if r["Name"] == "RateLimitPerIp")
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == RATE_LIMIT
    assert _distribution(waf_synth)["WebACLId"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert [p.name for p in waf_synth.outdir.glob("*.template.json")] == ["Quarry.template.json"]


def test_elsewhere_the_ui_web_acl_lives_in_a_us_east_1_stack_deployed_first(edge_synth: Synth) -> None:
    main, edge = edge_synth.json, _template(edge_synth, "QuarryEdge")
    _acl(main, "REGIONAL")
    assert [p["Properties"]["Scope"] for p in _of_type(main, "AWS::WAFv2::WebACL").values()] == ["REGIONAL"]
    acl_id, _ = _acl(edge, "CLOUDFRONT")
    assert _of_type(edge, "AWS::WAFv2::WebACL").keys() == {acl_id}

    # the edge stack writes the ARN to an SSM parameter in the main stack's region; the main stack reads it
    (writer,) = _of_type(edge, "Custom::CrossRegionExportWriter").values()
    assert writer["Properties"]["WriterProps"]["region"] == "eu-west-1"
    ((parameter, value),) = writer["Properties"]["WriterProps"]["exports"].items()
    assert value == {"Fn::GetAtt": [acl_id, "Arn"]}
    (reader_id,) = _of_type(main, "Custom::CrossRegionExportReader")
    assert _distribution(edge_synth)["WebACLId"] == {"Fn::GetAtt": [reader_id, parameter]}

    artifacts = json.loads((edge_synth.outdir / "manifest.json").read_text())["artifacts"]
    assert artifacts["QuarryEdge"]["environment"].endswith("/us-east-1")
    assert artifacts["Quarry"]["environment"].endswith("/eu-west-1")
    assert "QuarryEdge" in artifacts["Quarry"]["dependencies"]


def test_edge_stack_region_is_needed_only_outside_us_east_1_with_a_ui_web_acl() -> None:
    on = {"enabled": True}
    assert edge_stack_region(load_config({"region": "eu-west-1", "waf": on})) == "us-east-1"
    assert edge_stack_region(load_config({"region": "us-east-1", "waf": on})) is None
    assert edge_stack_region(load_config({"region": "eu-west-1", "waf": {**on, "cloudfront": False}})) is None
    assert edge_stack_region(load_config({"region": "eu-west-1"})) is None


# ---------------------------------------------------------------------------------------------- checks


def test_cdk_nag_waf_acknowledgements_point_at_the_option_and_only_without_waf(
    default_synth: Synth, waf_synth: Synth
) -> None:
    off = _acknowledged(default_synth)
    for rule in ("AwsSolutions-APIG3", "AwsSolutions-CFR2"):
        assert "waf.enabled" in off[rule] and "quarry cost" in off[rule]
    on = _acknowledged(waf_synth)
    assert "AwsSolutions-APIG3" not in on and "AwsSolutions-CFR2" not in on
    # synthesis raises on an unacknowledged error, so the rules pass on their own; the report stays clean too
    report = waf_synth.validation_report()
    errors = [v for p in report["pluginReports"] for v in p.get("violations", []) if v.get("severity") == "error"]
    assert errors == []


@pytest.mark.parametrize(
    ("synth_name", "stack_name", "region"),
    [
        ("waf_synth", "Quarry", "us-east-1"),
        ("edge_synth", "Quarry", "eu-west-1"),
        ("edge_synth", "QuarryEdge", "us-east-1"),
    ],
)
def test_waf_templates_are_cfn_lint_clean(
    request: pytest.FixtureRequest, synth_name: str, stack_name: str, region: str
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    template = (Path(synth.outdir) / f"{stack_name}.template.json").read_text()
    matches = lint(template, config=ManualArgs(regions=[region], ignore_checks=IGNORED))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


# ---------------------------------------------------------------------------------------------- cost


def _waf(items: list[LineItem]) -> list[LineItem]:
    return [i for i in items if i.component == "waf"]


def test_cost_has_no_waf_items_by_default() -> None:
    est = estimate(DeployConfig())
    assert not _waf(est.idle) and not _waf(est.per_1000_chats) and not _waf(est.per_1000_documents)


def test_cost_prices_each_web_acl_its_rules_and_the_requests_it_inspects() -> None:
    base = estimate(DeployConfig())
    w = Workload()
    est = estimate(load_config({"waf": {"enabled": True}}), w)
    acl, rule, per_request = PRICES["waf_web_acl_month"], PRICES["waf_rule_month"], PRICES["waf_per_million_requests"]
    assert (acl, rule, per_request) == (5.0, 1.0, 0.6)
    assert sorted(i.usd for i in _waf(est.idle)) == [acl + 3 * rule, acl + 4 * rule]  # UI: 3 rules, API: 4
    assert Estimate.total(est.idle) == pytest.approx(Estimate.total(base.idle) + 2 * acl + 7 * rule, abs=0.01)

    # REST calls pass both web ACLs (/api/* on the distribution, then the stage); the UI's files only CloudFront's
    (chats,) = _waf(est.per_1000_chats)
    inspected = 2 * 1000 * w.rest_requests_per_chat + 1000 / w.chats_per_session * w.ui_requests_per_session
    assert chats.usd == pytest.approx(inspected / 1e6 * per_request)
    (documents,) = _waf(est.per_1000_documents)
    assert documents.usd == pytest.approx(2 * 1000 * w.rest_requests_per_document / 1e6 * per_request)


def test_cost_without_the_cloudfront_web_acl_prices_only_the_api_one() -> None:
    w = Workload()
    est = estimate(load_config({"waf": {"enabled": True, "cloudfront": False}}), w)
    (idle,) = _waf(est.idle)
    assert idle.usd == PRICES["waf_web_acl_month"] + 4 * PRICES["waf_rule_month"]
    (chats,) = _waf(est.per_1000_chats)
    assert chats.usd == pytest.approx(1000 * w.rest_requests_per_chat / 1e6 * PRICES["waf_per_million_requests"])
