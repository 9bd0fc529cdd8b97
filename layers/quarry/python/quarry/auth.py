"""Identity: verify bearer tokens. Cognito JWTs in AWS, a signed dev token locally.

Both the WebSocket authorizer Lambda and the local runtime (standing in for
API Gateway's Cognito authorizer) call ``TokenVerifier.verify``; handlers only
ever read the verified user from the authorizer context of the event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jwt

from quarry.errors import Unauthorized
from quarry.settings import Settings

__all__ = ["DEV_ISSUER", "Identity", "TokenVerifier", "issue_dev_token", "user_from_event"]

DEV_ISSUER = "quarry-local"
DEV_AUDIENCE = "quarry"


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()
    email: str | None = None


def issue_dev_token(secret: bytes, *, user: str = "local", ttl_seconds: int = 30 * 24 * 3600) -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "iat": now,
        "exp": now + ttl_seconds,
        "cognito:groups": ["admin"],
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenVerifier:
    def __init__(self, settings: Settings, *, dev_secret: bytes | None = None) -> None:
        self._settings = settings
        self._dev_secret = dev_secret

    @cached_property
    def _cognito_issuer(self) -> str:
        s = self._settings
        return f"https://cognito-idp.{s.aws_region}.amazonaws.com/{s.cognito_user_pool_id}"

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient:
        return jwt.PyJWKClient(f"{self._cognito_issuer}/.well-known/jwks.json", cache_keys=True, lifespan=3600)

    def verify(self, token: str | None) -> Identity:
        if not token:
            raise Unauthorized("missing bearer token")
        token = token.removeprefix("Bearer ").strip()
        try:
            claims = self._dev_claims(token) if self._dev_secret is not None else self._cognito_claims(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        return Identity(
            user=str(claims["sub"]), groups=tuple(claims.get("cognito:groups", ())), email=claims.get("email")
        )

    def _dev_claims(self, token: str) -> dict[str, Any]:
        assert self._dev_secret is not None
        return jwt.decode(
            token,
            self._dev_secret,
            algorithms=["HS256"],
            audience=DEV_AUDIENCE,
            issuer=DEV_ISSUER,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )

    def _cognito_claims(self, token: str) -> dict[str, Any]:
        s = self._settings
        if not s.cognito_user_pool_id:
            raise Unauthorized("no identity provider is configured")
        key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            issuer=self._cognito_issuer,
            options={"require": ["exp", "sub", "iss", "token_use"], "verify_aud": False},
        )
        # Cognito id tokens carry `aud`, access tokens carry `client_id`: check whichever applies.
        audience = claims.get("aud") if claims.get("token_use") == "id" else claims.get("client_id")
        if s.cognito_client_id and audience != s.cognito_client_id:
            raise Unauthorized("token was issued for another client")
        return claims


def user_from_event(event: dict[str, Any]) -> str:
    """The verified user of an API Gateway event (Cognito authorizer claims, or the WS authorizer's context)."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    user = (authorizer.get("claims") or {}).get("sub") or authorizer.get("user") or authorizer.get("principalId")
    if not user:
        raise Unauthorized("request was not authorized")
    return str(user)
