"""The opt-in AWS WAF web ACLs (``DeployConfig.waf``), built from :mod:`quarry.deployment.waf`'s plans.

Off by default: no ``AWS::WAFv2::*`` resource at all. When enabled:

* :class:`ApiFirewall`: a ``REGIONAL`` web ACL associated with the REST API's deployment stage.
* :func:`ui_web_acl_arn`: the ``CLOUDFRONT`` web ACL of the UI's distribution (``waf.cloudfront``). CloudFront
  only accepts web ACLs created in us-east-1: in a us-east-1 deployment it is part of the main stack; otherwise
  a small :class:`EdgeStack` (``<stack>Edge``) in us-east-1 holds it and CDK's cross-region references carry its
  ARN (an SSM parameter written by the edge stack, read by the main stack). ``cdk deploy <stack>`` deploys the
  edge stack first, as a dependency.

The WebSocket API gets no web ACL: API Gateway WebSocket APIs cannot be associated with AWS WAF (only REST
APIs can: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-control-access-aws-waf.html);
its stage throttling and the chat spend limits bound it.

Rate limits aggregate on the request's source address. Calls the UI makes to ``/api/*`` reach API Gateway from
CloudFront's addresses, each shared by many viewers, so the per-viewer limit for them is the CloudFront web
ACL's; the regional rule mostly bounds direct callers of the ``execute-api`` URL.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stack, Tags, Token
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from quarry.deployment.waf import (
    CLOUDFRONT_REGION,
    ManagedRuleGroup,
    WebAclPlan,
    edge_stack_name,
    edge_stack_region,
    web_acl_plans,
)
from stacks.config import DeployConfig

__all__ = ["ApiFirewall", "EdgeStack", "WebAcl", "needs_edge_stack", "ui_web_acl_arn"]


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def _managed_rule(group: ManagedRuleGroup, priority: int, prefix: str) -> wafv2.CfnWebACL.RuleProperty:
    overrides = [
        wafv2.CfnWebACL.RuleActionOverrideProperty(
            name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
        )
        for rule in group.count_only
    ]
    return wafv2.CfnWebACL.RuleProperty(
        name=group.name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name=group.vendor, name=group.name, rule_action_overrides=overrides or None
            )
        ),
        visibility_config=_visibility(f"{prefix}-{group.name}"),
    )


def _rate_rule(limit: int, priority: int, prefix: str) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name="RateLimitPerIp",
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                aggregate_key_type="IP", limit=limit, evaluation_window_sec=300
            )
        ),
        visibility_config=_visibility(f"{prefix}-RateLimitPerIp"),
    )


class WebAcl(Construct):
    """One web ACL from its plan: allow by default; the rate rule first (a flood is blocked before the managed
    groups inspect it), then the managed rule groups in the plan's order."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: WebAclPlan, name: str) -> None:
        super().__init__(scope, construct_id)
        rules = [
            _rate_rule(plan.rate_limit_per_5_minutes, 0, name),
            *(_managed_rule(group, 1 + i, name) for i, group in enumerate(plan.managed)),
        ]
        self.acl = wafv2.CfnWebACL(
            self,
            "Acl",
            name=name,
            scope=plan.scope,
            description=f"Quarry {plan.attached_to}",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name),
            rules=rules,
        )
        self.arn: str = self.acl.attr_arn


def _plan(config: DeployConfig, scope: str) -> WebAclPlan | None:
    return next((p for p in web_acl_plans(config) if p.scope == scope), None)


class ApiFirewall(Construct):
    """The REGIONAL web ACL on the REST API's deployment stage (``None`` from :meth:`build` when WAF is off)."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: WebAclPlan, name: str, api: apigw.RestApi) -> None:
        super().__init__(scope, construct_id)
        self.web_acl = WebAcl(self, "WebAcl", plan=plan, name=name)
        wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=api.deployment_stage.stage_arn, web_acl_arn=self.web_acl.arn
        )

    @classmethod
    def build(cls, scope: Construct, config: DeployConfig, api: apigw.RestApi) -> ApiFirewall | None:
        plan = _plan(config, "REGIONAL")
        return cls(scope, "Waf", plan=plan, name=f"{config.prefix}-api", api=api) if plan else None


class EdgeStack(Stack):
    """The us-east-1 companion of a deployment in another region: only the UI's CLOUDFRONT web ACL."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: WebAclPlan, name: str, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Quarry: the UI's CloudFront web ACL (CloudFront requires us-east-1)",
            cross_region_references=True,
            **kwargs,
        )
        Tags.of(self).add("project", "quarry")
        self.web_acl = WebAcl(self, "UiWaf", plan=plan, name=name)


def needs_edge_stack(config: DeployConfig) -> bool:
    """Whether the UI's web ACL must live in a us-east-1 stack of its own (the deployment is elsewhere)."""
    return edge_stack_region(config) is not None


def ui_web_acl_arn(stack: Stack, config: DeployConfig) -> str | None:
    """The ARN of the UI distribution's web ACL, creating it where CloudFront needs it; ``None`` without one.

    ``stack`` must have been created with ``cross_region_references=needs_edge_stack(config)``.
    """
    plan = _plan(config, "CLOUDFRONT")
    if plan is None:
        return None
    name = f"{config.prefix}-ui"
    if not needs_edge_stack(config):
        return WebAcl(stack, "UiWaf", plan=plan, name=name).arn
    scope = stack.node.scope
    assert isinstance(scope, Construct), "the main stack always has a parent (the App or a Stage)"
    account = None if Token.is_unresolved(stack.account) else stack.account
    edge_id = edge_stack_name(config)
    assert edge_id is not None, "needs_edge_stack(config) holds here"
    edge = EdgeStack(scope, edge_id, plan=plan, name=name, env=Environment(account=account, region=CLOUDFRONT_REGION))
    return edge.web_acl.arn
