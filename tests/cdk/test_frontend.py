"""Frontend: private bucket behind CloudFront with origin access control, security headers, /api on the
same origin, and a generated config.json in the shape the UI reads."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from stacks.frontend import frontend_config
from tests.cdk.cdk_synth import Synth, flatten

pytestmark = pytest.mark.cdk


def test_distribution_uses_oac_https_and_security_headers(default_synth: Synth) -> None:
    t = default_synth.template
    t.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    dist = next(iter(default_synth.resources("AWS::CloudFront::Distribution").values()))["Properties"][
        "DistributionConfig"
    ]
    assert dist["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert dist["DefaultRootObject"] == "index.html"
    assert "Logging" in dist
    api = next(b for b in dist["CacheBehaviors"] if b["PathPattern"] == "/api/*")
    assert api["ViewerProtocolPolicy"] == "https-only"
    assert len(api["AllowedMethods"]) == 7
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert len(api["FunctionAssociations"]) == 1
    headers = next(iter(default_synth.resources("AWS::CloudFront::ResponseHeadersPolicy").values()))
    security = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    csp = flatten(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert "frame-ancestors 'none'" in csp and "connect-src 'self' wss://" in csp


def test_site_bucket_is_readable_only_by_the_distribution(default_synth: Synth) -> None:
    site = [
        s
        for p in default_synth.resources("AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert len(site) == 1
    assert site[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in site[0]["Condition"]["StringEquals"]


def test_config_json_is_deployed(default_synth: Synth) -> None:
    deployments = [r for r in default_synth.json["Resources"].values() if r["Type"] == "Custom::CDKBucketDeployment"]
    assert len(deployments) == 1
    props = deployments[0]["Properties"]
    assert "/config.json" in props["DistributionPaths"]
    markers = str(props.get("SourceMarkers"))
    assert "UserPool" in markers and "WebSocket" in markers


def test_config_shape_matches_the_ui() -> None:
    cfg = frontend_config(ws_url="wss://x/prod", user_pool_id="pool", client_id="client", region="us-east-1")
    assert cfg == {
        "apiUrl": "/api",
        "wsUrl": "wss://x/prod",
        "auth": {"mode": "cognito", "userPoolId": "pool", "clientId": "client", "region": "us-east-1"},
    }


def test_spa_routes_function(default_synth: Synth) -> None:
    default_synth.template.has_resource_properties(
        "AWS::CloudFront::Function",
        {
            "FunctionCode": Match.string_like_regexp("index.html"),
            "FunctionConfig": Match.object_like({"Runtime": "cloudfront-js-2.0"}),
        },
    )
