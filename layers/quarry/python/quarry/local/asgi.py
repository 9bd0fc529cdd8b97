"""The local API Gateway: an ASGI app that turns HTTP and WebSocket traffic into the events Lambda gets.

- ``/api/*``      -> REST proxy event (Cognito-style claims from the verified token) -> ``lambdas/rest_api``
- ``/ws``         -> the WS authorizer, then ``$connect`` / ``$default`` / ``$disconnect`` handlers
- ``/uploads``    -> the presigned-POST endpoint (policy checked), then an S3 event on the ingest queue
- ``/downloads``  -> the presigned-GET endpoint (signature and expiry checked): a blob, as S3 would serve it
- ``/config.json``-> where the UI finds the API, the WebSocket and its dev identity
- ``/``           -> the built frontend
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from quarry.adapters.blob_keys import object_metadata_fields
from quarry.adapters.downloads import inline_disposition
from quarry.auth import DevTokens, TokenVerifier
from quarry.errors import QuarryError, Unauthorized
from quarry.local.bodies import BodyTooLarge, read_body, read_multipart
from quarry.local.events import rest_event, s3_object_created, ws_authorizer_event, ws_event
from quarry.local.guard import HostGuard, allowed_hosts
from quarry.local.handlers import LocalContext, load_handler, one_at_a_time
from quarry.local.notifier import LocalNotifier
from quarry.local.throttle import TokenBuckets
from quarry.wiring import Services

__all__ = ["INGEST_QUEUE", "LOCAL_BUCKET", "create_app"]

INGEST_QUEUE = "ingest"
LOCAL_BUCKET = "local-uploads"
MAX_REST_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
FORM_OVERHEAD = 64 * 1024  # an upload's policy fields and multipart framing, besides the file itself
PUBLIC_ROUTES = {("GET", "/health"), ("GET", "/openapi.json")}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class LocalGateway:
    def __init__(self, services: Services, verifier: TokenVerifier, dev_tokens: DevTokens | None) -> None:
        self.services = services
        settings = services.settings
        self.throttle = TokenBuckets(settings.local_rate_limit_per_second, settings.local_rate_limit_burst)
        self.verifier = verifier
        self.dev_tokens = dev_tokens
        self.rest = one_at_a_time(load_handler("rest_api"))
        self.ws_authorizer = one_at_a_time(load_handler("ws_authorizer"))
        self.ws_connect = one_at_a_time(load_handler("ws_connect"))
        self.ws_disconnect = one_at_a_time(load_handler("ws_disconnect"))
        self.ws_message = one_at_a_time(load_handler("ws_message"))

    # ------------------------------------------------------------------ REST
    async def api(self, request: Request) -> Response:
        path = "/" + request.path_params.get("path", "")
        # As API Gateway: the caller is authenticated (and throttled) before the body is read, which is
        # then read only up to the payload limit.
        claims = None
        if (request.method, path) not in PUBLIC_ROUTES:
            try:
                identity = self.verifier.verify(request.headers.get("authorization"))
            except Unauthorized as exc:
                return _error(401, exc.code, exc.message)
            claims = {"sub": identity.user, "cognito:groups": ",".join(identity.groups)}
            wait = self.throttle.take(identity.user)
            if wait > 0:
                response = _error(429, "throttled", f"too many requests; retry in {wait:.2f} s")
                response.headers["Retry-After"] = str(max(1, round(wait)))
                return response
        try:
            body = await read_body(request, MAX_REST_BODY)
        except BodyTooLarge:
            return _error(413, "payload_too_large", "request body is over the 10 MB limit")
        event = rest_event(
            method=request.method,
            path=path,
            headers=dict(request.headers),
            query=list(request.query_params.multi_items()),
            body=body,
            claims=claims,
        )
        result: dict[str, Any] = await run_in_threadpool(self.rest, event, LocalContext("rest_api"))
        headers = {k: v for k, v in (result.get("headers") or {}).items() if k.lower() != "content-length"}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            if key.lower() != "content-length" and values:
                headers[key] = values[-1]
        raw = result.get("body") or ""
        content = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return Response(content=content, status_code=result["statusCode"], headers=headers)

    # ------------------------------------------------------------------ WebSocket
    async def websocket(self, ws: WebSocket) -> None:
        query = dict(ws.query_params)
        policy = await run_in_threadpool(self.ws_authorizer, ws_authorizer_event(query), LocalContext("ws_authorizer"))
        allowed = policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
        if not allowed:
            await ws.close(code=4401, reason="unauthorized")
            return
        user = policy["context"]["user"]
        authorizer = dict(policy["context"])  # API Gateway hands the authorizer's context to every route
        connection_id = uuid.uuid4().hex
        await ws.accept()
        outbox: asyncio.Queue[Mapping[str, Any] | tuple[int, str] | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        state = {"open": True}

        def sender(payload: Mapping[str, Any]) -> bool:
            if not state["open"]:
                return False
            loop.call_soon_threadsafe(outbox.put_nowait, payload)
            return True

        def closer(code: int, reason: str) -> None:  # DeleteConnection: close after what was already sent
            state["open"] = False
            loop.call_soon_threadsafe(outbox.put_nowait, (code, reason))

        notifier = self.services.adapters.notifier
        if isinstance(notifier, LocalNotifier):
            notifier.attach(connection_id, sender, closer)
        writer = asyncio.create_task(self._write(ws, outbox, state))
        connect = ws_event("$connect", connection_id, user=user, query=query)
        connect["requestContext"]["authorizer"].update(authorizer)
        await run_in_threadpool(self.ws_connect, connect, LocalContext("ws_connect"))
        try:
            while state["open"]:
                frame = await ws.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                text = frame.get("text")
                binary = text is None  # a binary frame goes on base64-encoded, as API Gateway marks it
                body = base64.b64encode(frame.get("bytes") or b"").decode() if binary else text
                event = ws_event("$default", connection_id, body=body, user=user)
                event["isBase64Encoded"] = binary
                event["requestContext"]["authorizer"].update(authorizer)
                await run_in_threadpool(self.ws_message, event, LocalContext("ws_message"))
        except WebSocketDisconnect:
            pass
        finally:
            state["open"] = False
            if isinstance(notifier, LocalNotifier):
                notifier.detach(connection_id)
            outbox.put_nowait(None)
            await writer
            await run_in_threadpool(
                self.ws_disconnect, ws_event("$disconnect", connection_id, user=user), LocalContext("ws_disconnect")
            )

    @staticmethod
    async def _write(
        ws: WebSocket, outbox: asyncio.Queue[Mapping[str, Any] | tuple[int, str] | None], state: dict[str, bool]
    ) -> None:
        while (payload := await outbox.get()) is not None:
            if isinstance(payload, tuple):  # closed by the server (the Notifier's close)
                state["open"] = False
                with contextlib.suppress(Exception):
                    await ws.close(code=payload[0], reason=payload[1])
                return
            try:
                await ws.send_text(json.dumps(payload))
            except Exception:  # the client went away mid-stream: stop quietly
                state["open"] = False
                return

    # ------------------------------------------------------------------ uploads (S3 presigned POST)
    async def upload(self, request: Request) -> Response:
        blobs = self.services.adapters.blob_store
        verify = getattr(blobs, "verify_post", None)
        if verify is None:
            return _error(404, "not_found", "uploads go to S3 in this configuration")
        # No policy allows more than max_upload_bytes (S3's content-length-range): cap the whole form there.
        limit = self.services.settings.max_upload_bytes
        try:
            form = await read_multipart(request, limit + FORM_OVERHEAD, max_files=1, max_fields=20)
        except BodyTooLarge:
            return _error(413, "payload_too_large", f"upload is over the {limit}-byte limit")
        except Exception:
            return _error(400, "malformed_upload", "expected multipart/form-data with a 'file' field")
        try:
            return await self._store_upload(form, verify)
        finally:
            await form.close()  # the spooled file

    async def _store_upload(self, form: FormData, verify: Callable[..., str]) -> Response:
        blobs = self.services.adapters.blob_store
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "malformed_upload", "the form has no 'file' field")
        data = await upload.read()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            key = verify(fields, size=len(data), content_type=None)
            info = await run_in_threadpool(
                blobs.put,
                key,
                data,
                content_type=fields.get("Content-Type"),
                metadata=object_metadata_fields(fields),  # checked against the policy by ``verify``
            )
        except QuarryError as exc:
            return _error(exc.status, exc.code, exc.message)
        event = s3_object_created(LOCAL_BUCKET, info.key, info.size, info.etag)
        self.services.adapters.bus.send(INGEST_QUEUE, json.dumps(event))  # type: ignore[attr-defined]
        return Response(status_code=204)

    # ------------------------------------------------------------------ downloads (S3 presigned GET)
    async def download(self, request: Request) -> Response:
        blobs = self.services.adapters.blob_store
        verify = getattr(blobs, "verify_get", None)
        if verify is None:
            return _error(404, "not_found", "downloads come from S3 in this configuration")
        try:
            key, filename = verify(dict(request.query_params))
            data = await run_in_threadpool(blobs.get, key)
            info = await run_in_threadpool(blobs.head, key)
        except QuarryError as exc:
            return _error(exc.status, exc.code, exc.message)
        headers = {
            "Content-Disposition": inline_disposition(filename),
            # An uploaded page is served from this origin: never let it run scripts or sniff another type.
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        }
        media_type = (info.content_type if info else None) or "application/octet-stream"
        return Response(data, media_type=media_type, headers=headers)

    # ------------------------------------------------------------------ config and UI
    async def config(self, request: Request) -> JSONResponse:
        scheme = "wss" if request.url.scheme == "https" else "ws"
        host = request.headers.get("host", f"{request.url.hostname}:{request.url.port}")
        auth: dict[str, Any] = {"mode": "none"}
        if self.dev_tokens is not None:  # renewed: the UI fetches this again before `expiresAt`
            token, expires_at = self.dev_tokens.current()
            auth = {"mode": "dev", "token": token, "expiresAt": expires_at}
        return JSONResponse({"apiUrl": "/api", "wsUrl": f"{scheme}://{host}/ws", "auth": auth})


def create_app(
    services: Services, *, verifier: TokenVerifier, dev_tokens: DevTokens | None, frontend_dir: Path | None
) -> Starlette:
    gateway = LocalGateway(services, verifier, dev_tokens)
    routes: list[Any] = [
        Route("/api/{path:path}", gateway.api, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        WebSocketRoute("/ws", gateway.websocket),
        Route("/uploads", gateway.upload, methods=["POST"]),
        Route("/downloads", gateway.download, methods=["GET"]),
        Route("/config.json", gateway.config, methods=["GET"]),
    ]
    if frontend_dir is not None and (frontend_dir / "index.html").is_file():
        routes.append(Mount("/", app=StaticFiles(directory=frontend_dir, html=True)))
    else:
        routes.append(Route("/", lambda r: HTMLResponse(_NO_UI), methods=["GET"]))
    # Only requests for a loopback name (or the configured public one) and from such an origin: no DNS rebinding.
    hosts = allowed_hosts(services.settings.local_public_host)
    app = Starlette(routes=routes, middleware=[Middleware(HostGuard, hosts=hosts)])
    app.state.gateway = gateway
    return app


_NO_UI = """<!doctype html><title>Quarry</title><h1>Quarry is running</h1>
<p>The web UI is not built. Run <code>make frontend</code>, or use the API under <code>/api</code>
(<a href="/api/openapi.json">OpenAPI</a>).</p>"""
