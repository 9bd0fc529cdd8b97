"""`quarry bench chat`: what the WebSocket path adds to a chat answer.

The local runtime (``quarry.local.server.start_platform``, the very Lambda handlers behind an ASGI app)
runs under uvicorn in a background thread on a free port. Each question is asked three ways, on a small
workspace of generated documents so the answers are grounded:

* ``websocket``: a real WebSocket client sends ``{"action": "chat", ...}`` and times the first ``token``
  event and the ``final`` event (authorizer, ``ws_message`` handler, bus, ``chat_worker``, notifier);
* ``service``: ``ChatService.answer`` called in process (session, retrieval, prompt, model);
* ``model``: the chat model alone on the same grounded prompt the service builds.

The overhead of the WebSocket path is measured per request, not as a difference of two noisy model runs:
the ``final`` event carries the server's own ``first_token_ms`` and ``total_ms`` (counted from the start of
``ChatService.answer``), so ``client time - server time`` is exactly what the gateway, handlers and bus
added to that request. The unpaired difference of medians (websocket - service) is reported as well.

Each way runs over all questions in turn, so no request follows the same prompt (llama.cpp reuses the
evaluated prefix of the previous prompt; all requests share only the system prompt).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from quarry.errors import InvalidInput, UpstreamError
from quarry.evaluation.bench import LatencyStats, latency_stats
from quarry.evaluation.bulk_index import index_documents
from quarry.models import Document, DocumentSource, SearchMode, SearchRequest, Workspace, new_id
from quarry.ports import ParsedDocument
from quarry.services.chat import ChatRequest
from quarry.services.prompts import grounded_turns
from quarry.settings import Settings
from quarry.wiring import Services

__all__ = [
    "BENCH_DOCUMENTS",
    "BENCH_QUESTIONS",
    "OVERHEAD_TARGET_MS",
    "ChatBenchOptions",
    "Timed",
    "free_port",
    "run_chat_bench",
    "serve_in_background",
]

OVERHEAD_TARGET_MS = 50.0
USER = "local"  # the identity of the local runtime's dev token

# Invented facts, so an answer can only come from the documents.
BENCH_DOCUMENTS: tuple[tuple[str, str], ...] = (
    (
        "Veltrana Observatory",
        "The Veltrana Observatory stands on Mount Orrin at 3,412 metres. It was opened in 1987 by the "
        "astronomer Ilse Marrow. Its main telescope has a mirror 4.2 metres across.",
    ),
    (
        "Kessel Bay ferries",
        "Ferries leave Kessel Bay every 40 minutes for the island of Durn. The crossing takes 25 minutes. "
        "The oldest ferry, the Marigold, was built in 1964.",
    ),
    (
        "Amberleaf tea",
        "Amberleaf tea is grown on the terraces of the Sorrel Valley. The leaves are picked in late April "
        "and dried over beech wood for two days, which gives the tea its smoky taste.",
    ),
    (
        "Tollan rail line",
        "The Tollan rail line links Pell to Varo over 212 kilometres. Trains run at up to 160 km/h and "
        "the fastest service takes 1 hour and 38 minutes. The line opened in 2011.",
    ),
    (
        "Quill & Ember bookshop",
        "The Quill & Ember bookshop in Harrow Lane was founded in 1921 by the Pike sisters. It holds about "
        "30,000 second-hand books and hosts a poetry evening every first Thursday.",
    ),
    (
        "Northwind festival",
        "The Northwind kite festival takes place each September on the dunes of Carrick. In 2019 it drew "
        "18,000 visitors. The record kite, flown in 2016, measured 310 square metres.",
    ),
)
BENCH_QUESTIONS: tuple[str, ...] = (
    "Who opened the Veltrana Observatory?",
    "How long does the ferry crossing from Kessel Bay to Durn take?",
    "How is Amberleaf tea dried?",
    "How long is the Tollan rail line?",
    "When was the Quill & Ember bookshop founded?",
    "How many visitors did the Northwind festival draw in 2019?",
    "How high is the Veltrana Observatory?",
    "When did the Tollan rail line open?",
)


@dataclass(frozen=True, slots=True)
class ChatBenchOptions:
    questions: int = 5
    max_tokens: int = 32
    host: str = "127.0.0.1"
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if not 1 <= self.questions <= len(BENCH_QUESTIONS):
            raise InvalidInput(f"questions must be within 1..{len(BENCH_QUESTIONS)}")
        if self.max_tokens < 1:
            raise InvalidInput("max_tokens must be at least 1")


@dataclass(frozen=True, slots=True)
class Timed:
    """One answer: client-side times, and the server's own times when the server reported them."""

    way: str
    question: str
    first_token_ms: float | None
    total_ms: float
    server_first_token_ms: float | None = None
    server_total_ms: float | None = None
    tokens: int = 0
    session_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "way": self.way,
            "question": self.question,
            "first_token_ms": self.first_token_ms,
            "total_ms": self.total_ms,
            "server_first_token_ms": self.server_first_token_ms,
            "server_total_ms": self.server_total_ms,
            "tokens": self.tokens,
        }


# --------------------------------------------------------------------------- the runtime, in the background


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_background(app: Any, *, host: str, port: int, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a daemon thread; yields ``host:port`` once it accepts connections."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", ws_max_size=1 << 20)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise UpstreamError(f"the local runtime did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _quiet_handler_logs() -> None:
    """The Lambda handlers log each request at INFO; a benchmark wants warnings only."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("quarry-"):
            logging.getLogger(name).setLevel(logging.WARNING)


def bench_workspace(services: Services, user: str = USER) -> Workspace:
    from quarry.services.workspaces import WorkspaceSpec

    workspace = services.workspaces.create(user, WorkspaceSpec(name=f"bench-chat-{new_id()[:8]}"))
    items = [
        (
            Document(id=f"bench-doc-{n}", workspace_id=workspace.id, name=title, source=DocumentSource.TEXT),
            ParsedDocument(text=text, title=title),
        )
        for n, (title, text) in enumerate(BENCH_DOCUMENTS, 1)
    ]
    index_documents(services, workspace, items)
    return workspace


# --------------------------------------------------------------------------- the three ways


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def ask_websocket(connection: Any, workspace_id: str, question: str, *, max_tokens: int, timeout_s: float) -> Timed:
    message = {
        "action": "chat",
        "text": question,
        "workspace_id": workspace_id,
        "model_kwargs": {"temperature": 0.0, "max_tokens": max_tokens},
    }
    started = time.perf_counter()
    connection.send(json.dumps(message))
    first: float | None = None
    tokens = 0
    deadline = started + timeout_s
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise UpstreamError(f"no final answer within {timeout_s:.0f} s")
        event = json.loads(connection.recv(timeout=remaining))
        kind = event.get("type")
        if kind == "token" and event.get("text"):
            tokens += 1
            first = first if first is not None else _ms(started)
        elif kind == "final":
            timings = event.get("timings") or {}
            return Timed(
                way="websocket",
                question=question,
                first_token_ms=first,
                total_ms=_ms(started),
                server_first_token_ms=timings.get("first_token_ms"),
                server_total_ms=timings.get("total_ms"),
                tokens=tokens,
                session_id=event.get("session_id"),
            )
        elif kind == "error":
            raise UpstreamError(f"chat failed over the WebSocket: {event.get('code')}: {event.get('message')}")


def ask_service(services: Services, workspace_id: str, question: str, *, max_tokens: int) -> Timed:
    first: list[float] = []
    started = time.perf_counter()

    def on_token(text: str) -> None:
        if text and not first:
            first.append(_ms(started))

    request = ChatRequest(user=USER, text=question, workspace_id=workspace_id, temperature=0.0, max_tokens=max_tokens)
    outcome = services.chat.answer(request, on_token=on_token)
    total = _ms(started)
    services.sessions.delete(USER, outcome.session.id)
    timings = outcome.answer.timings
    return Timed(
        way="service",
        question=question,
        first_token_ms=first[0] if first else None,
        total_ms=total,
        server_first_token_ms=timings.get("first_token_ms"),
        server_total_ms=timings.get("total_ms"),
        tokens=outcome.answer.usage.completion_tokens,
    )


def ask_model(services: Services, workspace: Workspace, question: str, *, max_tokens: int) -> Timed:
    """The model alone, on the grounded prompt the chat service would build (retrieval not timed)."""
    hits = services.search.search_workspace(
        workspace, SearchRequest(workspace_id=workspace.id, query=question, top_k=5, mode=SearchMode.HYBRID)
    ).hits
    floor = services.settings.min_relevance
    turns = grounded_turns(question, [h for h in hits if h.dense_score is not None and h.dense_score >= floor])
    model = services.models.chat_models.get()
    first: float | None = None
    tokens = 0
    started = time.perf_counter()
    for delta in model.stream(turns, max_tokens=max_tokens, temperature=0.0):
        if delta.text:
            tokens += 1
            first = first if first is not None else _ms(started)
    return Timed(way="model", question=question, first_token_ms=first, total_ms=_ms(started), tokens=tokens)


# --------------------------------------------------------------------------- the run


def _stats(values: Sequence[float | None]) -> LatencyStats | None:
    present = [v for v in values if v is not None]
    return latency_stats(present) if present else None


def _way_summary(runs: Sequence[Timed]) -> dict[str, Any]:
    first = _stats([r.first_token_ms for r in runs])
    total = _stats([r.total_ms for r in runs])
    return {"first_token": first.to_dict() if first else None, "total": total.to_dict() if total else None}


def _overhead(ws: Sequence[Timed], service: Sequence[Timed]) -> dict[str, Any]:
    first = [
        max(r.first_token_ms - r.server_first_token_ms, 0.0)
        for r in ws
        if r.first_token_ms is not None and r.server_first_token_ms is not None
    ]
    total = [max(r.total_ms - r.server_total_ms, 0.0) for r in ws if r.server_total_ms is not None]
    if not first or not total:
        raise UpstreamError("the WebSocket answers carried no server timings to compare with")
    first_stats, total_stats = latency_stats(first), latency_stats(total)
    ws_first, service_first = _stats([r.first_token_ms for r in ws]), _stats([r.first_token_ms for r in service])
    unpaired = ws_first.p50_ms - service_first.p50_ms if ws_first and service_first else None
    return {
        "first_token": first_stats.to_dict(),
        "total": total_stats.to_dict(),
        "first_token_p50_vs_service_p50_ms": unpaired,
        "method": "per request: client time minus the server's own time from ChatService.answer (final.timings)",
        "target_ms": OVERHEAD_TARGET_MS,
        "meets_target": first_stats.p50_ms < OVERHEAD_TARGET_MS,
    }


def _over_websocket(address: str, token: str, workspace: Workspace, options: ChatBenchOptions) -> list[Timed]:
    """A warm-up question, then the timed ones, on one connection. The warm-up comes first in the list."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    questions = (BENCH_QUESTIONS[-1], *BENCH_QUESTIONS[: options.questions])
    try:
        with connect(f"ws://{address}/ws?token={token}", proxy=None, ping_interval=None, open_timeout=30) as conn:
            return [
                ask_websocket(conn, workspace.id, q, max_tokens=options.max_tokens, timeout_s=options.timeout_s)
                for q in questions
            ]
    except (OSError, WebSocketException) as exc:
        raise UpstreamError(f"WebSocket chat through the local runtime failed: {exc}") from exc


def _measure(
    services: Services, workspace: Workspace, address: str, token: str, options: ChatBenchOptions
) -> dict[str, list[Timed]]:
    questions = BENCH_QUESTIONS[: options.questions]
    runs: dict[str, list[Timed]] = {}
    ws_runs = _over_websocket(address, token, workspace, options)
    for run in ws_runs:
        if run.session_id:
            services.sessions.delete(USER, run.session_id)
    runs["websocket"] = ws_runs[1:]
    ask_service(services, workspace.id, BENCH_QUESTIONS[-2], max_tokens=options.max_tokens)  # warm-up
    runs["service"] = [ask_service(services, workspace.id, q, max_tokens=options.max_tokens) for q in questions]
    runs["model"] = [ask_model(services, workspace, q, max_tokens=options.max_tokens) for q in questions]
    return runs


def run_chat_bench(settings: Settings, options: ChatBenchOptions | None = None) -> dict[str, Any]:
    """Start the local runtime, ask the questions the three ways, and return the figures."""
    options = options or ChatBenchOptions()
    # The handlers write logs and metrics (EMF) on stdout, where the benchmark prints its JSON.
    with contextlib.redirect_stdout(sys.stderr):
        return _run(settings, options)


def _run(settings: Settings, options: ChatBenchOptions) -> dict[str, Any]:
    from quarry.local.server import start_platform
    from quarry.wiring import reset_services

    port = free_port(options.host)
    platform = start_platform(settings, host=options.host, port=port, warm_up=False)
    services = platform.services
    try:
        _quiet_handler_logs()
        for provider in (services.models.embedders, services.models.chat_models):
            getattr(provider.get(), "warm_up", lambda: None)()  # remote models have nothing to load
        model = services.models.chat_models.info()
        workspace = bench_workspace(services)
        try:
            with serve_in_background(platform.app, host=options.host, port=port) as address:
                runs = _measure(services, workspace, address, platform.dev_token, options)
        finally:
            services.workspaces.purge(workspace.id)
    finally:
        platform.close()
        reset_services()
    return {
        "questions": options.questions,
        "max_tokens": options.max_tokens,
        "model": model.id,
        "corpus": {"documents": len(BENCH_DOCUMENTS)},
        "websocket": _way_summary(runs["websocket"]),
        "service": _way_summary(runs["service"]),
        "model_only": _way_summary(runs["model"]),
        "overhead_ms": _overhead(runs["websocket"], runs["service"]),
        "runs": [r.to_dict() for way in runs.values() for r in way],
    }
