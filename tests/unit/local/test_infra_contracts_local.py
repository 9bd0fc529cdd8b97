"""The local runtime's infrastructure adapters under the shared contracts (tests/contracts).

``LocalBlobStore`` and ``LocalNotifier`` run behind the real local gateway (``quarry.local.asgi``,
in-process through Starlette's TestClient): uploads are multipart POSTs to its ``/uploads``
endpoint, clients are WebSockets on ``/ws`` that the real authorizer, ``$connect`` and
``$disconnect`` handlers admit and forget. ``LocalBus`` runs its own consumer threads.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from quarry.adapters.localfs import LocalBlobStore
from quarry.adapters.sns_sqs import BusRecord, parse_bus_record
from quarry.auth import DevTokens, TokenVerifier
from quarry.local.asgi import INGEST_QUEUE, create_app
from quarry.local.bus import LocalBus
from quarry.local.notifier import LocalNotifier
from quarry.ports import Connections, WorkflowName
from quarry.services.models_registry import ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.contracts.blob_store_contract import BlobStoreContract
from tests.contracts.bus_contract import BusContract, Delivery, Handler
from tests.contracts.notifier_contract import NotifierContract
from tests.fakes import FakeCatalog, FakeChatHistory, FakeConnections, FakeVectorIndex

T = TypeVar("T")

ORIGIN = "http://127.0.0.1:8000"
SECRET = b"local-contract-secret-0123456789"
USER = "alice"
PATIENCE = 20.0  # seconds: a guard against hanging on a broken adapter, never a speed requirement


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.005)


def within(action: Callable[[], T], what: str) -> T:
    """Run a blocking client read on a daemon thread, so a message that never comes fails instead of hanging."""
    results: queue.Queue[tuple[bool, Any]] = queue.Queue()

    def run() -> None:
        try:
            results.put((True, action()))
        except BaseException as exc:  # handed back to the test thread
            results.put((False, exc))

    threading.Thread(target=run, daemon=True).start()
    try:
        ok, value = results.get(timeout=PATIENCE)
    except queue.Empty:
        raise AssertionError(f"gave up waiting: {what}") from None
    if not ok:
        raise value
    return value


class NoWorkflow:
    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        return run_id or "run"


@dataclass
class Gateway:
    services: Services
    client: TestClient
    token: str
    uploads: list[dict[str, Any]]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The local gateway over fakes, except the adapters under test: LocalBlobStore, LocalBus, LocalNotifier."""
    settings = Settings(data_dir=tmp_path, local_upload_url=f"{ORIGIN}/uploads")
    bus = LocalBus(dead_letter_dir=tmp_path / "dead-letters")
    uploads: list[dict[str, Any]] = []
    bus.subscribe(INGEST_QUEUE, lambda event: uploads.extend(json.loads(r["body"]) for r in event["Records"]))
    services = build_services(
        settings,
        overrides={
            "catalog": FakeCatalog(),
            "chat_history": FakeChatHistory(),
            "connections": FakeConnections(),
            "vector_index": FakeVectorIndex(),
            "blob_store": LocalBlobStore(tmp_path / "blobs", upload_url=settings.local_upload_url, secret=SECRET),
            "bus": bus,
            "workflow": NoWorkflow(),
            "notifier": LocalNotifier(),
            "models": ModelRegistry(),
        },
    )
    verifier = TokenVerifier(settings, dev_secret=SECRET)
    services.token_verifier = verifier  # as `quarry serve` does: the ws_authorizer handler reads it
    install_services(services)  # the handlers find them here, as in `quarry serve`
    app = create_app(services, verifier=verifier, dev_tokens=None, frontend_dir=None)
    try:
        with TestClient(app, base_url=ORIGIN) as client:
            token, _ = DevTokens(SECRET, user=USER).current()
            yield Gateway(services, client, token, uploads)
    finally:
        reset_services()
        bus.close()


# --------------------------------------------------------------------------- BlobStore


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def blob_store(self, gateway: Gateway) -> LocalBlobStore:
        store = gateway.services.adapters.blob_store
        assert isinstance(store, LocalBlobStore)
        return store

    @pytest.fixture
    def post_upload(self, gateway: Gateway) -> Callable[[str, Mapping[str, str], bytes], int]:
        def post(url: str, fields: Mapping[str, str], data: bytes) -> int:
            files = {"file": ("upload.bin", data, "application/octet-stream")}
            return gateway.client.post(url, data=dict(fields), files=files).status_code

        return post

    @pytest.fixture
    def fetch(self, gateway: Gateway) -> Callable[[str], tuple[int, Mapping[str, str], bytes]]:
        def get(url: str) -> tuple[int, Mapping[str, str], bytes]:
            response = gateway.client.get(url)
            return response.status_code, dict(response.headers), response.content

        return get

    def test_a_tampered_download_url_is_refused(self, blob_store: LocalBlobStore, gateway: Gateway) -> None:
        """(On S3 the signature check is S3's own; moto does not make it.)"""
        blob_store.put("ws/documents/d/a.txt", b"mine", content_type="text/plain")
        blob_store.put("ws/documents/d/b.txt", b"not yours", content_type="text/plain")
        link = blob_store.presigned_get("ws/documents/d/a.txt", expires_in=120, filename="report.txt")

        response = gateway.client.get(link.url.replace("a.txt", "b.txt"))

        assert response.status_code == 403 and response.content != b"not yours"

    def test_a_download_is_sandboxed_and_expires(self, blob_store: LocalBlobStore, gateway: Gateway) -> None:
        """Served from the UI's own origin: an uploaded page must not run scripts there."""
        blob_store.put("ws/documents/d/page.html", b"<script>alert(1)</script>", content_type="text/html")
        link = blob_store.presigned_get("ws/documents/d/page.html", expires_in=60, filename="page.html")
        response = gateway.client.get(link.url)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == "sandbox"
        assert response.headers["x-content-type-options"] == "nosniff"
        short = blob_store.presigned_get("ws/documents/d/page.html", expires_in=1, filename="page.html")
        time.sleep(2.1)
        expired = gateway.client.get(short.url)
        assert expired.status_code == 403 and "expired" in expired.json()["error"]["message"]

    def test_a_stored_upload_is_announced_on_the_ingest_queue(
        self, blob_store: LocalBlobStore, post_upload: Callable[[str, Mapping[str, str], bytes], int], gateway: Gateway
    ) -> None:
        """The local stand-in for the bucket's ObjectCreated notification (not part of the port)."""
        target = blob_store.presigned_post(
            "ws/documents/d/a.txt", max_bytes=10, content_type="text/plain", expires_in=60
        )
        assert post_upload(target.url, target.fields, b"hello") == 204
        wait_until(lambda: len(gateway.uploads) == 1, "the ObjectCreated event")
        [record] = gateway.uploads[0]["Records"]
        assert record["s3"]["object"]["key"] == "ws/documents/d/a.txt" and record["s3"]["object"]["size"] == 5


# --------------------------------------------------------------------------- Bus


class LocalBusWiring:
    """``LocalBus`` as `quarry serve` wires it: SQS-shaped events to handlers on the bus's own threads."""

    max_receives = 3

    def __init__(self, dead_letter_dir: Path) -> None:
        self.bus = LocalBus(dead_letter_dir=dead_letter_dir, retry_delay=0.0, max_receives=self.max_receives)
        self._queues: list[str] = []

    def subscribe(self, queue: str, filter_policy: Mapping[str, Sequence[str]], handler: Handler) -> None:
        policy = {name: list(values) for name, values in filter_policy.items()}
        topics = tuple(policy.pop("topic"))

        def consume(event: dict[str, Any]) -> None:
            for record in event["Records"]:
                handler(Delivery(parse_bus_record(record), int(record["attributes"]["ApproximateReceiveCount"])))

        self.bus.subscribe(queue, consume, topics=topics, filter_policy=policy)
        self._queues.append(queue)

    def settle(self) -> None:
        wait_until(lambda: all(self.bus.pending(q) == 0 for q in self._queues), "the queues to drain")

    def dead_letters(self, queue: str) -> list[BusRecord]:
        letters = [letter for letter in self.bus.dead_letters() if letter["queue"] == queue]
        return [parse_bus_record({"body": letter["body"], "messageId": letter["message_id"]}) for letter in letters]


class TestLocalBus(BusContract):
    @pytest.fixture
    def bus_wiring(self, tmp_path: Path) -> Iterator[LocalBusWiring]:
        wiring = LocalBusWiring(tmp_path / "dead-letters")
        yield wiring
        wiring.bus.close()


def test_the_local_bus_refuses_filter_policies_it_cannot_match(tmp_path: Path) -> None:
    bus = LocalBus(dead_letter_dir=tmp_path)
    with pytest.raises(ValueError, match="exact strings"):
        bus.subscribe("q", lambda event: None, topics=("t",), filter_policy={"direction": [{"prefix": "i"}]})  # type: ignore[list-item]
    bus.close()


# --------------------------------------------------------------------------- Notifier


class GatewayNotifierWiring:
    """Clients on the local gateway's WebSocket; ``LocalNotifier`` pushes to them."""

    def __init__(self, gateway: Gateway, stack: ExitStack) -> None:
        self._gateway = gateway
        self._stack = stack
        self.notifier = gateway.services.adapters.notifier
        self._connections: Connections = gateway.services.adapters.connections
        self._sockets: dict[str, WebSocketTestSession] = {}
        self._open: set[str] = set()

    def connect(self) -> str:
        before = set(self._connections.of_user(USER))
        socket = self._gateway.client.websocket_connect(f"ws://127.0.0.1:8000/ws?token={self._gateway.token}")
        within(socket.__enter__, "the WebSocket handshake")
        wait_until(lambda: len(set(self._connections.of_user(USER)) - before) == 1, "$connect")
        [connection_id] = set(self._connections.of_user(USER)) - before
        self._sockets[connection_id] = socket
        self._open.add(connection_id)
        self._stack.callback(socket.__exit__, None, None, None)
        return connection_id

    def received(self, connection_id: str, count: int) -> list[dict[str, Any]]:
        socket = self._sockets[connection_id]
        return [within(socket.receive_json, f"payload {n} on {connection_id}") for n in range(count)]

    def drop(self, connection_id: str, code: int = 1001) -> None:
        self._sockets[connection_id].close(code)  # 1001: the browser tab is gone
        self._open.discard(connection_id)
        wait_until(lambda: not self.listed(connection_id), "$disconnect")

    def disconnect_all(self) -> None:
        """Let every handler finish before the gateway goes: none may outlive the services it was given."""
        for connection_id in sorted(self._open):
            self.drop(connection_id, 1000)

    def close_seen(self, connection_id: str) -> tuple[int | None, str | None]:
        socket = self._sockets[connection_id]
        with pytest.raises(WebSocketDisconnect) as closed:
            within(socket.receive_json, f"the close of {connection_id}")
        self.drop(connection_id, closed.value.code)  # the client answers the close frame
        return closed.value.code, closed.value.reason

    def listed(self, connection_id: str) -> bool:
        return self._connections.get(connection_id) is not None


class TestLocalNotifier(NotifierContract):
    @pytest.fixture
    def notifier_wiring(self, gateway: Gateway) -> Iterator[GatewayNotifierWiring]:
        with ExitStack() as stack:
            wiring = GatewayNotifierWiring(gateway, stack)
            assert isinstance(wiring.notifier, LocalNotifier)
            yield wiring
            wiring.disconnect_all()
