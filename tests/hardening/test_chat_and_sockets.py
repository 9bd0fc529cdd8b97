"""Chat and WebSocket hardening (issue #13): redelivered chat jobs, cancel by a stranger, expired tokens
on a live socket, binary frames.

Two tiers. The handlers as Lambda runs them, on the in-memory fakes and on DynamoDB in moto (the AWS
side: conditional writes, ownership, the management API's DeleteConnection), with a recording bus and
notifier. Then `quarry serve` in this process, driven as a user would over a real WebSocket (an empty
workspace keeps the LLM out: no passage is relevant, so the answer is "I don't know" without a model call).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import httpx
import pytest
import websockets
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID

from quarry.adapters.apigw_ws import ApiGatewayNotifier
from quarry.adapters.dynamodb import DynamoCancellations, DynamoChatHistory, DynamoConnections, create_tables
from quarry.auth import issue_dev_token
from quarry.local.cancellations import InMemoryCancellations
from quarry.models import Role, new_id, utcnow
from quarry.ports import ChatDelta, ChatTurn
from quarry.protocol import ChatAction, ChatJob
from quarry.services.chat import question_id
from quarry.services.chat_stream import CHAT_TOPIC
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import FakeBlobStore, FakeCatalog, FakeChatHistory, FakeConnections, FakeVectorIndex
from tests.platform_fixtures import LivePlatform, live, model_registry
from tests.unit.lambdas.test_handlers import (
    ALICE,
    HashEmbedder,
    Recorder,
    ScriptedChat,
    chat_job_event,
    event,
    invoke,
)

__all__ = ["live", "model_registry"]  # the `quarry serve` fixtures, used by the live tests below

REGION = "us-east-1"
PREFIX = "qhard"
ENDPOINT = "https://ws123.execute-api.us-east-1.amazonaws.com/prod"
CONNECTION = "PQ2bZdPqIAMCJXA="  # the connection id of tests/events/ws_*.json


class ClosingRecorder(Recorder):
    """The recording bus/notifier of the handler tests, also recording server-side closes."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[tuple[str, int, str]] = []

    def close(self, connection_id: str, *, code: int, reason: str) -> None:
        self.closed.append((connection_id, code, reason))
        self.gone.add(connection_id)


@pytest.fixture
def recorder() -> ClosingRecorder:
    return ClosingRecorder()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """moto in-process; never real AWS, whatever the shell has set."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAQUARRYTESTING000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "quarry-moto-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        create_tables(session.client("dynamodb"), PREFIX)
        yield session


def _dynamo_storage(session: boto3.Session) -> dict[str, Any]:
    client = session.client("dynamodb")
    return {
        "chat_history": DynamoChatHistory(PREFIX, client=client),
        "connections": DynamoConnections(PREFIX, client=client),
        "cancellations": DynamoCancellations(PREFIX, client=client),
    }


def _services(tmp_path: Path, recorder: ClosingRecorder, storage: dict[str, Any]) -> Services:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo("scripted", "scripted", "test"), ScriptedChat)
    overrides = {
        "catalog": FakeCatalog(),
        "vector_index": FakeVectorIndex(),
        "blob_store": FakeBlobStore(),
        "bus": recorder,
        "workflow": recorder,
        "notifier": recorder,
        "models": models,
        **storage,
    }
    built = build_services(Settings(data_dir=tmp_path), overrides=overrides)
    install_services(built)
    return built


@pytest.fixture(params=["fakes", "dynamodb"])
def services(request: pytest.FixtureRequest, tmp_path: Path, recorder: ClosingRecorder) -> Iterator[Services]:
    """The handlers' services with chat history, connections and cancel flags in memory or in DynamoDB (moto)."""
    if request.param == "fakes":
        storage = {
            "chat_history": FakeChatHistory(),
            "connections": FakeConnections(),
            "cancellations": InMemoryCancellations(),
        }
    else:
        storage = _dynamo_storage(request.getfixturevalue("aws"))
    yield _services(tmp_path, recorder, storage)
    reset_services()


def ws_message(body: str, *, user: str = ALICE, connection_id: str = CONNECTION, **fields: Any) -> dict[str, Any]:
    """A $default event from ``user``'s connection (the authorizer context API Gateway hands every route)."""
    message = copy.deepcopy(event("ws_message.json")) | {"body": body, **fields}
    message["requestContext"]["authorizer"] = {"principalId": user, "user": user}
    message["requestContext"]["connectionId"] = connection_id
    return message


def ws_connect(*, expires_at: int) -> dict[str, Any]:
    connect = event("ws_connect.json")
    connect["requestContext"]["authorizer"]["expires_at"] = str(expires_at)  # as ws_authorizer puts it
    return connect


def sent_to(recorder: Recorder, connection_id: str) -> list[dict[str, Any]]:
    return [payload for cid, payload in recorder.sent if cid == connection_id]


# ============================================================================ handlers: redelivery


def test_a_redelivered_chat_job_streams_and_stores_nothing(services: Services, recorder: ClosingRecorder) -> None:
    sqs = chat_job_event("conn-1", "s1", "m1", "How long is leave?")
    assert invoke("chat_worker", sqs) == {"batchItemFailures": []}
    assert invoke("chat_worker", sqs) == {"batchItemFailures": []}  # SQS delivers it again
    duplicate = copy.deepcopy(sqs)  # and SNS fanned it out twice: another SQS message, the same job
    duplicate["Records"][0]["messageId"] = "another-sqs-message"
    assert invoke("chat_worker", duplicate) == {"batchItemFailures": []}

    events = sent_to(recorder, "conn-1")
    assert [e["type"] for e in events] == ["progress"] + ["token"] * 4 + ["final"]  # progress: "writing"
    assert [e["sequence"] for e in events[1:5]] == [0, 1, 2, 3]
    messages = services.sessions.messages(ALICE, "s1").items
    assert [(m.id, m.role, m.content) for m in messages] == [
        (question_id("m1"), Role.USER, "How long is leave?"),
        ("m1", Role.ASSISTANT, "Leave is 27 days."),
    ]


def test_the_next_job_in_the_session_is_answered(services: Services, recorder: ClosingRecorder) -> None:
    invoke("chat_worker", chat_job_event("conn-1", "s2", "m1", "How long is leave?"))
    invoke("chat_worker", chat_job_event("conn-1", "s2", "m2", "And for part-time staff?"))
    finals = [e for e in sent_to(recorder, "conn-1") if e["type"] == "final"]
    assert [f["message_id"] for f in finals] == ["m1", "m2"]
    assert len(services.sessions.messages(ALICE, "s2").items) == 4


class BrokenChat:
    """A model whose stream dies mid-answer with an unexpected error (a bug, a dropped connection)."""

    name, context_tokens = "broken", 2048

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        yield ChatDelta("Leave ")
        raise RuntimeError("the model server went away")


def test_a_job_that_crashes_tells_the_user_and_its_redelivery_does_nothing(
    services: Services, recorder: ClosingRecorder
) -> None:
    services.models.chat_models.register(ModelInfo("broken", "broken", "test"), BrokenChat, default=True)
    sqs = chat_job_event("conn-1", "s4", "m1", "How long is leave?")
    with pytest.raises(BatchProcessingError):  # the batch's only record failed: SQS will deliver it again
        invoke("chat_worker", sqs)
    events = sent_to(recorder, "conn-1")
    assert [e["type"] for e in events] == ["progress", "token", "error"] and events[-1]["code"] == "internal_error"

    assert invoke("chat_worker", sqs) == {"batchItemFailures": []}  # the redelivery: nothing streamed twice
    assert len(sent_to(recorder, "conn-1")) == 3
    assert [m.role for m in services.sessions.messages(ALICE, "s4").items] == [Role.USER]


# ============================================================================ handlers: cancel


def test_cancel_of_someone_elses_session_is_not_found(services: Services, recorder: ClosingRecorder) -> None:
    invoke("chat_worker", chat_job_event("conn-1", "s3", "m1", "How long is leave?"))  # Alice's session
    flags = services.adapters.cancellations

    invoke("ws_message", ws_message(json.dumps({"action": "cancel", "session_id": "s3"}), user="mallory"))
    reply = sent_to(recorder, CONNECTION)[-1]
    assert reply["type"] == "error" and reply["code"] == "not_found"
    assert flags.take("s3") is False  # nothing of Alice's was stopped

    invoke("ws_message", ws_message(json.dumps({"action": "cancel", "session_id": "no-such-session"})))
    assert sent_to(recorder, CONNECTION)[-1]["code"] == "not_found"

    before = len(recorder.sent)
    invoke("ws_message", ws_message(json.dumps({"action": "cancel", "session_id": "s3"})))  # Alice herself
    assert len(recorder.sent) == before  # accepted silently, as before
    assert flags.take("s3") is True


# ============================================================================ handlers: tokens and frames


def _wait_until(epoch_seconds: int) -> None:
    while time.time() < epoch_seconds:
        time.sleep(0.05)


def test_a_message_after_the_token_expired_closes_the_connection(services: Services, recorder: ClosingRecorder) -> None:
    expires = int(time.time()) + 2
    assert invoke("ws_connect", ws_connect(expires_at=expires)) == {"statusCode": 200}
    info = services.adapters.connections.get(CONNECTION)
    assert info is not None and info.token_expires_at == datetime.fromtimestamp(expires, UTC)

    invoke("ws_message", ws_message(json.dumps({"action": "ping"})))
    assert sent_to(recorder, CONNECTION)[-1] == {"type": "pong"} and recorder.closed == []

    _wait_until(expires)
    invoke("ws_message", ws_message(json.dumps({"action": "chat", "text": "still there?"})))
    reply = sent_to(recorder, CONNECTION)[-1]
    assert reply["type"] == "error" and reply["code"] == "token_expired"
    assert recorder.closed == [(CONNECTION, 4401, "token expired")]
    assert recorder.published == []  # the expired user's question went nowhere


def test_a_binary_frame_gets_an_error_event(services: Services, recorder: ClosingRecorder) -> None:
    frame = base64.b64encode(b"\x00\x01\xfe binary").decode()
    assert invoke("ws_message", ws_message(frame, isBase64Encoded=True)) == {"statusCode": 200}
    reply = sent_to(recorder, CONNECTION)[-1]
    assert reply["type"] == "error" and reply["code"] == "unsupported_frame"
    looks_like_json = base64.b64encode(json.dumps({"action": "ping"}).encode()).decode()
    invoke("ws_message", ws_message(looks_like_json, isBase64Encoded=True))
    assert sent_to(recorder, CONNECTION)[-1]["code"] == "unsupported_frame"
    invoke("ws_message", ws_message(json.dumps({"action": "ping"})))
    assert sent_to(recorder, CONNECTION)[-1] == {"type": "pong"}


def test_api_gateway_drops_the_connection_of_an_expired_token(
    aws: boto3.Session, tmp_path: Path, recorder: ClosingRecorder
) -> None:
    """All AWS: the record in DynamoDB, the frames and DeleteConnection on the management API (moto)."""
    storage = _dynamo_storage(aws)
    management = aws.client("apigatewaymanagementapi", endpoint_url=ENDPOINT)
    storage["notifier"] = ApiGatewayNotifier(ENDPOINT, connections=storage["connections"], client=management)
    services = _services(tmp_path, recorder, storage)
    api_gateway = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION]
    held = quote(CONNECTION, safe="")  # moto keys its connections by the id as it appears in the URL
    try:
        expires = int(time.time()) + 2
        invoke("ws_connect", ws_connect(expires_at=expires))
        invoke("ws_message", ws_message(json.dumps({"action": "ping"})))
        assert json.loads(api_gateway.connections[held].data) == {"type": "pong"}

        _wait_until(expires)
        invoke("ws_message", ws_message(json.dumps({"action": "ping"})))
        assert held not in api_gateway.connections  # DeleteConnection
        assert services.adapters.connections.get(CONNECTION) is None  # and the record is gone
        storage["notifier"].close(CONNECTION, code=4401, reason="token expired")  # closing again is harmless
    finally:
        reset_services()


# ============================================================================ `quarry serve`, as a user


def api(live: LivePlatform, method: str, path: str, *, user: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{live.base_url}/api{path}", headers=live.headers(user), timeout=60, **kw)


async def _collect(ws: Any, until: str, *, timeout: float = 120) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
        events.append(message)
        if message["type"] in (until, "error"):
            return events


def _empty_workspace(live: LivePlatform, user: str) -> str:
    created = api(live, "POST", "/workspaces", user=user, json={"name": f"empty-{new_id()[:6]}"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _settle(live: LivePlatform, *, timeout: float = 60) -> None:
    """Until the chat queue holds nothing, in flight or waiting."""
    bus = live.services.adapters.bus
    deadline = time.monotonic() + timeout
    while bus.pending("chat"):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the chat queue did not drain"
        await asyncio.sleep(0.05)


def _publish_twice(live: LivePlatform, job: ChatJob) -> None:
    for _ in range(2):
        live.services.adapters.bus.publish(
            CHAT_TOPIC, job.model_dump(mode="json"), attributes={"topic": CHAT_TOPIC, "direction": "in"}
        )


@pytest.mark.integration
def test_serve_answers_a_redelivered_chat_job_once(live: LivePlatform) -> None:
    user = f"redelivery-{new_id()[:8]}"
    ws_id = _empty_workspace(live, user)
    question = "When does the night ferry leave?"

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], str]:
        async with websockets.connect(f"{live.ws_url}?token={live.token_for(user)}") as ws:
            await ws.send(json.dumps({"action": "chat", "text": question, "workspace_id": ws_id}))
            first = await _collect(ws, "final")
            final = first[-1]
            (connection_id,) = live.services.adapters.connections.of_user(user)
            # The same job again, twice at once: a visibility timeout ran out, SNS delivered it twice.
            request = ChatAction(action="chat", text=question, workspace_id=ws_id, session_id=final["session_id"])
            again = ChatJob(
                connection_id=connection_id,
                user=user,
                session_id=final["session_id"],
                message_id=final["message_id"],
                request=request,
                received_at=utcnow(),
            )
            _publish_twice(live, again)
            await _settle(live)
            # A new job whose very first delivery is duplicated: exactly one of the two answers it.
            fresh_session = new_id()
            fresh = again.model_copy(
                update={
                    "session_id": fresh_session,
                    "message_id": new_id(),
                    "request": request.model_copy(update={"session_id": fresh_session}),
                }
            )
            _publish_twice(live, fresh)
            second = await _collect(ws, "final")
            await _settle(live)
            await ws.send(json.dumps({"action": "ping"}))
            after = await _collect(ws, "pong")
            return first, second, after, fresh_session

    first, second, after, fresh_session = asyncio.run(scenario())
    assert first[-1]["type"] == "final", first
    assert second[-1]["type"] == "final" and second[-1]["session_id"] == fresh_session, second
    for run in (first, second):
        tokens = [e["sequence"] for e in run if e["type"] == "token"]
        assert tokens == list(range(len(tokens)))
    assert after == [{"type": "pong"}]  # no token, no second final: the redeliveries did nothing

    for session_id in (first[-1]["session_id"], fresh_session):
        session = api(live, "GET", f"/sessions/{session_id}", user=user).json()
        assert [m["role"] for m in session["messages"]] == ["user", "assistant"], session


@pytest.mark.integration
def test_serve_refuses_to_cancel_someone_elses_answer(live: LivePlatform) -> None:
    alice, mallory = f"alice-{new_id()[:8]}", f"mallory-{new_id()[:8]}"
    ws_id = _empty_workspace(live, alice)
    flags = live.services.adapters.cancellations

    async def scenario() -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        async with (
            websockets.connect(f"{live.ws_url}?token={live.token_for(alice)}") as mine,
            websockets.connect(f"{live.ws_url}?token={live.token_for(mallory)}") as theirs,
        ):
            await mine.send(json.dumps({"action": "chat", "text": "Is the ferry late?", "workspace_id": ws_id}))
            session_id = (await _collect(mine, "final"))[-1]["session_id"]
            await theirs.send(json.dumps({"action": "cancel", "session_id": session_id}))
            await theirs.send(json.dumps({"action": "ping"}))
            stranger = [json.loads(await asyncio.wait_for(theirs.recv(), 30)) for _ in range(2)]
            stranger_flag = flags.take(session_id)
            await mine.send(json.dumps({"action": "cancel", "session_id": session_id}))
            await mine.send(json.dumps({"action": "ping"}))
            owner = await _collect(mine, "pong")
            assert stranger_flag is False, "another user's cancel raised the flag"
            return session_id, stranger, owner

    session_id, stranger, owner = asyncio.run(scenario())
    assert stranger[0]["type"] == "error" and stranger[0]["code"] == "not_found", stranger
    assert stranger[1] == {"type": "pong"}
    assert owner == [{"type": "pong"}]  # the owner's own cancel is accepted
    assert flags.take(session_id) is True


@pytest.mark.integration
def test_serve_closes_a_socket_whose_token_expired(live: LivePlatform) -> None:
    token = issue_dev_token(live.secret, user=f"brief-{new_id()[:8]}", ttl_seconds=2)
    expires = int(time.time()) + 2

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int | None, str | None]:
        async with websockets.connect(f"{live.ws_url}?token={token}") as ws:
            await ws.send(json.dumps({"action": "ping"}))
            before = json.loads(await asyncio.wait_for(ws.recv(), 30))
            while time.time() < expires + 1:  # +1: the token's own exp is whole seconds, issued a moment ago
                await asyncio.sleep(0.1)
            await ws.send(json.dumps({"action": "ping"}))
            after = json.loads(await asyncio.wait_for(ws.recv(), 30))
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
            return before, after, ws.close_code, ws.close_reason

    before, after, code, reason = asyncio.run(scenario())
    assert before == {"type": "pong"}
    assert after["type"] == "error" and after["code"] == "token_expired", after
    assert (code, reason) == (4401, "token expired")


@pytest.mark.integration
def test_serve_answers_a_binary_frame_with_an_error_and_stays_open(live: LivePlatform) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(f"{live.ws_url}?token={live.token}") as ws:
            await ws.send(b"\x00\x01\xfe not text")
            replies = [json.loads(await asyncio.wait_for(ws.recv(), 30))]
            await ws.send(json.dumps({"action": "ping"}))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            return replies

    replies = asyncio.run(scenario())
    assert replies[0]["type"] == "error" and replies[0]["code"] == "unsupported_frame", replies
    assert replies[1] == {"type": "pong"}
