"""What the opt-in AWS WAF web ACLs (``DeployConfig.waf``) hold: one plan per web ACL.

Pure data, no CDK: ``stacks/waf.py`` builds the web ACLs from these plans and
:mod:`quarry.deployment.cost` prices them (a monthly fee per web ACL and per rule or rule group), so the
rules deployed and the rules billed cannot disagree.

* ``REGIONAL`` on the REST API's stage: AWS managed common rules, IP reputation, known bad inputs, and a
  per-IP rate-based rule.
* ``CLOUDFRONT`` on the UI's distribution (with ``waf.cloudfront``; created in us-east-1, as CloudFront
  requires): common rules, IP reputation and the rate-based rule. The distribution also routes ``/api/*`` to
  the REST API, so both web ACLs see the UI's API calls.

API Gateway WebSocket APIs cannot be associated with a web ACL (AWS WAF protects REST APIs, not WebSocket or
HTTP APIs: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-control-access-aws-waf.html),
so chat traffic is bounded by the WebSocket stage's throttling and the spend limits instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quarry.deployment.config import DeployConfig

__all__ = [
    "CLOUDFRONT_REGION",
    "COMMON_RULES",
    "IP_REPUTATION",
    "KNOWN_BAD_INPUTS",
    "ManagedRuleGroup",
    "WebAclPlan",
    "edge_stack_name",
    "edge_stack_region",
    "web_acl_plans",
]

Scope = Literal["REGIONAL", "CLOUDFRONT"]

CLOUDFRONT_REGION = "us-east-1"  # where every CLOUDFRONT-scope web ACL is created


@dataclass(frozen=True)
class ManagedRuleGroup:
    """An AWS managed rule group, with the rules of it that only count (never block) for this API."""

    name: str
    count_only: tuple[str, ...] = ()
    vendor: str = "AWS"


# The API takes legitimate bodies far above the common rule set's 8 KB cap (SizeRestrictions_BODY): raw text
# documents up to 1,000,000 characters (POST .../documents), rerank passages and embedding batches, chat
# questions up to 8,000 characters (UTF-8: up to 32 KB). Document text and questions are data that may well
# quote HTML or script (CrossSiteScripting_BODY); the API answers JSON and the UI renders it as text, never as
# markup. Both rules count, so they still show in the metrics and sampled requests.
COMMON_RULES = ManagedRuleGroup(
    "AWSManagedRulesCommonRuleSet", count_only=("SizeRestrictions_BODY", "CrossSiteScripting_BODY")
)
IP_REPUTATION = ManagedRuleGroup("AWSManagedRulesAmazonIpReputationList")
KNOWN_BAD_INPUTS = ManagedRuleGroup("AWSManagedRulesKnownBadInputsRuleSet")  # Log4j, Java deserialisation, ...


@dataclass(frozen=True)
class WebAclPlan:
    """One web ACL: its scope, what it is attached to, its managed rule groups and per-IP rate limit."""

    scope: Scope
    attached_to: str
    managed: tuple[ManagedRuleGroup, ...]
    rate_limit_per_5_minutes: int

    @property
    def rule_count(self) -> int:
        """Billed rules: each managed rule group counts as one rule, plus the rate-based rule."""
        return len(self.managed) + 1


def web_acl_plans(config: DeployConfig) -> list[WebAclPlan]:
    """The web ACLs the configuration deploys: none unless ``waf.enabled``."""
    waf = config.waf
    if not waf.enabled:
        return []
    plans = [
        WebAclPlan(
            "REGIONAL", "REST API stage", (IP_REPUTATION, COMMON_RULES, KNOWN_BAD_INPUTS), waf.rate_limit_per_5_minutes
        )
    ]
    if waf.cloudfront:
        plans.append(
            WebAclPlan("CLOUDFRONT", "UI distribution", (IP_REPUTATION, COMMON_RULES), waf.rate_limit_per_5_minutes)
        )
    return plans


def edge_stack_region(config: DeployConfig) -> str | None:
    """The region of the extra stack holding the UI's web ACL, or ``None`` when the main stack holds it (or there
    is none). Deploying then also needs that region bootstrapped, and ``cdk deploy`` deploys that stack first."""
    has_ui_acl = any(p.scope == "CLOUDFRONT" for p in web_acl_plans(config))
    return CLOUDFRONT_REGION if has_ui_acl and config.region != CLOUDFRONT_REGION else None


def edge_stack_name(config: DeployConfig) -> str | None:
    """The edge stack's name (``<stack>Edge``) when :func:`edge_stack_region` says there is one."""
    return f"{config.stack_name}Edge" if edge_stack_region(config) else None
