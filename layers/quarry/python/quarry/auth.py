"""Identity: verify bearer tokens. Cognito JWTs in AWS, a signed dev token locally.

Both the WebSocket authorizer Lambda and the local runtime (standing in for
API Gateway's Cognito authorizer) call ``TokenVerifier.verify``; handlers only
ever read the verified user from the authorizer context of the event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jwt

from quarry.errors import Unauthorized
from quarry.settings import Settings

__all__ = [
    "DEV_ISSUER",
    "DEV_TOKEN_TTL_SECONDS",
    "DevTokens",
    "Identity",
    "TokenVerifier",
    "issue_dev_token",
    "user_from_event",
]

DEV_ISSUER = "quarry-local"
DEV_AUDIENCE = "quarry"
# Short enough that a leaked token soon stops working; the UI renews it from /config.json before then.
DEV_TOKEN_TTL_SECONDS = 12 * 3600


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()
    email: str | None = None
    #: The token's ``exp`` (epoch seconds): a WebSocket opened with it is closed once it has passed.
    expires_at: int | None = None


def issue_dev_token(
    secret: bytes, *, user: str = "local", ttl_seconds: int = DEV_TOKEN_TTL_SECONDS, now: float | None = None
) -> str:
    now = int(time.time() if now is None else now)
    claims = {
        "sub": user,
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "iat": now,
        "exp": now + ttl_seconds,
        "cognito:groups": ["admin"],
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class DevTokens:
    """The local dev identity's token, as `/config.json` hands it out: re-issued once half its life is gone,
    so a UI that fetches it again before its ``exp`` always gets one with hours left."""

    def __init__(
        self,
        secret: bytes,
        *,
        user: str = "local",
        ttl_seconds: int = DEV_TOKEN_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret, self.user, self.ttl_seconds, self._clock = secret, user, ttl_seconds, clock
        self._lock = threading.Lock()
        self._token, self._expires_at = "", 0

    def current(self) -> tuple[str, int]:
        """The token and its expiry (seconds since the epoch)."""
        with self._lock:
            now = self._clock()
            if self._expires_at - now < self.ttl_seconds / 2:
                self._token = issue_dev_token(self._secret, user=self.user, ttl_seconds=self.ttl_seconds, now=now)
                self._expires_at = int(now) + self.ttl_seconds
            return self._token, self._expires_at


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
            user=str(claims["sub"]),
            groups=tuple(claims.get("cognito:groups", ())),
            email=claims.get("email"),
            expires_at=int(claims["exp"]) if "exp" in claims else None,
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
