"""Loopback HTTP servers that answer the AWS APIs moto cannot, in their real wire formats.

- :class:`ManagementApi`: API Gateway's WebSocket management API (``POST/GET/DELETE /{stage}/@connections/{id}``);
  it records the frames posted to each connection and answers 410 ``GoneException`` for a connection it
  does not hold, as AWS does.
- :class:`ModelApis`: Bedrock Runtime (``/model/{id}/converse-stream`` answered as an
  ``application/vnd.amazon.eventstream`` of a recorded ConverseStream, or for a summary job's request the
  points of its document (:func:`summary_answer`); ``/model/{id}/invoke`` for Titan
  embeddings, computed by the packaged MiniLM padded to the requested dimensions so retrieval is real) and
  SageMaker Runtime (``/endpoints/{name}/invocations``, answered by the endpoint's own inference code from
  its staged model archive), and Bedrock Rerank (``/rerank`` on bedrock-agent-runtime).
- :class:`DataApi`: the RDS Data API over HTTP, answered by ``tests.aws.rds_data_emulator`` on the
  rehearsal's PostgreSQL.

Every request is recorded (method, path, headers, body) so tests can see what crossed the wire.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.aws.botocore_replay import event

__all__ = ["DataApi", "LoopbackServer", "ManagementApi", "ModelApis", "Request", "recorded_answer", "summary_answer"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 whose requests go to ``self.answer``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                owner.requests.append(request)
                try:
                    response = owner.answer(request)
                except Exception as exc:  # a bug in the double: answer 500 with the reason
                    response = Response(500, json.dumps({"message": f"{type(exc).__name__}: {exc}"}).encode())
                self.send_response(response.status)
                headers = {"content-type": "application/json", **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(response.body)))
                self.send_header("x-amzn-requestid", "rehearsal")
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_DELETE = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, request: Request) -> Response:
        raise NotImplementedError

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ManagementApi(LoopbackServer):
    """The WebSocket side of API Gateway: connections the test opened, and the frames pushed to them."""

    def __init__(self) -> None:
        super().__init__()
        self.open: set[str] = set()
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def connect(self, connection_id: str) -> None:
        self.open.add(connection_id)

    def answer(self, request: Request) -> Response:
        parts = urlsplit(request.path).path.split("/@connections/")
        if len(parts) != 2:
            return Response(404, b'{"message": "Not Found"}')
        connection_id = unquote(parts[1])
        if connection_id not in self.open:
            return Response(410, b'{"message": "Gone"}', {"x-amzn-errortype": "GoneException"})
        if request.method == "POST":
            self.frames[connection_id].append(json.loads(request.body))
            return Response(200)
        if request.method == "DELETE":
            self.open.discard(connection_id)
            return Response(204)
        return Response(200, json.dumps({"connectedAt": "2026-12-04T00:00:00Z"}).encode())


def recorded_answer() -> str:
    """The model's answer in the recorded ConverseStream: cites the first source, as the prompt asks."""
    return "Employees get 25 days of paid leave a year [1]."


_NEGATIVE = re.compile(r"\b(not|no|never|but|broke|broken|too|cheap)\b", re.IGNORECASE)


def summary_answer(messages: list[dict[str, Any]]) -> str | None:
    """A stand-in model's answer to a summary job's request for one document's points, or None when the
    conversation is not one: worked examples (user/assistant turns), then ``Document: <text>``. It answers
    the way the examples do: each sentence's first words (at most six) as a point, followed by ``(bad)``
    when the sentence sounds negative, else ``(good)``, if the examples judge their points; separated by
    ``" | "``; ``NONE`` for a document without a sentence. Depends on its input alone."""

    def text(message: dict[str, Any]) -> str:
        return " ".join(part.get("text", "") for part in message.get("content", []))

    users = [text(m) for m in messages if m.get("role") == "user"]
    examples = [text(m) for m in messages if m.get("role") == "assistant"]
    if not users or not examples or "Document:" not in users[-1]:
        return None
    document = users[-1].split("Document:", 1)[1]
    judged = any("(good)" in e or "(bad)" in e for e in examples)
    points = []
    for sentence in re.split(r"(?<=[.!?])\s+", document.strip()):
        words = sentence.strip().rstrip(".!?").split()
        if not words:
            continue
        point = " ".join(words[:6]).lower()
        if judged:
            point += " (bad)" if _NEGATIVE.search(sentence) else " (good)"
        points.append(point)
    return " | ".join(points) or "NONE"


class ModelApis(LoopbackServer):
    """Bedrock Runtime and SageMaker Runtime, answered in their wire formats."""

    def __init__(
        self,
        embed: Callable[[list[str]], list[list[float]]],
        sagemaker: Callable[[bytes, str, str], bytes] | None = None,
    ) -> None:
        """``embed`` computes Titan's vectors; ``sagemaker(body, content_type, accept)`` is the endpoint's
        inference handler (input_fn -> predict_fn -> output_fn), raising ValueError for a bad request."""
        super().__init__()
        self.embed = embed
        self._sagemaker = sagemaker

    def answer(self, request: Request) -> Response:
        path = unquote(urlsplit(request.path).path)
        if path.startswith("/endpoints/"):
            body: Any = {}
        else:
            body = json.loads(request.body or b"{}")
        if path.startswith("/model/") and path.endswith("/converse-stream"):
            return self._converse_stream(body)
        if path.startswith("/model/") and path.endswith("/invoke") and "titan-embed" in path:
            dimensions = int(body.get("dimensions", 1024))
            vector = self.embed([body["inputText"]])[0]
            padded = [*vector, *[0.0] * (dimensions - len(vector))]
            return Response(
                200, json.dumps({"embedding": padded, "inputTextTokenCount": len(body["inputText"].split())}).encode()
            )
        if path == "/rerank" and request.method == "POST":
            return self._rerank(body)
        if path.startswith("/endpoints/") and path.endswith("/invocations") and self._sagemaker:
            return self._invoke_endpoint(request, path.split("/")[2])
        return Response(
            404,
            json.dumps({"message": f"the rehearsal has no recording for {path}"}).encode(),
            {"x-amzn-errortype": "ResourceNotFoundException"},
        )

    def _rerank(self, body: dict[str, Any]) -> Response:
        """bedrock-agent-runtime Rerank: results by relevance (computed as MiniLM cosine: a stand-in score in
        the real answer's shape), ``numberOfResults`` of them."""
        query = body["queries"][0]["textQuery"]["text"]
        passages = [s["inlineDocumentSource"]["textDocument"]["text"] for s in body["sources"]]
        wanted = body["rerankingConfiguration"]["bedrockRerankingConfiguration"].get("numberOfResults", len(passages))
        q, *docs = self.embed([query, *passages])
        scores = [sum(a * b for a, b in zip(q, d, strict=True)) for d in docs]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:wanted]
        results = [{"index": i, "relevanceScore": max(0.0, scores[i])} for i in ranked]
        return Response(200, json.dumps({"results": results}).encode())

    def _invoke_endpoint(self, request: Request, endpoint: str) -> Response:
        """InvokeEndpoint: the container's answer as the body, its media type as Content-Type; a container
        error is SageMaker's ``ModelError`` (424) carrying the container's status and message."""
        assert self._sagemaker is not None
        content_type = request.headers.get("content-type", "application/json")
        accept = request.headers.get("accept", "application/json")
        try:
            body = self._sagemaker(request.body, content_type, accept)
        except ValueError as exc:
            message = {
                "message": f'Received client error (400) from primary with message "{exc}"',
                "OriginalStatusCode": 400,
                "LogStreamArn": f"/aws/sagemaker/Endpoints/{endpoint}",
            }
            return Response(424, json.dumps(message).encode(), {"x-amzn-errortype": "ModelError"})
        media = "application/x-npy" if body[:6] == b"\x93NUMPY" else "application/json"
        return Response(200, body, {"content-type": media, "x-amzn-invoked-production-variant": "AllTraffic"})

    def _converse_stream(self, body: dict[str, Any]) -> Response:
        text = summary_answer(body.get("messages", [])) or recorded_answer()
        pieces = [text[i : i + 9] for i in range(0, len(text), 9)]
        frames = [event("messageStart", {"role": "assistant"})]
        frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
        frames += [
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "end_turn"}),
            event(
                "metadata",
                {"usage": {"inputTokens": 420, "outputTokens": 14, "totalTokens": 434}, "metrics": {"latencyMs": 300}},
            ),
        ]
        return Response(200, b"".join(frames), {"content-type": "application/vnd.amazon.eventstream"})


class DataApi(LoopbackServer):
    """The RDS Data API for the rehearsal's PostgreSQL (``emulator`` is a ``DataApiEmulator``)."""

    def __init__(self, emulator: Any) -> None:
        super().__init__()
        self.emulator = emulator

    def answer(self, request: Request) -> Response:
        @dataclass
        class _Prepared:  # what the emulator reads of botocore's prepared request
            url: str
            body: bytes

        reply = self.emulator._send(_Prepared("https://rds-data.us-east-1.amazonaws.com" + request.path, request.body))
        data = b"".join(reply.raw.stream())
        return Response(reply.status_code, data, {k.lower(): v for k, v in reply.headers.items()})
