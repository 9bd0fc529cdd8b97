"""`quarry serve` as a user meets it: real HTTP, a real WebSocket, the real handlers, bus and workflow."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.platform_fixtures import LivePlatform

pytestmark = pytest.mark.integration

GUIDE = (
    "Plimsk ferry guide.\n\nThe Plimsk ferry crosses the river Vell every 20 minutes. "
    "A single ticket costs 4 zorbs and children under six travel free.\n\n"
    "The ferry does not run on national holidays."
)


def api(live: LivePlatform, method: str, path: str, *, user: str | None = None, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{live.base_url}/api{path}", headers=live.headers(user), timeout=120, **kw)


async def _collect(ws: Any, until: str, *, timeout: float = 300) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
        events.append(message)
        if message["type"] in (until, "error"):
            return events


def upload(
    live: LivePlatform,
    ws_id: str,
    name: str,
    data: bytes,
    content_type: str = "text/plain",
    metadata: dict[str, Any] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"filename": name, "content_type": content_type}
    if metadata is not None:
        body["metadata"] = metadata
    target = api(live, "POST", f"/workspaces/{ws_id}/documents/upload-url", json=body).json()
    return httpx.post(target["url"], data=target["fields"], files={"file": (name, data, content_type)}, timeout=30)


def wait_processed(live: LivePlatform, ws_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.time() + 120
    docs: list[dict[str, Any]] = []
    while time.time() < deadline:
        docs = api(live, "GET", f"/workspaces/{ws_id}/documents").json()["items"]
        if len(docs) == count and all(d["status"] in ("processed", "error") for d in docs):
            break
        time.sleep(0.3)
    assert [d["status"] for d in docs] == ["processed"] * count, docs
    return docs


@pytest.fixture(scope="module")
def workspace(live: LivePlatform) -> dict[str, Any]:
    created = api(live, "POST", "/workspaces", json={"name": "ferries", "chunk_size": 128, "chunk_overlap": 16})
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def test_upload_is_processed_and_pushed_over_the_websocket(live: LivePlatform, workspace: dict[str, Any]) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(f"{live.ws_url}?token={live.token}") as ws:
            response = upload(live, workspace["id"], "ferry.txt", GUIDE.encode())
            assert response.status_code == 204, response.text
            events = []
            while not any(e.get("status") == "processed" for e in events):
                events += await _collect(ws, "document_status", timeout=120)
            return events

    events = asyncio.run(scenario())
    statuses = [e["status"] for e in events if e["type"] == "document_status"]
    assert statuses[-1] == "processed" and "processing" in statuses
    documents = api(live, "GET", f"/workspaces/{workspace['id']}/documents").json()["items"]
    assert [(d["name"], d["status"]) for d in documents] == [("ferry.txt", "processed")]
    described = api(live, "GET", f"/workspaces/{workspace['id']}").json()
    assert described["document_count"] == 1 and described["chunk_count"] >= 1


def test_search_returns_spans_of_the_uploaded_document(live: LivePlatform, workspace: dict[str, Any]) -> None:
    body = api(
        live,
        "POST",
        f"/workspaces/{workspace['id']}/search",
        json={"query": "how much is a ferry ticket", "top_k": 3, "mode": "hybrid"},
    ).json()
    top = body["hits"][0]
    assert "4 zorbs" in top["text"]
    assert GUIDE[top["start"] : top["end"]] == top["text"]


@pytest.mark.llm
def test_chat_streams_tokens_then_a_cited_final(live: LivePlatform, workspace: dict[str, Any]) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with websockets.connect(f"{live.ws_url}?token={live.token}") as ws:
            await ws.send(
                json.dumps(
                    {
                        "action": "chat",
                        "text": "How much does a single ferry ticket cost?",
                        "workspace_id": workspace["id"],
                        "model_kwargs": {"max_tokens": 48},
                    }
                )
            )
            first = await _collect(ws, "final")
            session_id = first[-1]["session_id"]
            await ws.send(
                json.dumps(
                    {
                        "action": "chat",
                        "text": "and when does it not run?",
                        "session_id": session_id,
                        "workspace_id": workspace["id"],
                        "model_kwargs": {"max_tokens": 48},
                    }
                )
            )
            return first, await _collect(ws, "final")

    first, second = asyncio.run(scenario())
    tokens = [e for e in first if e["type"] == "token"]
    final = first[-1]
    assert final["type"] == "final", final
    assert len(tokens) > 1 and [t["sequence"] for t in tokens] == list(range(len(tokens)))
    assert "4" in final["answer"]
    assert final["citations"], "the answer cites nothing"
    documents = api(live, "GET", f"/workspaces/{workspace['id']}/documents").json()["items"]
    assert {c["document_id"] for c in final["citations"]} <= {d["id"] for d in documents}
    assert second[-1]["type"] == "final" and second[-1]["session_id"] == final["session_id"]

    session = api(live, "GET", f"/sessions/{final['session_id']}").json()
    assert [m["role"] for m in session["messages"]] == ["user", "assistant", "user", "assistant"]
    assert session["messages"][1]["citations"] == final["citations"]
    feedback = api(
        live,
        "POST",
        "/feedback",
        json={"session_id": final["session_id"], "message_id": final["message_id"], "rating": 1},
    )
    assert feedback.status_code == 204
    assert api(live, "DELETE", f"/sessions/{final['session_id']}").status_code == 204
    assert api(live, "GET", f"/sessions/{final['session_id']}").status_code == 404


def test_text_and_qna_documents_become_searchable(live: LivePlatform, workspace: dict[str, Any]) -> None:
    text = api(
        live,
        "POST",
        f"/workspaces/{workspace['id']}/documents",
        json={"type": "text", "title": "Lighthouse", "text": "The Orrin lighthouse was built in 1870."},
    )
    qna = api(
        live,
        "POST",
        f"/workspaces/{workspace['id']}/documents",
        json={"type": "qna", "question": "Who keeps the Orrin lighthouse?", "answer": "Marta Vell keeps it."},
    )
    assert text.status_code == 201 and qna.status_code == 201
    deadline = time.time() + 120
    while time.time() < deadline:
        listing = api(live, "GET", f"/workspaces/{workspace['id']}/documents").json()["items"]
        docs = {d["id"]: d["status"] for d in listing}
        if docs[text.json()["id"]] == "processed" and docs[qna.json()["id"]] == "processed":
            break
        time.sleep(0.5)
    hits = api(
        live,
        "POST",
        f"/workspaces/{workspace['id']}/search",
        json={"query": "who keeps the lighthouse", "mode": "keyword"},
    ).json()["hits"]
    assert hits and "Marta Vell" in hits[0]["text"]


def test_bad_requests_get_clear_json_errors(live: LivePlatform, workspace: dict[str, Any]) -> None:
    ws_id = workspace["id"]
    malformed = httpx.post(f"{live.base_url}/api/workspaces", headers=live.headers(), content=b"{nope")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    invalid = api(live, "POST", "/workspaces", json={"name": "x", "chunk_size": 64, "chunk_overlap": 64})
    assert invalid.status_code == 422 and "chunk_overlap" in invalid.json()["error"]["message"]
    missing_token = httpx.get(f"{live.base_url}/api/workspaces")
    assert missing_token.status_code == 401 and missing_token.json()["error"]["code"] == "unauthorized"
    forged = httpx.get(f"{live.base_url}/api/workspaces", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401
    empty_query = api(live, "POST", f"/workspaces/{ws_id}/search", json={"query": ""})
    assert empty_query.status_code == 422
    top_k = api(live, "POST", f"/workspaces/{ws_id}/search", json={"query": "ferry", "top_k": 1000})
    assert top_k.status_code == 422
    unsupported = api(
        live,
        "POST",
        f"/workspaces/{ws_id}/documents/upload-url",
        json={"filename": "virus.exe", "content_type": "application/octet-stream"},
    )
    assert unsupported.status_code == 415
    assert api(live, "GET", "/no/such/route").status_code == 404


def test_uploads_honour_the_signed_policy(live: LivePlatform, workspace: dict[str, Any]) -> None:
    ws_id = workspace["id"]
    too_big = upload(live, ws_id, "big.txt", b"x" * 300_000)  # the fixture allows 200 kB
    assert too_big.status_code == 413
    target = api(
        live,
        "POST",
        f"/workspaces/{ws_id}/documents/upload-url",
        json={"filename": "notes.txt", "content_type": "text/plain"},
    ).json()
    wrong_type = dict(target["fields"], **{"Content-Type": "application/pdf"})
    assert httpx.post(target["url"], data=wrong_type, files={"file": ("notes.txt", b"hi")}).status_code == 415
    tampered = dict(target["fields"], key=target["fields"]["key"].replace("notes", "other"))
    assert httpx.post(target["url"], data=tampered, files={"file": ("notes.txt", b"hi")}).status_code == 403
    blobs = live.services.adapters.blob_store
    expired = blobs.presigned_post(target["key"], max_bytes=1000, content_type="text/plain", expires_in=-1)
    response = httpx.post(expired.url, data=expired.fields, files={"file": ("notes.txt", b"hi")})
    assert response.status_code == 403 and "expired" in response.json()["error"]["message"]


def test_another_users_workspace_is_invisible(live: LivePlatform, workspace: dict[str, Any]) -> None:
    ws_id = workspace["id"]
    mallory = "mallory"
    assert api(live, "GET", f"/workspaces/{ws_id}", user=mallory).status_code == 404
    assert api(live, "GET", "/workspaces", user=mallory).json()["items"] == []
    assert api(live, "POST", f"/workspaces/{ws_id}/search", user=mallory, json={"query": "ferry"}).status_code == 404
    assert (
        api(
            live,
            "POST",
            f"/workspaces/{ws_id}/documents/upload-url",
            user=mallory,
            json={"filename": "a.txt", "content_type": "text/plain"},
        ).status_code
        == 404
    )
    assert api(live, "DELETE", f"/workspaces/{ws_id}", user=mallory).status_code == 404

    async def chat_as_mallory() -> dict[str, Any]:
        async with websockets.connect(f"{live.ws_url}?token={live.token_for(mallory)}") as ws:
            await ws.send(json.dumps({"action": "chat", "text": "ferry?", "workspace_id": ws_id}))
            return json.loads(await asyncio.wait_for(ws.recv(), 30))  # type: ignore[no-any-return]

    event = asyncio.run(chat_as_mallory())
    assert event["type"] == "error" and event["code"] == "not_found"


def test_websocket_rejects_bad_messages_and_stays_open(live: LivePlatform) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(f"{live.ws_url}?token={live.token}") as ws:
            replies = []
            for raw in [
                "{not json",
                json.dumps({"action": "dance"}),
                json.dumps({"action": "chat"}),
                json.dumps({"action": "chat", "text": "x" * 40_000}),
                json.dumps({"action": "ping"}),
            ]:
                await ws.send(raw)
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            return replies

    replies = asyncio.run(scenario())
    assert [r["type"] for r in replies] == ["error", "error", "error", "error", "pong"]
    assert [r.get("code") for r in replies[:4]] == [
        "malformed_json",
        "invalid_message",
        "invalid_message",
        "payload_too_large",
    ]


def test_websocket_refuses_a_missing_or_bad_token(live: LivePlatform) -> None:
    async def connect(url: str) -> None:
        async with websockets.connect(url) as ws:
            await ws.recv()

    for url in (live.ws_url, f"{live.ws_url}?token=forged"):
        with pytest.raises(websockets.exceptions.InvalidStatus):
            asyncio.run(connect(url))


def test_openapi_document_is_served(live: LivePlatform) -> None:
    document = httpx.get(f"{live.base_url}/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    assert {
        "/workspaces",
        "/workspaces/{workspace_id}/search",
        "/chat",
        "/feedback",
        "/rerank",
        "/embeddings",
        "/sessions",
        "/models",
        "/health",
    } <= paths


def test_delete_document_then_workspace(live: LivePlatform) -> None:
    ws = api(live, "POST", "/workspaces", json={"name": "short-lived"}).json()
    assert upload(live, ws["id"], "gone.txt", b"A note that will be deleted soon.").status_code == 204
    deadline = time.time() + 120
    docs: list[dict[str, Any]] = []
    while time.time() < deadline and not (docs and docs[0]["status"] == "processed"):
        docs = api(live, "GET", f"/workspaces/{ws['id']}/documents").json()["items"]
        time.sleep(0.3)
    assert docs[0]["status"] == "processed"
    assert api(live, "DELETE", f"/workspaces/{ws['id']}/documents/{docs[0]['id']}").status_code == 204
    assert api(live, "GET", f"/workspaces/{ws['id']}/documents/{docs[0]['id']}").status_code == 404
    assert live.services.adapters.vector_index.count(ws["id"]) == 0
    assert api(live, "DELETE", f"/workspaces/{ws['id']}").status_code == 204
    assert api(live, "GET", f"/workspaces/{ws['id']}").status_code == 404


SITE = {
    "/": b"<html><head><title>Harbour home</title></head><body><h1>Harbour</h1>"
    b"<p>Welcome to the harbour office.</p><a href='/fees.html'>Fees</a> <a href='/private/x.html'>x</a></body></html>",
    "/fees.html": b"<html><head><title>Mooring fees</title></head><body><h1>Mooring fees</h1>"
    b"<p>Mooring costs 18 zorbs per night for boats under ten metres.</p></body></html>",
    "/private/x.html": b"<html><body><p>Staff rota: secret.</p></body></html>",
    "/robots.txt": b"User-agent: *\nDisallow: /private/\n",
}


@pytest.fixture(scope="module")
def website() -> Any:
    import http.server
    import threading

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = SITE.get(self.path)
            self.send_response(200 if body else 404)
            kind = "text/plain" if self.path.endswith(".txt") else "text/html"
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_a_crawled_website_is_processed_and_searchable(live: LivePlatform, website: str) -> None:
    ws = api(live, "POST", "/workspaces", json={"name": "harbour-site"}).json()
    crawl = api(
        live,
        "POST",
        f"/workspaces/{ws['id']}/websites",
        json={"url": website, "max_pages": 10, "metadata": {"site": "harbour"}},
    )
    assert crawl.status_code == 201, crawl.text
    deadline = time.time() + 120
    status = ""
    while time.time() < deadline and status not in ("processed", "error"):
        status = api(live, "GET", f"/workspaces/{ws['id']}/documents/{crawl.json()['id']}").json()["status"]
        time.sleep(0.3)
    assert status == "processed"
    docs = api(live, "GET", f"/workspaces/{ws['id']}/documents").json()["items"]
    pages = {d["system"].get("url") for d in docs if d["source"] == "webpage"}
    assert pages == {website, website + "fees.html"}  # robots.txt kept /private/ out
    assert all(d["metadata"] == {"site": "harbour"} for d in docs)  # the crawl's metadata is on every page
    assert all(d["parent_id"] == crawl.json()["id"] for d in docs if d["source"] == "webpage")
    hits = api(live, "POST", f"/workspaces/{ws['id']}/search", json={"query": "mooring fee per night"}).json()
    assert "18 zorbs" in hits["hits"][0]["text"]


def test_a_crawl_of_a_private_address_fails_with_its_reason(live: LivePlatform) -> None:
    ws = api(live, "POST", "/workspaces", json={"name": "ssrf"}).json()
    crawl = api(live, "POST", f"/workspaces/{ws['id']}/websites", json={"url": "http://169.254.169.254/latest/"})
    deadline = time.time() + 60
    doc: dict[str, Any] = {}
    while time.time() < deadline and doc.get("status") not in ("processed", "error"):
        doc = api(live, "GET", f"/workspaces/{ws['id']}/documents/{crawl.json()['id']}").json()
        time.sleep(0.2)
    assert doc["status"] == "error" and "link-local" in doc["status_reason"]


def test_a_user_over_the_rate_limit_gets_429_with_retry_after(live: LivePlatform) -> None:
    from concurrent.futures import ThreadPoolExecutor

    headers = live.headers("greedy")
    with (
        httpx.Client(base_url=f"{live.base_url}/api", headers=headers, timeout=30) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        responses = list(pool.map(lambda _: client.get("/workspaces"), range(300)))
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled and all(r.status_code in (200, 429) for r in responses)
    assert throttled[0].json()["error"]["code"] == "throttled" and int(throttled[0].headers["retry-after"]) >= 1
    assert api(live, "GET", "/workspaces").status_code == 200  # other users are not affected


def test_concurrent_requests_are_each_answered_as_lambda_would(live: LivePlatform, workspace: dict[str, Any]) -> None:
    """The gateway serves requests from a thread pool; each handler sees one event at a time, as in Lambda
    (Powertools' resolver keeps the current route on the app: interleaved, requests failed with KeyError 500s)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [f"/workspaces/{workspace['id']}/documents", f"/workspaces/{workspace['id']}", "/workspaces", "/models"]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda i: api(live, "GET", paths[i % len(paths)]), range(400)))
    failed = [f"{a.status_code} {a.text}" for a in answers if a.status_code != 200]
    assert not failed, failed[:3]


def test_uploads_with_metadata_are_searched_by_filter_and_an_edit_changes_the_result(live: LivePlatform) -> None:
    """Two uploads through the local gateway, each with its metadata kept with the object; a filtered search
    returns only the matching one's chunks, on both rankers; a PATCH moves the other one into the filter."""
    ws = api(live, "POST", "/workspaces", json={"name": "reviews", "chunk_size": 64, "chunk_overlap": 8}).json()
    kettle = "The Brio kettle boils a full litre of water in three minutes and the handle stays cool."
    toaster = "The Crumb toaster browns both sides evenly, though the water tray for steam is tiny."
    assert (
        upload(live, ws["id"], "kettle.txt", kettle.encode(), metadata={"product": "kettle", "rating": 5}).status_code
        == 204
    )
    assert (
        upload(
            live, ws["id"], "toaster.txt", toaster.encode(), metadata={"product": "toaster", "rating": 3}
        ).status_code
        == 204
    )
    docs = {d["name"]: d for d in wait_processed(live, ws["id"], 2)}
    assert docs["kettle.txt"]["metadata"] == {"product": "kettle", "rating": 5}
    assert docs["toaster.txt"]["metadata"] == {"product": "toaster", "rating": 3}

    def found(filters: dict[str, Any], mode: str = "hybrid") -> set[str]:
        body = {"query": "water", "top_k": 10, "mode": mode, "filters": filters}
        response = api(live, "POST", f"/workspaces/{ws['id']}/search", json=body)
        assert response.status_code == 200, response.text
        return {hit["document_name"] for hit in response.json()["hits"]}

    assert found({}) == {"kettle.txt", "toaster.txt"}
    for mode in ("hybrid", "dense", "keyword"):
        assert found({"product": "kettle"}, mode) == {"kettle.txt"}, mode
    assert found({"rating": {"lt": 4}}) == {"toaster.txt"}
    bad = api(
        live, "POST", f"/workspaces/{ws['id']}/search", json={"query": "water", "filter": {"rating": {"gte": "x"}}}
    )
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("filters.rating.gte")

    patched = api(
        live, "PATCH", f"/workspaces/{ws['id']}/documents/{docs['toaster.txt']['id']}", json={"metadata": {"rating": 5}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"product": "toaster", "rating": 5}
    assert found({"rating": {"gte": 5}}) == {"kettle.txt", "toaster.txt"}
    assert found({"rating": {"lt": 4}}) == set()
    assert (
        api(
            live,
            "PATCH",
            f"/workspaces/{ws['id']}/documents/{docs['kettle.txt']['id']}",
            user="mallory",
            json={"metadata": {"a": 1}},
        ).status_code
        == 404
    )

    async def chat_with_a_bad_filter() -> dict[str, Any]:
        async with websockets.connect(f"{live.ws_url}?token={live.token}") as socket:
            message = {"action": "chat", "text": "kettle?", "workspace_id": ws["id"], "filters": {"$or": []}}
            await socket.send(json.dumps(message))
            return json.loads(await asyncio.wait_for(socket.recv(), 30))  # type: ignore[no-any-return]

    event = asyncio.run(chat_with_a_bad_filter())
    assert (event["type"], event["code"]) == ("error", "invalid_input") and "filters.$or" in event["message"]
