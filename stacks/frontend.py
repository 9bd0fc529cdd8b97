"""The UI: a private S3 bucket behind CloudFront (origin access control), security headers on every
response, ``/api/*`` routed to the REST API on the same origin (no CORS), and a generated ``config.json``
(``{"apiUrl", "wsUrl", "auth": {"mode": "cognito", ...}}``, the shape ``frontend/src/api/config.ts`` reads).
With ``waf.enabled`` and ``waf.cloudfront`` the distribution carries the CLOUDFRONT web ACL of ``stacks/waf.py``.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudfront as cf
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.api import RestApi, WebSocketApi
from stacks.auth import Auth
from stacks.config import DeployConfig
from stacks.functions import retention
from stacks.storage import Storage, data_removal

__all__ = ["Frontend", "frontend_config"]

_PRICE_CLASS = {
    "100": cf.PriceClass.PRICE_CLASS_100,
    "200": cf.PriceClass.PRICE_CLASS_200,
    "all": cf.PriceClass.PRICE_CLASS_ALL,
}

# /api/x -> /x on the REST API's stage (the origin path adds the stage).
_STRIP_API = """function handler(event) {
  var request = event.request;
  request.uri = request.uri.replace(/^\\/api(\\/|$)/, '/');
  return request;
}"""

# Client-side routes (no file extension) are served index.html; API errors are never rewritten.
_SPA_ROUTES = """function handler(event) {
  var request = event.request;
  var last = request.uri.split('/').pop();
  if (last.indexOf('.') === -1) { request.uri = '/index.html'; }
  return request;
}"""


def frontend_config(*, ws_url: str, user_pool_id: str, client_id: str, region: str) -> dict[str, object]:
    return {
        "apiUrl": "/api",
        "wsUrl": ws_url,
        "auth": {"mode": "cognito", "userPoolId": user_pool_id, "clientId": client_id, "region": region},
    }


class Frontend(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        root: Path,
        storage: Storage,
        auth: Auth,
        rest: RestApi,
        websocket: WebSocketApi,
        web_acl_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.web_acl_arn = web_acl_arn
        removal = data_removal(config)
        self.bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=storage.access_logs,
            server_access_logs_prefix="s3/site/",
            removal_policy=removal,
            auto_delete_objects=config.is_destroy,
        )
        headers = self._headers(storage, websocket)
        api_origin = origins.HttpOrigin(
            # Built from the API id (not the stage URL) so the distribution does not depend on the deployment.
            f"{rest.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}",
            origin_path=f"/{config.api.stage_name}",
            protocol_policy=cf.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cf.OriginSslPolicy.TLS_V1_2],
        )
        self.distribution = cf.Distribution(
            self,
            "Cdn",
            comment=f"{config.prefix} UI",
            default_root_object="index.html",
            price_class=_PRICE_CLASS[config.frontend.price_class],
            http_version=cf.HttpVersion.HTTP2_AND_3,
            web_acl_id=web_acl_arn,  # the CLOUDFRONT web ACL of stacks/waf.py (waf.enabled + waf.cloudfront)
            enable_logging=True,
            log_bucket=storage.access_logs,
            log_file_prefix="cloudfront/",
            default_behavior=cf.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cf.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cf.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                compress=True,
                function_associations=[self._function("SpaRoutes", _SPA_ROUTES)],
            ),
            additional_behaviors={
                "/api/*": cf.BehaviorOptions(
                    origin=api_origin,
                    viewer_protocol_policy=cf.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cf.AllowedMethods.ALLOW_ALL,
                    cache_policy=cf.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cf.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=headers,
                    function_associations=[self._function("StripApi", _STRIP_API)],
                )
            },
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        storage.add_cors_origins([self.url, *config.frontend.extra_cors_origins])

        sources = [
            s3deploy.Source.json_data(
                "config.json",
                frontend_config(
                    ws_url=websocket.url,
                    user_pool_id=auth.user_pool.user_pool_id,
                    client_id=auth.client.user_pool_client_id,
                    region=Aws.REGION,
                ),
            )
        ]
        dist = config.resolve(config.frontend.dist_dir, root)
        self.has_build = (dist / "index.html").is_file()
        if self.has_build:
            sources.insert(0, s3deploy.Source.asset(str(dist)))
        deploy_logs = logs.LogGroup(
            self, "DeployLogs", retention=retention(config.log_retention_days), removal_policy=RemovalPolicy.DESTROY
        )
        s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=sources,
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/index.html", "/config.json"],
            prune=self.has_build,  # without a build, only config.json is written; keep what is there
            memory_limit=512,
            log_group=deploy_logs,
        )

    def _function(self, construct_id: str, code: str) -> cf.FunctionAssociation:
        fn = cf.Function(
            self,
            construct_id,
            code=cf.FunctionCode.from_inline(code),
            runtime=cf.FunctionRuntime.JS_2_0,
        )
        return cf.FunctionAssociation(function=fn, event_type=cf.FunctionEventType.VIEWER_REQUEST)

    def _headers(self, storage: Storage, websocket: WebSocketApi) -> cf.ResponseHeadersPolicy:
        region = Aws.REGION
        uploads = storage.uploads_name
        connect = " ".join(
            [
                "'self'",
                f"wss://{websocket.api.api_id}.execute-api.{region}.{Aws.URL_SUFFIX}",
                f"https://cognito-idp.{region}.{Aws.URL_SUFFIX}",
                f"https://{uploads}.s3.{Aws.URL_SUFFIX}",
                f"https://{uploads}.s3.{region}.{Aws.URL_SUFFIX}",
            ]
        )
        csp = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            f"font-src 'self' data:; connect-src {connect}; frame-ancestors 'none'; base-uri 'self'; "
            "form-action 'self'; object-src 'none'"
        )
        return cf.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Quarry security headers",
            security_headers_behavior=cf.ResponseSecurityHeadersBehavior(
                content_security_policy=cf.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=csp, override=True
                ),
                content_type_options=cf.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cf.ResponseHeadersFrameOptions(frame_option=cf.HeadersFrameOption.DENY, override=True),
                referrer_policy=cf.ResponseHeadersReferrerPolicy(
                    referrer_policy=cf.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override=True
                ),
                strict_transport_security=cf.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, preload=True, override=True
                ),
                xss_protection=cf.ResponseHeadersXSSProtection(protection=True, mode_block=True, override=True),
            ),
        )
