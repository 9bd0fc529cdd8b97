"""`quarry smoke`: one user's round trip through a running Quarry, over the public protocol only.

Sign in -> create a workspace -> open the WebSocket (ping/pong) -> upload a small document through the
presigned POST -> wait for `processed` (the WebSocket's status push, with REST polling as the fallback) ->
ask over the WebSocket (`token` events, then a `final` citing the document) -> search over REST (the
document is a hit). Whatever the run made is removed in `finally`, also after a failure: the chat
session, the workspace (waited for until it answers 404) and the temporary user. Each step is timed;
the first failing one ends the checks with a message saying what failed.

It runs the same against `quarry serve` (CI) and a deployment, since both speak the same protocol.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from quarry.deployment.smoke_client import EventSocket, RestClient, SmokeFailure, open_socket, path_of, post_presigned
from quarry.deployment.smoke_target import Endpoints, Target

__all__ = ["SMOKE_DOCUMENT", "SmokeDocument", "SmokeOptions", "SmokeReport", "StepResult", "run_smoke"]


@dataclass(frozen=True, slots=True)
class SmokeDocument:
    filename: str
    text: str
    question: str


SMOKE_DOCUMENT = SmokeDocument(
    filename="quarry-smoke.txt",
    text=(
        "Plimsk ferry guide.\n\nThe Plimsk ferry crosses the river Vell every 20 minutes. "
        "A single ticket costs 4 zorbs and children under six travel free.\n\n"
        "The ferry does not run on national holidays."
    ),
    question="How much does a single ferry ticket cost?",
)


@dataclass(frozen=True, slots=True)
class SmokeOptions:
    #: The longest any one waiting step may take (processing, the answer, the workspace's deletion). A
    #: deployment's first Batch job pulls its image and may wake a paused database: minutes, not seconds.
    timeout_seconds: float = 900.0
    #: How often REST is asked for the document's status while no push arrives.
    poll_seconds: float = 3.0
    #: The answer's length cap (the model's `max_tokens`): enough for a cited sentence, cheap on Bedrock.
    max_tokens: int = 64
    document: SmokeDocument = SMOKE_DOCUMENT


@dataclass(slots=True)
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str  # what the step saw, or why it failed


@dataclass(slots=True)
class SmokeReport:
    target: str
    identity: str | None = None
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def failure(self) -> StepResult | None:
        return next((step for step in self.steps if not step.ok), None)

    @property
    def total_seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "ok": self.ok,
            "target": self.target,
            "identity": self.identity,
            "total_seconds": round(self.total_seconds, 3),
            "failed_step": failure.name if failure else None,
            "steps": [{**asdict(step), "seconds": round(step.seconds, 3)} for step in self.steps],
        }


# Keep an idle WebSocket open: API Gateway closes one after 10 minutes without a frame.
_KEEPALIVE_SECONDS = 300.0


class _Run:
    """One smoke run's state: what it has made so far, so the clean-up knows what to remove."""

    def __init__(self, target: Target, options: SmokeOptions, on_step: Callable[[StepResult], None]) -> None:
        self.target, self.options, self.on_step = target, options, on_step
        self.report = SmokeReport(target=target.description)
        self.endpoints: Endpoints | None = None
        self.rest: RestClient | None = None
        self.socket: EventSocket | None = None
        self.workspace_id: str | None = None
        self.document_id: str | None = None
        self.session_id: str | None = None
        self.last_sent = time.monotonic()

    # ------------------------------------------------------------------ bookkeeping

    def step(self, name: str, action: Callable[[], str]) -> None:
        """Run and time one step; a failure is recorded and raised as :class:`SmokeFailure`."""
        started = time.perf_counter()
        try:
            detail, ok = action(), True
        except SmokeFailure as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # a smoke run reports every failure as a step, never as a traceback
            detail, ok = f"{type(exc).__name__}: {exc}", False
        result = StepResult(name=name, ok=ok, seconds=time.perf_counter() - started, detail=detail)
        self.report.steps.append(result)
        self.on_step(result)
        if not ok:
            raise SmokeFailure(detail)

    def cleanup(self, name: str, action: Callable[[], str | None]) -> None:
        """A clean-up step: recorded when it had something to do; a failure does not stop the others."""
        started = time.perf_counter()
        try:
            detail, ok = action(), True
        except Exception as exc:
            detail, ok = f"{exc}" if isinstance(exc, SmokeFailure) else f"{type(exc).__name__}: {exc}", False
        if detail is None:
            return
        result = StepResult(name=name, ok=ok, seconds=time.perf_counter() - started, detail=detail)
        self.report.steps.append(result)
        self.on_step(result)

    @property
    def api(self) -> RestClient:
        assert self.rest is not None
        return self.rest

    @property
    def ws(self) -> EventSocket:
        assert self.socket is not None
        return self.socket

    def send(self, action: dict[str, Any]) -> None:
        self.ws.send(action)
        self.last_sent = time.monotonic()

    def deadline(self) -> float:
        return time.monotonic() + self.options.timeout_seconds

    # ------------------------------------------------------------------ the checks

    def sign_in(self) -> str:
        self.endpoints = self.target.sign_in()
        self.report.identity = self.endpoints.identity
        self.rest = RestClient(self.endpoints.api_url, self.endpoints.token)
        return f"as {self.endpoints.identity}"

    def create_workspace(self) -> str:
        name = f"quarry-smoke-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
        workspace = self.api.json("POST", "/workspaces", {"name": name})
        self.workspace_id = str(workspace["id"])
        return f"{name} ({self.workspace_id}, {workspace.get('embedding_model')})"

    def open_socket(self) -> str:
        assert self.endpoints is not None
        self.socket = open_socket(self.endpoints.ws_url, self.endpoints.token)
        self.send({"action": "ping"})
        deadline = self.deadline()
        while (event := self.ws.receive(deadline - time.monotonic())) is not None:
            if event.get("type") == "pong":
                return f"{self.endpoints.ws_url}: ping answered"
            _raise_on_error(event, "while waiting for pong")
        raise SmokeFailure(f"no pong within {self.options.timeout_seconds:g} s: is the $default route wired?")

    def upload(self) -> str:
        doc = self.options.document
        data = doc.text.encode()
        target = self.api.json(
            "POST",
            path_of("workspaces", self._workspace(), "documents", "upload-url"),
            {"filename": doc.filename, "content_type": "text/plain", "size_bytes": len(data)},
        )
        self.document_id = str(target["document_id"])
        post_presigned(target, doc.filename, data, "text/plain")
        return f"{len(data)} bytes as {target.get('key')}"

    def wait_processed(self) -> str:
        """The status push answers first; REST is asked every `poll_seconds` in case a push is lost."""
        deadline, next_poll, status = self.deadline(), 0.0, "not registered yet"
        while (now := time.monotonic()) < deadline:
            if now >= next_poll:
                status, chunks = self._document_status()
                if status == "processed":
                    return f"{chunks} chunk(s) (seen by polling REST; no status push arrived first)"
                next_poll = now + self.options.poll_seconds
            if now - self.last_sent > _KEEPALIVE_SECONDS:
                self.send({"action": "ping"})
            event = self.ws.receive(min(next_poll, deadline) - time.monotonic())
            if event and event.get("type") == "document_status" and event.get("document_id") == self.document_id:
                status = str(event.get("status"))
                if status == "error":
                    raise SmokeFailure(f"ingestion failed: {event.get('reason') or 'no reason given'}")
                if status == "processed":
                    return f"{event.get('chunk_count')} chunk(s) (status pushed over the WebSocket)"
        raise SmokeFailure(
            f"the document is still {status} after {self.options.timeout_seconds:g} s: check the ingestion "
            "workflow's executions and the Batch job's logs, or allow longer with --timeout"
        )

    def _document_status(self) -> tuple[str, int]:
        path = path_of("workspaces", self._workspace(), "documents", self._document())
        response = self.api.call("GET", path, allow=(404,))
        if response.status_code == 404:  # the upload's event has not registered it yet
            return "not registered yet", 0
        document = response.json()
        if document.get("status") == "error":
            raise SmokeFailure(f"ingestion failed: {document.get('status_reason') or 'no reason given'}")
        return str(document.get("status")), int(document.get("chunk_count") or 0)

    def chat(self) -> str:
        started = time.perf_counter()
        self.send(
            {
                "action": "chat",
                "text": self.options.document.question,
                "workspace_id": self._workspace(),
                "model_kwargs": {"max_tokens": self.options.max_tokens},
            }
        )
        tokens: list[dict[str, Any]] = []
        first_token_at: float | None = None
        deadline = self.deadline()
        while (event := self.ws.receive(deadline - time.monotonic())) is not None:
            kind = event.get("type")
            self.session_id = self.session_id or event.get("session_id")
            if kind == "token":
                tokens.append(event)
                first_token_at = first_token_at or time.perf_counter() - started
            elif kind == "final":
                return self._check_answer(event, tokens, first_token_at)
            else:
                _raise_on_error(event, "instead of an answer")
        raise SmokeFailure(
            f"no final answer within {self.options.timeout_seconds:g} s ({len(tokens)} tokens came): check the "
            "chat worker's logs and its queue's dead letters"
        )

    def _check_answer(self, final: dict[str, Any], tokens: list[dict[str, Any]], first_token_at: float | None) -> str:
        if not tokens:
            raise SmokeFailure("a final answer came without any token event: streaming is broken")
        if [t.get("sequence") for t in tokens] != list(range(len(tokens))):
            raise SmokeFailure("token events came out of order or with gaps")
        citations = final.get("citations") or []
        answer = str(final.get("answer", ""))
        if not any(c.get("document_id") == self.document_id for c in citations):
            raise SmokeFailure(
                f"the answer cites {len(citations)} passages, none from the uploaded document "
                f"(grounded={final.get('grounded')}): {answer[:200]!r}"
            )
        return (
            f"{len(tokens)} tokens, the first after {first_token_at or 0:.2f} s, {len(citations)} citation(s) "
            f"of the document: {answer[:80]!r}"
        )

    def search(self) -> str:
        result = self.api.json(
            "POST",
            path_of("workspaces", self._workspace(), "search"),
            {"query": self.options.document.question, "top_k": 5},
        )
        hits = result.get("hits") or []
        ranks = [n for n, hit in enumerate(hits, 1) if hit.get("document_id") == self.document_id]
        if not ranks:
            raise SmokeFailure(f"the uploaded document is not among the {len(hits)} hits")
        return f"the document is hit {ranks[0]} of {len(hits)} ({result.get('mode')}, {result.get('took_ms')} ms)"

    # ------------------------------------------------------------------ clean-up

    def delete_session(self) -> str | None:
        if self.session_id is None or self.rest is None:
            return None
        self.api.call("DELETE", path_of("sessions", self.session_id), allow=(404,))
        return f"session {self.session_id}"

    def delete_workspace(self) -> str | None:
        """Deletion runs as a workflow: the workspace is gone once GET answers 404."""
        if self.workspace_id is None:
            return None
        path = path_of("workspaces", self.workspace_id)
        self.api.call("DELETE", path, allow=(404,))
        deadline = self.deadline()
        while time.monotonic() < deadline:
            if self.api.call("GET", path, allow=(404,)).status_code == 404:
                return f"{self.workspace_id} is gone"
            time.sleep(min(self.options.poll_seconds, 1.0))
        raise SmokeFailure(
            f"workspace {self.workspace_id} still exists {self.options.timeout_seconds:g} s after its deletion "
            "started: check the deletion workflow's executions, then delete it by hand"
        )

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.rest is not None:
            self.rest.close()

    def _workspace(self) -> str:
        assert self.workspace_id is not None
        return self.workspace_id

    def _document(self) -> str:
        assert self.document_id is not None
        return self.document_id


def _raise_on_error(event: dict[str, Any], when: str) -> None:
    if event.get("type") == "error":
        raise SmokeFailure(f"the server sent error {event.get('code')} {when}: {event.get('message')}")


def run_smoke(
    target: Target, options: SmokeOptions | None = None, *, on_step: Callable[[StepResult], None] | None = None
) -> SmokeReport:
    """Run every check in order, stop at the first failure, and always remove what the run made."""
    run = _Run(target, options or SmokeOptions(), on_step or (lambda _: None))
    try:
        run.step("sign in", run.sign_in)
        run.step("create workspace", run.create_workspace)
        run.step("open WebSocket", run.open_socket)
        run.step("upload", run.upload)
        run.step("processed", run.wait_processed)
        run.step("chat", run.chat)
        run.step("search", run.search)
    except SmokeFailure:
        pass  # recorded by the step; clean up and report
    finally:
        run.cleanup("delete session", run.delete_session)
        run.cleanup("delete workspace", run.delete_workspace)
        run.cleanup("sign out", target.sign_out)
        run.close()
    return run.report
