"""The Lambda handlers called with events shaped exactly like AWS's (tests/events/*.json).

The infrastructure behind them is the in-memory fakes of tests/fakes.py (each passes the same contract
suites as the real adapters); what is under test is the handlers: parsing, auth context, batching,
status codes and the messages they send.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from quarry.auth import TokenVerifier
from quarry.local.handlers import LocalContext, load_handler, load_module
from quarry.models import Document, DocumentSource, DocumentStatus, Role, Usage
from quarry.ports import ChatDelta, ChatTurn, WorkflowName
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import fake_overrides

EVENTS = Path(__file__).resolve().parents[2] / "events"
ALICE = "7d8ca528-4931-4254-9273-ea5ee853f271"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def chat_job_event(connection_id: str, session_id: str, message_id: str, text: str) -> dict[str, Any]:
    """An SQS event carrying one ChatJob in an SNS envelope, as the chat queue delivers it."""
    job = {
        "direction": "in",
        "connection_id": connection_id,
        "user": ALICE,
        "session_id": session_id,
        "message_id": message_id,
        "request": {"action": "chat", "text": text},
        "received_at": "2026-11-22T05:00:05Z",
    }
    sqs = event("sqs_sns_chat_job.json")
    envelope = json.loads(sqs["Records"][0]["body"])
    envelope["Message"] = json.dumps(job)
    sqs["Records"][0]["body"] = json.dumps(envelope)
    return sqs


class HashEmbedder:
    """Bag of hashed words: deterministic, enough for the handlers' plumbing."""

    name, dimensions = "hash-16", 16

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        v = [0.0] * self.dimensions
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norm = sum(x * x for x in v) ** 0.5 or 1.0
        return [x / norm for x in v]


class ScriptedChat:
    name, context_tokens = "scripted", 2048

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        for piece in ["Leave ", "is ", "27 ", "days."]:
            yield ChatDelta(piece)
        yield ChatDelta("", usage=Usage(prompt_tokens=10, completion_tokens=4))


class Recorder:
    """Bus, workflow and notifier at once: records what the handlers send out."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.started: list[tuple[WorkflowName, dict[str, Any], str | None]] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.gone: set[str] = set()

    def publish(self, topic: str, message: Mapping[str, Any], *, attributes: Mapping[str, str] | None = None) -> None:
        self.published.append((topic, dict(message), dict(attributes or {})))

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        if any(r == run_id for _, _, r in self.started):
            return f"exec-{run_id}"
        self.started.append((name, dict(payload), run_id))
        return f"exec-{run_id}"

    def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
        if connection_id in self.gone:
            return False
        self.sent.append((connection_id, dict(payload)))
        return True


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def services(tmp_path: Path, recorder: Recorder) -> Iterator[Services]:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo("scripted", "scripted", "test"), ScriptedChat)
    overrides = fake_overrides(recorder, models)
    built = build_services(
        Settings(data_dir=tmp_path, cognito_user_pool_id="us-east-1_Example", cognito_client_id="5lnc4lb1q1example"),
        overrides=overrides,
    )
    install_services(built)
    yield built
    reset_services()


def invoke(name: str, payload: dict[str, Any]) -> Any:
    return load_handler(name)(payload, LocalContext(name))


# ============================================================================ REST


def test_rest_create_then_list_with_cognito_claims(services: Services) -> None:
    created = invoke("rest_api", event("apigw_rest_post_workspaces.json"))
    assert created["statusCode"] == 201
    body = json.loads(created["body"])
    assert body["owner"] == ALICE and body["chunk_size"] == 128 and body["embedding_model"] == "hash-16"

    listing = event("apigw_rest_post_workspaces.json") | {"httpMethod": "GET", "body": None}
    listing["requestContext"] = listing["requestContext"] | {"httpMethod": "GET"}
    items = json.loads(invoke("rest_api", listing)["body"])["items"]
    assert [w["id"] for w in items] == [body["id"]]


def test_rest_another_user_gets_404_and_no_authorizer_gets_401(services: Services) -> None:
    ws = json.loads(invoke("rest_api", event("apigw_rest_post_workspaces.json"))["body"])
    other = event("apigw_rest_post_workspaces.json")
    other |= {"httpMethod": "GET", "body": None, "path": f"/workspaces/{ws['id']}", "resource": "/workspaces/{id}"}
    other["requestContext"]["authorizer"]["claims"]["sub"] = "mallory"
    response = invoke("rest_api", other)
    assert response["statusCode"] == 404 and json.loads(response["body"])["error"]["code"] == "not_found"

    anonymous = event("apigw_rest_post_workspaces.json")
    del anonymous["requestContext"]["authorizer"]
    response = invoke("rest_api", anonymous)
    assert response["statusCode"] == 401


def test_rest_malformed_and_invalid_bodies(services: Services) -> None:
    malformed = event("apigw_rest_post_workspaces.json") | {"body": "{not json"}
    response = invoke("rest_api", malformed)
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"]["code"] == "malformed_json"
    invalid = event("apigw_rest_post_workspaces.json") | {"body": json.dumps({"name": "x", "surprise": 1})}
    response = invoke("rest_api", invalid)
    assert response["statusCode"] == 422 and "surprise" in json.loads(response["body"])["error"]["message"]


# ============================================================================ WebSocket


def test_ws_connect_message_disconnect(services: Services, recorder: Recorder) -> None:
    assert invoke("ws_connect", event("ws_connect.json")) == {"statusCode": 200}
    assert services.adapters.connections.user_of("PQ2bZdPqIAMCJXA=") == ALICE

    assert invoke("ws_message", event("ws_message.json")) == {"statusCode": 200}
    assert recorder.sent[-1] == ("PQ2bZdPqIAMCJXA=", {"type": "pong"})

    for body, code in [
        ("{oops", "malformed_json"),
        ('{"action": "dance"}', "invalid_message"),
        ("x" * 40_000, "payload_too_large"),
    ]:
        invoke("ws_message", event("ws_message.json") | {"body": body})
        assert recorder.sent[-1][1]["type"] == "error" and recorder.sent[-1][1]["code"] == code

    ws = services.workspaces.create(ALICE, WorkspaceSpec(name="w"))
    chat = {"action": "chat", "text": "How long is leave?", "workspace_id": ws.id}
    invoke("ws_message", event("ws_message.json") | {"body": json.dumps(chat)})
    topic, job, attributes = recorder.published[-1]
    assert topic == "chat.in" and attributes == {"topic": "chat.in", "direction": "in"}
    assert (
        job["user"] == ALICE and job["connection_id"] == "PQ2bZdPqIAMCJXA=" and job["request"]["text"] == chat["text"]
    )

    assert invoke("ws_disconnect", event("ws_connect.json")) == {"statusCode": 200}
    assert services.adapters.connections.user_of("PQ2bZdPqIAMCJXA=") is None


def test_chat_worker_streams_tokens_then_final_and_persists(services: Services, recorder: Recorder) -> None:
    sqs = chat_job_event("conn-1", "s1", "m1", "How long is leave?")
    assert invoke("chat_worker", sqs) == {"batchItemFailures": []}
    events = [p for c, p in recorder.sent if c == "conn-1"]
    assert [e["type"] for e in events] == ["progress"] + ["token"] * 4 + ["final"]
    assert events[0]["phase"] == "writing"  # no workspace: nothing to search
    assert [e["sequence"] for e in events[1:5]] == [0, 1, 2, 3]
    assert events[-1]["answer"] == "Leave is 27 days." and events[-1]["usage"]["completion_tokens"] == 4
    messages = services.sessions.messages(ALICE, "s1").items
    assert [(m.role, m.content) for m in messages] == [
        (Role.USER, "How long is leave?"),
        (Role.ASSISTANT, "Leave is 27 days."),
    ]


def test_chat_worker_reports_a_malformed_record_alone(services: Services) -> None:
    sqs = event("sqs_sns_chat_job.json")
    broken = copy.deepcopy(sqs["Records"][0]) | {"messageId": "broken", "body": "not json"}
    sqs["Records"].append(broken)
    envelope = json.loads(sqs["Records"][0]["body"])
    envelope["Message"] = json.dumps(
        {
            "direction": "in",
            "connection_id": "c",
            "user": ALICE,
            "session_id": "s2",
            "message_id": "m2",
            "request": {"action": "chat", "text": "hi"},
            "received_at": "2026-11-22T05:00:05Z",
        }
    )
    sqs["Records"][0]["body"] = json.dumps(envelope)
    assert invoke("chat_worker", sqs) == {"batchItemFailures": [{"itemIdentifier": "broken"}]}


# ============================================================================ ingestion


def test_ingest_trigger_registers_once_ignores_test_events_and_isolates_bad_records(
    services: Services, recorder: Recorder
) -> None:
    ws = services.workspaces.create(ALICE, WorkspaceSpec(name="docs"))
    sqs = json.loads(json.dumps(event("sqs_s3_object_created.json")).replace("WS_ID", ws.id).replace("DOC_ID", "d1"))
    result = invoke("ingest_trigger", sqs)
    assert result == {"batchItemFailures": [{"itemIdentifier": "3f5e7a39-bad0-4d8b-9a0c-5ef0d2c1a9aa"}]}
    document = services.adapters.catalog.get_document(ws.id, "d1")
    assert document is not None and document.name == "annual leave.txt"  # the key arrives URL-encoded
    assert document.status is DocumentStatus.CREATED and document.content_type == "text/plain"
    assert [(n, p) for n, p, _ in recorder.started] == [
        (WorkflowName.INGEST, {"workspace_id": ws.id, "document_id": "d1"})
    ]
    invoke("ingest_trigger", sqs)  # redelivered: nothing new starts
    assert len(recorder.started) == 1


def test_ingest_status_steps_and_the_batch_failure_reason(services: Services) -> None:
    ws = services.workspaces.create(ALICE, WorkspaceSpec(name="steps"))
    services.adapters.catalog.put_document(
        Document(id="d", workspace_id=ws.id, name="a.pdf", source=DocumentSource.FILE)
    )
    base = {"workspace_id": ws.id, "document_id": "d"}
    assert invoke("ingest_status", {"action": "set_processing", **base})["status"] == "processing"
    cause = json.dumps({"JobName": "ingest", "StatusReason": "Task failed to start: CannotPullContainerError"})
    failed = invoke(
        "ingest_status", {"action": "set_error", **base, "error": {"Error": "States.TaskFailed", "Cause": cause}}
    )
    assert failed["status"] == "error" and failed["status_reason"] == "Task failed to start: CannotPullContainerError"
    assert load_module("ingest_status").STEPS.keys() >= {"purge_document", "purge_workspace"}
    assert invoke("ingest_status", {"action": "purge_document", **base}) == {"done": "purge_document"}
    assert services.adapters.catalog.get_document(ws.id, "d") is None


# ============================================================================ WebSocket authorizer (Cognito JWTs)


@pytest.fixture
def signing_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def cognito_token(key: Any, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": ALICE,
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "aud": "5lnc4lb1q1example",
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
    } | overrides
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_ws_authorizer_verifies_signature_expiry_issuer_and_audience(services: Services, signing_key: Any) -> None:
    verifier = TokenVerifier(services.settings)
    jwk = jwt.PyJWK.from_dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key())) | {"kid": "k1"})
    verifier.__dict__["_jwks"] = type("Keys", (), {"get_signing_key_from_jwt": lambda self, token: jwk})()
    services.token_verifier = verifier
    request = {"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:123456789012:ws123/prod/$connect"}

    def effect(token: str | None) -> tuple[str, dict[str, Any]]:
        query = {"token": token} if token else {}
        policy = invoke("ws_authorizer", request | {"queryStringParameters": query})
        return policy["policyDocument"]["Statement"][0]["Effect"], policy["context"]

    expires = int(time.time()) + 600
    assert effect(cognito_token(signing_key, exp=expires)) == ("Allow", {"user": ALICE, "expires_at": str(expires)})
    assert effect(cognito_token(signing_key, exp=int(time.time()) - 10))[0] == "Deny"
    assert effect(cognito_token(signing_key, aud="someone-else"))[0] == "Deny"
    assert effect(cognito_token(signing_key, iss="https://evil.example.com"))[0] == "Deny"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert effect(cognito_token(other_key))[0] == "Deny"
    assert effect(None)[0] == "Deny"


class SlowChat:
    name, context_tokens = "slow", 2048

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        for i in range(100):
            time.sleep(0.02)
            yield ChatDelta(f"t{i} ")
        yield ChatDelta("", usage=Usage(completion_tokens=100))


def test_cancel_from_the_websocket_stops_a_running_answer(services: Services, recorder: Recorder) -> None:
    import threading

    services.models.chat_models.register(ModelInfo("slow", "slow", "test"), SlowChat, default=True)
    sqs = chat_job_event("conn-9", "s9", "m9", "talk for a while")
    worker = threading.Thread(target=invoke, args=("chat_worker", sqs))
    worker.start()
    time.sleep(0.5)
    invoke("ws_message", event("ws_message.json") | {"body": json.dumps({"action": "cancel", "session_id": "s9"})})
    worker.join(10)
    final = [p for c, p in recorder.sent if c == "conn-9"][-1]
    assert final["type"] == "final"
    assert 0 < len(final["answer"].split()) < 100
    stored = services.sessions.messages(ALICE, "s9").items[-1]
    assert stored.metadata["cancelled"] is True and stored.content == final["answer"]
