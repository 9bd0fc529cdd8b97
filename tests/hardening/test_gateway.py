"""The local gateway as an attacker meets it (issue #13): DNS rebinding, hostile bodies, the bind address.

Against `quarry serve` in this process (real uvicorn, the real handlers), over raw sockets where the test
is about *when* the server answers: a body over the cap must be refused while the client is still
sending it, and an unauthenticated one before a byte of it is read.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import websockets
from typer.testing import CliRunner

from quarry.auth import DEV_TOKEN_TTL_SECONDS, DevTokens, TokenVerifier
from quarry.settings import Settings
from tests.platform_fixtures import LivePlatform, live, model_registry

__all__ = ["live", "model_registry"]

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def port_of(live: LivePlatform) -> int:
    port = urlsplit(live.base_url).port
    assert port is not None
    return port


def get(live: LivePlatform, path: str, *, host: str | None = None, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", {})
    if host is not None:
        headers["Host"] = host
    return httpx.get(f"{live.base_url}{path}", headers=headers, timeout=30, **kw)


# ============================================================================ DNS rebinding


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "quarry.evil.example.", "10.0.0.5:{port}"])
def test_config_json_is_not_served_to_another_host(live: LivePlatform, host: str) -> None:
    response = get(live, "/config.json", host=host.format(port=port_of(live)))
    assert response.status_code == 421
    assert response.json()["error"]["code"] == "misdirected_request"
    assert "QUARRY_LOCAL_PUBLIC_HOST" in response.json()["error"]["message"]
    assert live.token.split(".")[0] not in response.text


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST"])
def test_config_json_is_served_to_loopback_names_with_a_short_lived_token(live: LivePlatform, host: str) -> None:
    response = get(live, "/config.json", host=host.format(port=port_of(live)))
    assert response.status_code == 200, response.text
    auth = response.json()["auth"]
    claims = jwt.decode(auth["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == DEV_TOKEN_TTL_SECONDS == 12 * 3600
    assert auth["expiresAt"] == claims["exp"] and claims["exp"] > time.time() + 6 * 3600


def test_the_api_answers_only_for_allowed_hosts(live: LivePlatform) -> None:
    auth = {"Authorization": f"Bearer {live.token}"}
    assert get(live, "/api/workspaces", host="evil.example", headers=dict(auth)).status_code == 421
    assert get(live, "/api/workspaces", headers=dict(auth)).status_code == 200


def test_a_state_changing_request_from_a_foreign_origin_is_refused(live: LivePlatform) -> None:
    def create(origin: str) -> httpx.Response:
        headers = live.headers() | {"Origin": origin}
        return httpx.post(f"{live.base_url}/api/workspaces", json={"name": f"from {origin}"}, headers=headers)

    refused = create("http://evil.example")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_origin"
    assert create("null").status_code == 403
    assert create(f"http://localhost:{port_of(live)}").status_code == 201
    names = [w["name"] for w in httpx.get(f"{live.base_url}/api/workspaces", headers=live.headers()).json()["items"]]
    assert not any("evil" in n or n == "from null" for n in names)
    # Reads carry Origin on every cross-origin fetch; the browser's CORS keeps their answers from the page.
    listing = httpx.get(f"{live.base_url}/api/workspaces", headers=live.headers() | {"Origin": "http://evil.example"})
    assert listing.status_code == 200


def _ws_status(live: LivePlatform, url: str | None = None, **kw: Any) -> int:
    """101 when the handshake succeeds, else the HTTP status the server refused it with."""

    async def connect() -> int:
        try:
            async with websockets.connect(f"{url or live.ws_url}?token={live.token}", open_timeout=20, **kw) as ws:
                await ws.send(json.dumps({"action": "ping"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "pong"
                return 101
        except websockets.exceptions.InvalidStatus as exc:
            return int(exc.response.status_code)

    return asyncio.run(connect())


def test_the_websocket_checks_origin_and_host(live: LivePlatform) -> None:
    port = port_of(live)
    assert _ws_status(live, origin="http://evil.example") == 403
    assert _ws_status(live, origin=f"http://evil.example:{port}") == 403
    # A rebound name: the handshake names evil.example while the socket reaches 127.0.0.1.
    assert _ws_status(live, f"ws://evil.example:{port}/ws", host="127.0.0.1", port=port) in (403, 421)
    assert _ws_status(live, origin=f"http://localhost:{port}") == 101
    assert _ws_status(live) == 101  # no Origin: not a browser


def test_the_dev_token_is_renewed_before_it_expires() -> None:
    started = int(time.time()) - 7 * 3600  # the clock is moved by hand; the second token is checked for real
    now = [float(started)]
    tokens = DevTokens(b"s" * 32, ttl_seconds=12 * 3600, clock=lambda: now[0])
    verifier = TokenVerifier(Settings(), dev_secret=b"s" * 32)
    first, first_exp = tokens.current()
    assert first_exp == started + 12 * 3600
    now[0] += 5 * 3600  # more than half its life left: the same token
    assert tokens.current() == (first, first_exp)
    now[0] += 2 * 3600  # 5 h left: a fresh one, good for 12 h from now
    second, second_exp = tokens.current()
    assert second != first and second_exp == int(now[0]) + 12 * 3600
    assert verifier.verify(f"Bearer {second}").user == "local"


def test_serve_refuses_a_non_loopback_address_without_allow_remote(tmp_path: Path) -> None:
    from quarry.cli import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "--allow-remote" in result.output
    assert not (tmp_path / "postgres").exists()  # refused before anything started


def test_allow_remote_warns_and_answers_for_the_bound_address(capsys: pytest.CaptureFixture[str]) -> None:
    from quarry.local.server import _checked_bind

    settings = Settings()
    assert _checked_bind(settings, "127.0.0.1", allow_remote=False) is settings
    remote = _checked_bind(settings, "192.0.2.10", allow_remote=True)
    assert "WARNING" in capsys.readouterr().err and remote.local_public_host == "192.0.2.10"
    assert _checked_bind(settings, "0.0.0.0", allow_remote=True).local_public_host == ""


# ============================================================================ request bodies


@dataclass
class RawExchange:
    status: int
    body: bytes
    sent: int  # body bytes the client got onto the wire before the server answered or hung up


def raw_exchange(live: LivePlatform, head: str, chunks: Iterator[bytes], *, timeout: float = 30) -> RawExchange:
    """Send ``head`` then ``chunks`` from a thread while reading the response: the server may answer early."""
    sock = socket.create_connection(("127.0.0.1", port_of(live)), timeout=timeout)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
    sent, stop = [0], threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:  # the server closed the connection: what an early answer does
            return

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            piece = sock.recv(65536)
            if not piece:
                break
            received += piece
        head_part, _, rest = received.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head_part.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(rest) < length:
            piece = sock.recv(65536)
            if not piece:
                break
            rest += piece
    finally:
        stop.set()
        sent_before_answer = sent[0]
        sock.close()
        sender.join(timeout=10)
    return RawExchange(status=int(head_part.split(b" ")[1]), body=rest, sent=sent_before_answer)


def chunked(total: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """A chunked body of ``total`` bytes of JSON-ish filler, then the terminating chunk."""
    block = b"x" * piece
    for _ in range(total // piece):
        yield f"{piece:x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


def never() -> Iterator[bytes]:
    """No body bytes at all: the server must answer on the headers alone."""
    return iter(())


def test_an_unauthenticated_body_is_refused_before_it_is_read(live: LivePlatform) -> None:
    head = (
        f"POST /api/workspaces HTTP/1.1\nHost: 127.0.0.1:{port_of(live)}\n"
        f"Content-Type: application/json\nContent-Length: {200 * MB}\n"
    )
    answer = raw_exchange(live, head, never(), timeout=15)
    assert answer.status == 401 and answer.sent == 0


def test_a_declared_length_over_the_cap_is_413_before_the_body(live: LivePlatform) -> None:
    head = (
        f"POST /api/workspaces HTTP/1.1\nHost: 127.0.0.1:{port_of(live)}\nAuthorization: Bearer {live.token}\n"
        f"Content-Type: application/json\nContent-Length: {11 * MB}\n"
    )
    answer = raw_exchange(live, head, never(), timeout=15)
    assert answer.status == 413 and json.loads(answer.body)["error"]["code"] == "payload_too_large"


def test_a_chunked_body_is_cut_off_at_the_cap(live: LivePlatform) -> None:
    total = 100 * MB
    head = (
        f"POST /api/workspaces HTTP/1.1\nHost: 127.0.0.1:{port_of(live)}\nAuthorization: Bearer {live.token}\n"
        "Content-Type: application/json\nTransfer-Encoding: chunked\n"
    )
    answer = raw_exchange(live, head, chunked(total))
    assert answer.status == 413 and json.loads(answer.body)["error"]["code"] == "payload_too_large"
    # The 10 MB cap plus what the sockets' buffers hold: the server stopped reading, far short of the 100 MB.
    assert answer.sent < 40 * MB, answer.sent


def test_a_chunked_upload_is_cut_off_at_the_policy_limit(live: LivePlatform) -> None:
    ws = httpx.post(f"{live.base_url}/api/workspaces", json={"name": "uploads"}, headers=live.headers()).json()
    target = httpx.post(
        f"{live.base_url}/api/workspaces/{ws['id']}/documents/upload-url",
        json={"filename": "big.txt", "content_type": "text/plain"},
        headers=live.headers(),
    ).json()
    boundary = "quarryboundary"
    fields = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in target["fields"].items()
    )
    preamble = (
        fields + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    total = 60 * MB  # the fixture's policy allows 200 kB

    def body() -> Iterator[bytes]:
        yield f"{len(preamble):x}\r\n".encode() + preamble + b"\r\n"
        yield from chunked(total)

    head = (
        f"POST /uploads HTTP/1.1\nHost: 127.0.0.1:{port_of(live)}\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\nTransfer-Encoding: chunked\n"
    )
    answer = raw_exchange(live, head, body())
    assert answer.status == 413 and json.loads(answer.body)["error"]["code"] == "payload_too_large"
    assert answer.sent < 30 * MB, answer.sent


# ============================================================================ media type and depth, locally


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("text/plain", '{"name": "plain"}', 415, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", "name=form", 415, "unsupported_media_type"),
        ("application/json", '{"name": ' + "[" * 10_000 + "]" * 10_000 + "}", 400, "malformed_json"),
    ],
)
def test_bodies_that_are_not_bounded_json_are_4xx(
    live: LivePlatform, content_type: str, body: str, status: int, code: str
) -> None:
    headers = live.headers() | {"Content-Type": content_type}
    response = httpx.post(f"{live.base_url}/api/workspaces", content=body, headers=headers, timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
