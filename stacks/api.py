"""API Gateway: REST (Cognito authorizer, request validation, throttling, access logs) and WebSocket
(Lambda authorizer on ``$connect``; ``$connect``, ``$disconnect``, ``$default``) in front of ``lambdas/``.

The REST API is one Lambda (Powertools resolver) behind a greedy ``{proxy+}``; the routes that take a
JSON body get their own resource with a request model generated from :mod:`quarry.protocol`, so the
gateway rejects a malformed body before the Lambda runs. Gateway errors use the API's own error shape
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from aws_cdk import Aws, RemovalPolicy, Size
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from pydantic import BaseModel

from quarry import protocol, summary_protocol
from stacks.api_schemas import request_schema
from stacks.auth import Auth
from stacks.config import DeployConfig
from stacks.functions import Functions, retention

__all__ = ["BODY_ROUTES", "PUBLIC_ROUTES", "Api"]

# POST routes with a JSON body, validated by API Gateway against the same pydantic model as the handler.
BODY_ROUTES: dict[str, type[BaseModel]] = {
    "/workspaces": protocol.WorkspaceIn,
    "/workspaces/{workspace_id}/documents/upload-url": protocol.UploadUrlIn,
    "/workspaces/{workspace_id}/documents": protocol.TextDocumentIn,
    "/workspaces/{workspace_id}/websites": protocol.WebsiteIn,
    "/workspaces/{workspace_id}/search": protocol.SearchIn,
    "/workspaces/{workspace_id}/summaries": summary_protocol.SummaryIn,
    "/rerank": protocol.RerankIn,
    "/embeddings": protocol.EmbeddingsIn,
    "/chat": protocol.ChatIn,
    "/feedback": protocol.FeedbackIn,
}
# GET routes that need no identity.
PUBLIC_ROUTES = ("/health", "/openapi.json")

_GATEWAY_ERRORS: dict[str, tuple[apigw.ResponseType, str, str]] = {
    "BadBody": (apigw.ResponseType.BAD_REQUEST_BODY, "422", "invalid_input"),
    "BadParameters": (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "400", "bad_request"),
    "Unauthorized": (apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized"),
    "AccessDenied": (apigw.ResponseType.ACCESS_DENIED, "403", "forbidden"),
    "MissingToken": (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", "not_found"),
    "Throttled": (apigw.ResponseType.THROTTLED, "429", "throttled"),
    "TooLarge": (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large"),
    "Default4xx": (apigw.ResponseType.DEFAULT_4_XX, "", "bad_request"),
    "Default5xx": (apigw.ResponseType.DEFAULT_5_XX, "", "internal_error"),
}


def _access_log_format() -> apigw.AccessLogFormat:
    """One JSON access-log line per request, the same for the REST and the WebSocket API (no caller ARN)."""
    return apigw.AccessLogFormat.json_with_standard_fields(
        caller=False,
        http_method=True,
        ip=True,
        protocol=True,
        request_time=True,
        resource_path=True,
        response_length=True,
        status=True,
        user=True,
    )


def _cid(path: str) -> str:
    return "".join(ch for ch in path.title() if ch.isalnum()) or "Root"


class RestApi(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, auth: Auth, fn: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=retention(config.log_retention_days), removal_policy=RemovalPolicy.DESTROY
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.prefix}-api",
            description="Quarry REST API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            min_compression_size=Size.kibibytes(1),
            deploy_options=apigw.StageOptions(
                stage_name=config.api.stage_name,
                throttling_rate_limit=config.api.throttle_rate,
                throttling_burst_limit=config.api.throttle_burst,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=_access_log_format(),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log request bodies: they hold user documents
                tracing_enabled=True,
                metrics_enabled=True,
            ),
        )
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "Authorizer", cognito_user_pools=[auth.user_pool], authorizer_name=f"{config.prefix}-cognito"
        )
        self.body_validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        self.params_validator = self.api.add_request_validator("ParamsValidator", validate_request_parameters=True)
        self.integration = apigw.LambdaIntegration(fn, proxy=True, scope_permission_to_method=False)
        self._resources: dict[str, apigw.IResource] = {"/": self.api.root}
        self._any(self.api.root)
        self._proxy(self.api.root)
        for path in PUBLIC_ROUTES:
            self._resource(path).add_method("GET", self.integration, authorization_type=apigw.AuthorizationType.NONE)
        for path, model in BODY_ROUTES.items():
            self._body_route(path, model)
        for name, (response_type, status, code) in _GATEWAY_ERRORS.items():
            self.api.add_gateway_response(
                name,
                type=response_type,
                status_code=status or None,
                templates={
                    "application/json": f'{{"error":{{"code":"{code}","message":$context.error.messageString}}}}'
                },
            )

    @property
    def stage_name(self) -> str:
        return self.api.deployment_stage.stage_name

    def _add_authorized_method(
        self,
        resource: apigw.IResource,
        http_method: str,
        validator: apigw.IRequestValidator,
        request_models: Mapping[str, apigw.IModel] | None = None,
    ) -> None:
        """``http_method`` on ``resource``, behind the Cognito authorizer and ``validator``."""
        resource.add_method(
            http_method,
            self.integration,
            authorizer=self.authorizer,
            authorization_type=apigw.AuthorizationType.COGNITO,
            request_validator=validator,
            request_models=request_models,
        )

    def _any(self, resource: apigw.IResource) -> None:
        self._add_authorized_method(resource, "ANY", self.params_validator)

    def _proxy(self, resource: apigw.IResource) -> None:
        proxy = resource.add_resource("{proxy+}")
        self._any(proxy)

    def _resource(self, path: str) -> apigw.IResource:
        """The resource for ``path``, creating parents; each new one gets ANY + a greedy child proxy."""
        if path in self._resources:
            return self._resources[path]
        parent_path, _, part = path.rpartition("/")
        parent = self._resource(parent_path or "/")
        resource = parent.add_resource(part)
        self._resources[path] = resource
        if path not in PUBLIC_ROUTES:
            self._any(resource)
            self._proxy(resource)
        return resource

    def _body_route(self, path: str, model: type[BaseModel]) -> None:
        cfn_model = apigw.CfnModel(
            self,
            f"{_cid(path)}Model",
            rest_api_id=self.api.rest_api_id,
            content_type="application/json",
            name=model.__name__,
            schema=request_schema(model),
        )
        request_model = apigw.Model.from_model_name(self, f"{_cid(path)}ModelRef", cfn_model.ref)
        self._add_authorized_method(
            self._resource(path), "POST", self.body_validator, request_models={"application/json": request_model}
        )


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, destination: apigwv2.IAccessLogDestination, fmt: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = fmt

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


class WebSocketApi(Construct):
    """The chat socket. Routes are added by :meth:`add_routes` once the functions exist."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=f"{config.prefix}-ws",
            description="Quarry chat WebSocket",
            route_selection_expression="$request.body.action",
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=retention(config.log_retention_days), removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=config.api.stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api.ws_throttle_rate, burst_limit=config.api.ws_throttle_burst
            ),
            access_log_settings=_AccessLogSettings(
                apigwv2.LogGroupLogDestination(self.access_logs),
                _access_log_format(),
            ),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.add_property_override("DefaultRouteSettings.LoggingLevel", "ERROR")
        cfn_stage.add_property_override("DefaultRouteSettings.DataTraceEnabled", False)

    @property
    def url(self) -> str:
        """The client URL (``wss://``)."""
        return f"wss://{self.api.api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{self.config.api.stage_name}"

    @property
    def callback_url(self) -> str:
        """The management API endpoint (``QUARRY_WEBSOCKET_ENDPOINT``)."""
        return f"https://{self.api.api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{self.config.api.stage_name}"

    def add_routes(self, functions: Functions) -> None:
        fns = functions.functions
        authorizer = authorizers.WebSocketLambdaAuthorizer(
            "TokenAuthorizer", fns["ws_authorizer"], identity_source=["route.request.querystring.token"]
        )
        self.api.add_route(
            "$connect",
            integration=integrations.WebSocketLambdaIntegration("ConnectIntegration", fns["ws_connect"]),
            authorizer=authorizer,
        )
        self.api.add_route(
            "$disconnect",
            integration=integrations.WebSocketLambdaIntegration("DisconnectIntegration", fns["ws_disconnect"]),
        )
        self.api.add_route(
            "$default",
            integration=integrations.WebSocketLambdaIntegration("MessageIntegration", functions.entry("ws_message")),
        )


class Api(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.websocket = WebSocketApi(self, "WebSocket", config=config)
        self.rest: RestApi | None = None

    def add_rest(self, auth: Auth, functions: Functions) -> RestApi:
        self.rest = RestApi(self, "Rest", config=self.config, auth=auth, fn=functions.entry("rest_api"))
        self.websocket.add_routes(functions)
        # Stage logging (execution logs and access logs alike, REST and WebSocket) needs API Gateway's
        # account-level CloudWatch role in the region, which a fresh account lacks. The REST API sets it
        # (cloud_watch_role=True: an AWS::ApiGateway::Account) and CDK orders the REST stage after it; the
        # WebSocket stage must wait for it too, or the first deploy in a region fails.
        account = self.rest.api.node.try_find_child("Account")
        if not isinstance(account, apigw.CfnAccount):
            raise TypeError("the REST API has no CloudWatch account resource (cloud_watch_role) to order after")
        self.websocket.stage.node.add_dependency(account)
        return self.rest
