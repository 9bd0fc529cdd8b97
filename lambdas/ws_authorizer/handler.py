"""WebSocket $connect authorizer: verifies the Cognito JWT in the `token` query parameter."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from quarry.auth import TokenVerifier
from quarry.errors import Unauthorized
from quarry.wiring import get_services

logger = Logger(service="quarry-ws-authorizer")


def _verifier() -> TokenVerifier:
    return get_services().token_verifier  # built once per container: the JWKS stay cached between invocations


def _policy(principal: str, effect: str, resource: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        identity = _verifier().verify(token)
    except Unauthorized as exc:
        logger.info("connection refused", extra={"reason": exc.message})
        return _policy("anonymous", "Deny", event["methodArn"], {})
    authorizer_context = {"user": identity.user}
    if identity.expires_at is not None:  # kept with the connection by ws_connect; ws_message closes it after
        authorizer_context["expires_at"] = str(identity.expires_at)
    return _policy(identity.user, "Allow", event["methodArn"], authorizer_context)
