"""Where `quarry smoke` points and who it is there: a local `quarry serve`, or a deployed stack.

A target turns into :class:`Endpoints` (the REST base URL, the WebSocket URL and a bearer token) when it
signs in, and undoes whatever signing in made when it signs out: for a deployment that is a temporary
Cognito user, created with its password set (no e-mail sent), signed in with ``ADMIN_USER_PASSWORD_AUTH``
(an IAM-authorised flow, so the browser's client gains nothing) and deleted at the end. The ID token is
what the REST API's Cognito authorizer and the WebSocket authorizer both accept, as the UI sends it.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin

import httpx

from quarry.deployment.smoke_client import REQUEST_TIMEOUT_SECONDS, SmokeFailure

__all__ = [
    "STACK_OUTPUTS",
    "CognitoTarget",
    "Endpoints",
    "LocalTarget",
    "StackOutputs",
    "StackTarget",
    "StaticTarget",
    "Target",
    "read_stack_outputs",
    "region_of_pool",
]

#: The `Quarry` stack's outputs smoke needs (stacks/quarry_stack.py `_outputs`), by the field they fill.
STACK_OUTPUTS = {
    "api_url": "RestApiUrl",
    "ws_url": "WebSocketUrl",
    "user_pool_id": "UserPoolId",
    "client_id": "UserPoolClientId",
}
SMOKE_USER_DOMAIN = "example.com"  # reserved (RFC 2606); with MessageAction=SUPPRESS nothing is ever sent


@dataclass(frozen=True, slots=True)
class Endpoints:
    api_url: str
    ws_url: str
    token: str
    identity: str  # who the run acts as, for the report


class Target(Protocol):
    """A place to smoke-test: `sign_in` yields the endpoints and a token; `sign_out` removes what it made."""

    description: str

    def sign_in(self) -> Endpoints: ...

    def sign_out(self) -> str | None:
        """What was undone (for the report), or None when signing in made nothing."""
        ...


# ============================================================================ local


class LocalTarget:
    """`quarry serve` at `url`: endpoints and the dev identity's token from `/config.json`, as the UI reads them."""

    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.description = f"quarry serve at {self.url}"
        self._token = token

    def sign_in(self) -> Endpoints:
        config = self._config()
        auth = config.get("auth") or {}
        api_url, ws_url = config.get("apiUrl"), config.get("wsUrl")
        if not isinstance(api_url, str) or not isinstance(ws_url, str):
            raise SmokeFailure(f"{self.url}/config.json has no apiUrl/wsUrl: is this a Quarry server?")
        if self._token is not None:
            token, identity = self._token, "the token given with --token"
        elif auth.get("mode") == "dev":
            token, identity = str(auth.get("token", "")), "the dev identity from /config.json"
        elif auth.get("mode") == "none":
            token, identity = "", "anonymous (authentication is off)"
        else:
            raise SmokeFailure(
                f"{self.url} signs users in with {auth.get('mode')!r}, not a dev token: "
                "smoke a deployment with --stack NAME (or --api-url/--ws-url/--user-pool-id/--client-id)"
            )
        return Endpoints(
            api_url=urljoin(f"{self.url}/", api_url),
            ws_url=urljoin(f"{self.url}/", ws_url),
            token=token,
            identity=identity,
        )

    def sign_out(self) -> str | None:
        return None

    def _config(self) -> dict[str, Any]:
        where = f"{self.url}/config.json"
        try:
            response = httpx.get(where, timeout=REQUEST_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise SmokeFailure(
                f"could not reach {where} ({type(exc).__name__}: {exc}): is `quarry serve` running at {self.url}?"
            ) from exc
        if not response.is_success:
            raise SmokeFailure(f"{where} answered {response.status_code}: is {self.url} a `quarry serve`?")
        try:
            config = response.json()
        except ValueError:
            raise SmokeFailure(f"{where} is not JSON: is {self.url} a `quarry serve`?") from None
        if not isinstance(config, dict):
            raise SmokeFailure(f"{where} is not a JSON object: is {self.url} a `quarry serve`?")
        return config


class StaticTarget:
    """Endpoints and a token the caller already has (a deployment whose pool needs MFA, say)."""

    def __init__(self, api_url: str, ws_url: str, token: str) -> None:
        self.description = api_url
        self._endpoints = Endpoints(
            api_url=api_url, ws_url=ws_url, token=token, identity="the token given with --token"
        )

    def sign_in(self) -> Endpoints:
        return self._endpoints

    def sign_out(self) -> str | None:
        return None


# ============================================================================ a deployed stack


@dataclass(frozen=True, slots=True)
class StackOutputs:
    api_url: str
    ws_url: str
    user_pool_id: str
    client_id: str


def region_of_pool(user_pool_id: str) -> str:
    """A Cognito pool id starts with its region (`eu-west-1_AbC123`)."""
    region, sep, _ = user_pool_id.partition("_")
    if not sep or not region:
        raise SmokeFailure(f"{user_pool_id!r} is not a Cognito user pool id (REGION_ID)")
    return region


def read_stack_outputs(stack_name: str, cloudformation: Any) -> StackOutputs:
    """The outputs of `stack_name`, through `cloudformation` (a boto3 client); each missing one is named."""
    from botocore.exceptions import BotoCoreError, ClientError

    from quarry.adapters.aws_errors import error_code

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        region = getattr(getattr(cloudformation, "meta", None), "region_name", "?")
        if error_code(exc) == "ValidationError":
            raise SmokeFailure(
                f"no stack {stack_name!r} in {region}: deploy it (`make deploy`) or pass the right --stack/--region"
            ) from exc
        raise SmokeFailure(f"could not read stack {stack_name!r} in {region}: {_with_fix(exc)}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in (stacks[0].get("Outputs") or []) if "OutputValue" in o}
    missing = [key for key in STACK_OUTPUTS.values() if not outputs.get(key)]
    if missing:
        raise SmokeFailure(
            f"stack {stack_name!r} ({stacks[0].get('StackStatus', '?')}) has no output {', '.join(missing)}: "
            "is it a Quarry stack, and did its deployment finish?"
        )
    return StackOutputs(**{field: outputs[key] for field, key in STACK_OUTPUTS.items()})


def _aws_message(exc: BaseException) -> str:
    from quarry.adapters.aws_errors import error_code

    response = getattr(exc, "response", None)
    message = (response or {}).get("Error", {}).get("Message") if isinstance(response, dict) else None
    return f"{error_code(exc)}: {message or exc}"


_FIXES = {
    "AccessDeniedException": "use AWS credentials allowed the call (cognito-idp admin actions on the pool), "
    "or pass --token",
    "AccessDenied": "use AWS credentials allowed cloudformation:DescribeStacks",
    "InvalidParameterException": "deploy this version (its app client allows ADMIN_USER_PASSWORD_AUTH), "
    "or pass --token",
    "ResourceNotFoundException": "check the stack outputs (UserPoolId, UserPoolClientId) and --region",
    "NoCredentialsError": "configure AWS credentials (`aws configure`, AWS_PROFILE or SSO login)",
    "ExpiredTokenException": "refresh your AWS credentials (`aws sso login`)",
    "ExpiredToken": "refresh your AWS credentials (`aws sso login`)",
}


def _with_fix(exc: BaseException) -> str:
    """AWS's code and message, and the fix where the code says what it is."""
    from quarry.adapters.aws_errors import error_code

    fix = _FIXES.get(error_code(exc))
    return f"{_aws_message(exc)}; fix: {fix}" if fix else _aws_message(exc)


def _password(length: int = 64) -> str:
    """Random, and meets any policy `DeployConfig.auth` allows (at most 64 characters, every character class)."""
    alphabet = string.ascii_letters + string.digits + "!#%+-.=?@^_~"
    body = "".join(secrets.choice(alphabet) for _ in range(length - 4))
    return body + secrets.choice(string.ascii_lowercase) + secrets.choice(string.ascii_uppercase) + "7!"


class CognitoTarget:
    """A deployment: a temporary user in its pool, signed in for an ID token, deleted by :meth:`sign_out`."""

    def __init__(self, outputs: StackOutputs, cognito: Any, *, description: str | None = None) -> None:
        self.outputs = outputs
        self.description = description or outputs.api_url
        self._cognito = cognito
        self._username: str | None = None  # Cognito's own name for the user once it exists

    def sign_in(self) -> Endpoints:
        email = f"quarry-smoke-{secrets.token_hex(6)}@{SMOKE_USER_DOMAIN}"
        password = _password()
        pool = self.outputs.user_pool_id
        created = self._admin(
            "create the temporary user",
            lambda: self._cognito.admin_create_user(
                UserPoolId=pool,
                Username=email,
                MessageAction="SUPPRESS",
                UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            ),
        )
        self._username = str(created["User"]["Username"])
        self._admin(
            "set its password",
            lambda: self._cognito.admin_set_user_password(
                UserPoolId=pool, Username=self._username, Password=password, Permanent=True
            ),
        )
        answer = self._admin(
            "sign it in",
            lambda: self._cognito.admin_initiate_auth(
                UserPoolId=pool,
                ClientId=self.outputs.client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            ),
        )
        result = answer.get("AuthenticationResult") or {}
        if "IdToken" not in result:
            raise SmokeFailure(
                f"signing the temporary user in asked for {answer.get('ChallengeName', 'a challenge')} "
                "(the pool requires MFA?): pass --token with an ID token of a signed-in user instead"
            )
        return Endpoints(
            api_url=self.outputs.api_url,
            ws_url=self.outputs.ws_url,
            token=str(result["IdToken"]),
            identity=f"temporary Cognito user {email}",
        )

    def sign_out(self) -> str | None:
        if self._username is None:
            return None
        username = self._username
        self._admin(
            "delete the temporary user",
            lambda: self._cognito.admin_delete_user(UserPoolId=self.outputs.user_pool_id, Username=username),
        )
        self._username = None
        return f"deleted Cognito user {username}"

    def _admin(self, what: str, call: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(call())
        except (BotoCoreError, ClientError) as exc:
            raise SmokeFailure(f"could not {what} in {self.outputs.user_pool_id}: {_with_fix(exc)}") from exc


class StackTarget:
    """A deployed stack by name: its outputs read from CloudFormation when signing in, then as
    :class:`CognitoTarget` (a temporary user), or with `token` as the caller's own identity."""

    def __init__(self, stack_name: str, *, cloudformation: Any, cognito: Any, token: str | None = None) -> None:
        region = getattr(getattr(cloudformation, "meta", None), "region_name", None)
        self.description = f"stack {stack_name}" + (f" in {region}" if region else "")
        self._stack_name, self._cloudformation, self._cognito, self._token = stack_name, cloudformation, cognito, token
        self._signed_in: Target | None = None

    def sign_in(self) -> Endpoints:
        outputs = read_stack_outputs(self._stack_name, self._cloudformation)
        self._signed_in = (
            StaticTarget(outputs.api_url, outputs.ws_url, self._token)
            if self._token is not None
            else CognitoTarget(outputs, self._cognito, description=self.description)
        )
        return self._signed_in.sign_in()

    def sign_out(self) -> str | None:
        return self._signed_in.sign_out() if self._signed_in is not None else None
