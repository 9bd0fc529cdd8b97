"""The public protocol as `quarry smoke` speaks it: REST with a bearer token, the presigned POST, the WebSocket.

Nothing here knows Quarry's internals: only the routes, bodies and events a browser sees (the React UI's
``frontend/src/api/client.ts``, ``upload.ts`` and ``ws/socket.ts``), so a smoke run against a deployment
checks what users get. Every failure is a :class:`SmokeFailure` naming the call and what came back.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

__all__ = ["EventSocket", "RestClient", "SmokeFailure", "open_socket", "path_of", "post_presigned", "socket_url"]

# Aurora resumes from pause in 15-30 s: the API answers 503 `database_waking` with Retry-After meanwhile,
# and nothing was done, so the call is repeated (as the UI does), within these bounds.
WAKE_RETRIES = 4
WAKE_DELAY_SECONDS = (1.0, 5.0, 30.0)  # min, fallback, max
REQUEST_TIMEOUT_SECONDS = 60.0  # API Gateway gives up at 29 s; this only catches a hung connection


class SmokeFailure(Exception):
    """A smoke step failed; the message says what was called, what came back and, where known, the fix."""


def _error_text(response: httpx.Response) -> str:
    """`{"error": {"code", "message"}}` as `code: message`, or the start of whatever else came back."""
    try:
        error = response.json().get("error") or {}
        return f"{error.get('code', '?')}: {error.get('message', '')}".strip()
    except (ValueError, AttributeError):
        return response.text[:300].strip() or response.reason_phrase


class RestClient:
    """REST calls with the bearer token; any non-2xx answer or network failure is a :class:`SmokeFailure`."""

    def __init__(self, api_url: str, token: str, *, http: httpx.Client | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = http or httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS)
        self._headers = headers

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: Any = None, *, allow: tuple[int, ...] = ()) -> httpx.Response:
        """One call; `allow` lists error statuses the caller handles itself (e.g. 404 while polling)."""
        for attempt in range(WAKE_RETRIES + 1):
            response = self._send(method, path, body)
            if response.is_success or response.status_code in allow:
                return response
            if not self._is_waking(response) or attempt == WAKE_RETRIES:
                raise SmokeFailure(f"{method} {path} answered {response.status_code} {_error_text(response)}")
            time.sleep(self._wake_delay(response))
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.call(method, path, body)
        try:
            data = response.json()
        except ValueError:
            raise SmokeFailure(
                f"{method} {path} answered {response.status_code} with a body that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise SmokeFailure(f"{method} {path} answered {type(data).__name__}, not a JSON object")
        return data

    def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        url = f"{self.api_url}/{path.lstrip('/')}"
        try:
            return self._http.request(method, url, headers=self._headers, json=body)
        except httpx.HTTPError as exc:
            raise SmokeFailure(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _is_waking(response: httpx.Response) -> bool:
        return response.status_code == 503 and _error_text(response).startswith("database_waking")

    @staticmethod
    def _wake_delay(response: httpx.Response) -> float:
        low, fallback, high = WAKE_DELAY_SECONDS
        try:
            seconds = float(response.headers.get("Retry-After", fallback))
        except ValueError:
            seconds = fallback
        return min(high, max(low, seconds))


def path_of(*parts: str) -> str:
    """`/a/b` with every id percent-encoded, as the UI's client does."""
    return "/" + "/".join(quote(part, safe="") for part in parts)


def post_presigned(target: dict[str, Any], filename: str, data: bytes, content_type: str) -> None:
    """The browser's upload: every signed field first, the file last as `file`; no Authorization header."""
    url = str(target.get("url", ""))
    fields = {str(k): str(v) for k, v in (target.get("fields") or {}).items()}
    try:
        response = httpx.post(
            url, data=fields, files={"file": (filename, data, content_type)}, timeout=REQUEST_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise SmokeFailure(f"presigned POST to {url} failed: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise SmokeFailure(f"presigned POST to {url} answered {response.status_code}: {_error_text(response)}")


def socket_url(ws_url: str, token: str) -> str:
    """`ws_url?token=...` (the WebSocket authorizer reads the query string), as the UI builds it."""
    if not token:
        return ws_url
    return f"{ws_url}{'&' if '?' in ws_url else '?'}token={quote(token, safe='')}"


class EventSocket:
    """A WebSocket that sends actions and hands back server events as dicts."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    def send(self, action: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self._connection.send(json.dumps(action))
        except ConnectionClosed as exc:
            raise SmokeFailure(f"the WebSocket closed before {action.get('action')!r} could be sent: {exc}") from exc

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None if none came within `timeout` seconds."""
        from websockets.exceptions import ConnectionClosed

        try:
            raw = self._connection.recv(timeout=max(timeout, 0.0))
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise SmokeFailure(f"the WebSocket closed: {exc}") from exc
        try:
            event = json.loads(raw)
        except (TypeError, ValueError):
            raise SmokeFailure(f"the WebSocket sent a frame that is not JSON: {str(raw)[:200]!r}") from None
        if not isinstance(event, dict):
            raise SmokeFailure(f"the WebSocket sent {type(event).__name__}, not an event object")
        return event

    def close(self) -> None:
        self._connection.close()


def open_socket(ws_url: str, token: str, *, open_timeout: float = 30.0) -> EventSocket:
    """Connect with the token in the query string (a refused handshake says its HTTP status)."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus
    from websockets.sync.client import connect

    try:
        # Entered as a context manager (websockets >= 17.1 warns otherwise); EventSocket.close() exits it.
        connection = connect(socket_url(ws_url, token), open_timeout=open_timeout, max_size=2**22).__enter__()
    except InvalidStatus as exc:
        raise SmokeFailure(f"the WebSocket {ws_url} refused the connection: HTTP {exc.response.status_code}") from exc
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        raise SmokeFailure(f"could not open the WebSocket {ws_url}: {type(exc).__name__}: {exc}") from exc
    return EventSocket(connection)
