"""Who may talk to `quarry serve`: requests naming a loopback host (or the configured public name).

DNS rebinding: a page on ``evil.example`` whose name then resolves to 127.0.0.1 reaches the local server
from the victim's browser as a same-origin page, so it could read ``/config.json`` (the dev token) and
open the WebSocket. Its requests still carry ``Host: evil.example``, and its WebSocket and form posts an
``Origin`` of that name: every HTTP request and WebSocket handshake must name an allowed host (else 421),
and an ``Origin``, when a browser sends one on a WebSocket or a state-changing request, must too (else
403). Host names are compared without the port, so the UI's dev server (``npm run dev`` on another
loopback port, proxying to this one) keeps working.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

__all__ = ["LOOPBACK_HOSTS", "HostGuard", "allowed_hosts", "host_name", "is_loopback"]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WS_POLICY_VIOLATION = 4403


def host_name(value: str) -> str | None:
    """The host of a ``Host`` header (``name[:port]``, ``[v6]:port``), lower-cased, or None if unparsable."""
    value = value.strip().lower()
    if not value or any(ch in value for ch in "/\\@?# "):
        return None
    try:
        parts = urlsplit(f"//{value}")
        name = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    return name.rstrip(".") if name else None


def _origin_host(origin: str) -> str | None:
    """The host of an ``Origin`` header; None for ``null`` (sandboxed or file pages) or anything malformed."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower().rstrip(".")


def is_loopback(bind_host: str) -> bool:
    """Whether an address to listen on (``127.0.0.1``, ``::1``, ``localhost``) is reachable only from here."""
    host = bind_host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(public_host: str = "") -> frozenset[str]:
    """Loopback names, plus ``public_host`` (``QUARRY_LOCAL_PUBLIC_HOST``) when one is configured."""
    extra = host_name(public_host) if public_host else None
    return LOOPBACK_HOSTS | ({extra} if extra else set())


class HostGuard:
    """ASGI middleware: refuse requests for another host (421) or from a foreign origin (403)."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)

    def problem(self, kind: str, method: str, headers: Headers) -> tuple[int, str, str] | None:
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            shown = headers.get("host", "") or "(none)"
            return (
                421,
                "misdirected_request",
                f"this server answers only for {', '.join(sorted(self.hosts))}, not the host {shown!r};"
                " set QUARRY_LOCAL_PUBLIC_HOST to serve another name",
            )
        origin = headers.get("origin")
        checked = kind == "websocket" or method.upper() not in SAFE_METHODS
        if checked and origin is not None and _origin_host(origin) not in self.hosts:
            return 403, "forbidden_origin", f"requests from the origin {origin!r} are not accepted"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope["type"], scope.get("method", "GET"), Headers(scope=scope))
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, code, message = problem
        response = JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
        if scope["type"] == "http":
            await response(scope, receive, send)
            return
        ws = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await ws.send_denial_response(response)
        else:  # the server answers a handshake closed before accept with 403
            await ws.close(code=WS_POLICY_VIOLATION, reason=message[:120])
