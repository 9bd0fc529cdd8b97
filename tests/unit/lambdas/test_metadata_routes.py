"""Metadata and filters through the Lambdas as API Gateway calls them: REST documents (upload URL, text, website,
PATCH), search and chat with ``filters``, and the WebSocket chat (``ws_message`` -> ChatJob -> ``chat_worker``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarry.protocol import ChatJob
from quarry.services.documents import FIELDS_OBJECT_METADATA
from quarry.services.prompts import NO_ANSWER
from quarry.wiring import Services
from tests.unit.lambdas.rest_calls import installed_services, rest
from tests.unit.lambdas.test_handlers import ALICE, Recorder, event, invoke

MALLORY = "mallory"
LEAVE_A = "Team A leave policy: annual leave is 27 days, booked through the portal."
LEAVE_B = "Team B leave policy: annual leave is 30 days, booked with the manager."


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with installed_services(tmp_path) as built:
        yield built


def _workspace() -> str:
    status, ws = rest("POST", "/workspaces", {"name": "handbook"})
    assert status == 201
    return str(ws["id"])


def _text(services: Services, ws_id: str, title: str, text: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "text", "title": title, "text": text}
    if metadata is not None:
        body["metadata"] = metadata
    status, doc = rest("POST", f"/workspaces/{ws_id}/documents", body)
    assert status == 201, doc
    services.ingestion.process(ws_id, doc["id"])
    return doc  # type: ignore[no-any-return]


def _two_teams(services: Services) -> tuple[str, dict[str, Any], dict[str, Any]]:
    ws_id = _workspace()
    a = _text(services, ws_id, "Leave A", LEAVE_A, {"team": "a", "year": 2024})
    b = _text(services, ws_id, "Leave B", LEAVE_B, {"team": "b", "year": 2025})
    return ws_id, a, b


def _search(ws_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    return rest("POST", f"/workspaces/{ws_id}/search", {"query": "annual leave days", "top_k": 10, **body})  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- documents


def test_an_upload_url_carries_the_metadata_as_a_signed_object_field(services: Services) -> None:
    ws_id = _workspace()

    status, body = rest(
        "POST",
        f"/workspaces/{ws_id}/documents/upload-url",
        {"filename": "r.txt", "content_type": "text/plain", "metadata": {"product": "X", "stars": 4}},
    )

    assert status == 200, body
    assert json.loads(body["fields"][f"x-amz-meta-{FIELDS_OBJECT_METADATA}"]) == {"product": "X", "stars": 4}


def test_an_upload_url_with_bad_metadata_is_422_naming_the_field(services: Services) -> None:
    ws_id = _workspace()

    status, body = rest(
        "POST",
        f"/workspaces/{ws_id}/documents/upload-url",
        {"filename": "r.txt", "content_type": "text/plain", "metadata": {"stars": {"n": 4}}},
    )

    assert status == 422 and body["error"]["code"] == "invalid_input"
    assert body["error"]["message"].startswith("metadata.stars: values are a string")


def test_a_text_document_returns_user_metadata_apart_from_system_fields(services: Services) -> None:
    ws_id = _workspace()
    status, doc = rest(
        "POST",
        f"/workspaces/{ws_id}/documents",
        {"type": "qna", "question": "How long?", "answer": "27 days.", "metadata": {"published": "2024-05-01"}},
    )

    assert status == 201
    assert doc["metadata"] == {"published": "2024-05-01"} and doc["system"] == {"question": "How long?"}
    status, listed = rest("GET", f"/workspaces/{ws_id}/documents")
    assert status == 200 and listed["items"][0]["metadata"] == {"published": "2024-05-01"}


def test_a_website_keeps_its_metadata_out_of_the_crawl_options(services: Services) -> None:
    ws_id = _workspace()

    status, site = rest(
        "POST", f"/workspaces/{ws_id}/websites", {"url": "https://example.org/", "metadata": {"site": "example"}}
    )

    assert status == 201, site
    assert site["metadata"] == {"site": "example"} and site["system"] == {"url": "https://example.org/"}
    stored = services.adapters.catalog.get_document(ws_id, site["id"])
    assert stored is not None and stored.blob_key is not None
    assert "metadata" not in json.loads(services.adapters.blob_store.get(stored.blob_key))


def test_patch_merges_the_metadata_and_search_follows_at_once(services: Services) -> None:
    ws_id, a, b = _two_teams(services)

    status, patched = rest(
        "PATCH", f"/workspaces/{ws_id}/documents/{a['id']}", {"metadata": {"team": "b", "year": None}}
    )

    assert status == 200, patched
    assert patched["metadata"] == {"team": "b"} and patched["status"] == "processed"
    status, found = _search(ws_id, {"filters": {"team": "b"}})
    assert status == 200 and {h["document_id"] for h in found["hits"]} == {a["id"], b["id"]}
    status, found = _search(ws_id, {"filters": {"year": {"exists": True}}})
    assert {h["document_id"] for h in found["hits"]} == {b["id"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metadata": {"9lives": 1}}, "metadata.9lives: keys start with a letter"),
        ({"metadata": {"tags": ["a", 2]}}, "metadata.tags: lists hold strings only"),
        ({"metadata": "team=a"}, "metadata: Input should be a valid dictionary"),
        ({}, "metadata: Field required"),
    ],
    ids=["bad key", "bad list", "not an object", "missing"],
)
def test_a_bad_patch_is_422_naming_the_field(services: Services, body: dict[str, Any], message: str) -> None:
    ws_id, a, _ = _two_teams(services)

    status, error = rest("PATCH", f"/workspaces/{ws_id}/documents/{a['id']}", body)

    assert status == 422 and error["error"]["code"] == "invalid_input"
    assert error["error"]["message"].startswith(message), error


def test_patch_by_a_non_member_or_of_an_unknown_document_is_404(services: Services) -> None:
    ws_id, a, _ = _two_teams(services)

    status, error = rest("PATCH", f"/workspaces/{ws_id}/documents/{a['id']}", {"metadata": {"x": 1}}, user=MALLORY)
    assert status == 404 and error["error"]["code"] == "not_found"
    status, error = rest("PATCH", f"/workspaces/{ws_id}/documents/nope", {"metadata": {"x": 1}})
    assert status == 404


def test_patch_while_the_document_is_processed_is_409(services: Services) -> None:
    ws_id = _workspace()
    status, doc = rest("POST", f"/workspaces/{ws_id}/documents", {"type": "text", "title": "T", "text": LEAVE_A})
    assert status == 201

    status, error = rest("PATCH", f"/workspaces/{ws_id}/documents/{doc['id']}", {"metadata": {"x": 1}})

    assert status == 409 and "once it is processed" in error["error"]["message"]


# --------------------------------------------------------------------------- search and REST chat


def test_search_filters_select_documents_by_metadata(services: Services) -> None:
    ws_id, a, b = _two_teams(services)

    for body, expected in [
        ({}, {a["id"], b["id"]}),
        ({"filters": {"team": "a"}}, {a["id"]}),
        ({"filter": {"year": {"gte": 2025}}}, {b["id"]}),  # the alias
        ({"filters": {"$or": [{"team": "a"}, {"year": 2025}]}, "mode": "keyword"}, {a["id"], b["id"]}),
        ({"filters": {"document_id": b["id"]}, "mode": "dense"}, {b["id"]}),
        ({"filters": {"team": ["c", "d"]}}, set()),
    ]:
        status, found = _search(ws_id, body)
        assert status == 200, found
        assert {h["document_id"] for h in found["hits"]} == expected, body
    assert all(h["metadata"]["fields"]["team"] == "a" for h in _search(ws_id, {"filters": {"team": "a"}})[1]["hits"])


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"year": {"gte": "soon"}}, "filters.year.gte: ranges take a number or an ISO 8601 date"),
        ({"year": {"near": 3}}, "filters.year.near: unknown operator"),
        ({"$or": {"team": "a"}}, "filters.$or: must be a non-empty list"),
        ({"bad key": 1}, "filters.bad key: keys start with a letter"),
        ("team=a", "filters: Input should be a valid dictionary"),
    ],
    ids=["bad bound", "unknown operator", "bad or", "bad key", "not an object"],
)
def test_a_bad_search_filter_is_422_naming_the_field(services: Services, filters: Any, message: str) -> None:
    ws_id, _, _ = _two_teams(services)

    status, error = _search(ws_id, {"filters": filters})

    assert status == 422 and error["error"]["code"] == "invalid_input"
    assert error["error"]["message"].startswith(message), error


def test_rest_chat_retrieves_only_what_the_filter_selects(services: Services) -> None:
    ws_id, _, _ = _two_teams(services)
    question = {"text": "How long is annual leave?", "workspace_id": ws_id}

    status, grounded = rest("POST", "/chat", {**question, "filters": {"team": "b"}})
    assert status == 200 and grounded["grounded"] is True
    status, nothing = rest("POST", "/chat", {**question, "filters": {"team": "nobody"}})
    assert status == 200 and (nothing["grounded"], nothing["answer"]) == (False, NO_ANSWER)
    status, error = rest("POST", "/chat", {**question, "filters": {"year": {"lt": []}}})
    assert status == 422 and error["error"]["message"].startswith("filters.year.lt: ranges take")


# --------------------------------------------------------------------------- WebSocket chat


def _ws_chat(body: dict[str, Any]) -> None:
    invoke("ws_message", event("ws_message.json") | {"body": json.dumps(body)})


def _worker_runs(job: dict[str, Any]) -> None:
    sqs = event("sqs_sns_chat_job.json")
    envelope = json.loads(sqs["Records"][0]["body"])
    envelope["Message"] = json.dumps(job)
    sqs["Records"][0]["body"] = json.dumps(envelope)
    assert invoke("chat_worker", sqs) == {"batchItemFailures": []}


def test_a_websocket_chat_carries_its_filter_through_the_job_to_retrieval(services: Services) -> None:
    ws_id, _, _ = _two_teams(services)
    recorder = services.adapters.bus
    assert isinstance(recorder, Recorder)

    for filters, sources in [({"team": "a"}, 1), ({"team": "nobody"}, 0)]:
        _ws_chat({"action": "chat", "text": "How long is annual leave?", "workspace_id": ws_id, "filter": filters})
        _, job, _ = recorder.published[-1]
        assert ChatJob.model_validate(job).filters == filters  # canonical form, validated at the edge
        _worker_runs(job)
        events = [e for c, e in recorder.sent if c == job["connection_id"] and e.get("message_id") == job["message_id"]]
        reading = [e for e in events if e["type"] == "progress" and e["phase"] == "reading"]
        assert reading and reading[0]["sources"] <= sources and (reading[0]["sources"] > 0) == (sources > 0)
        assert events[-1]["type"] == "final" and events[-1]["grounded"] is (sources > 0)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"year": {"gte": "later"}}, "filters.year.gte: ranges take"),
        ({"$or": []}, "filters.$or: must be a non-empty list"),
        (["team", "a"], "chat.filters: Input should be an object"),
    ],
    ids=["bad bound", "empty or", "not an object"],
)
def test_a_bad_websocket_filter_is_an_invalid_input_error_and_nothing_is_queued(
    services: Services, filters: Any, message: str
) -> None:
    ws_id, _, _ = _two_teams(services)
    recorder = services.adapters.bus
    assert isinstance(recorder, Recorder)
    sessions_before = services.sessions.list_sessions(ALICE).items

    _ws_chat({"action": "chat", "text": "How long is leave?", "workspace_id": ws_id, "filters": filters})

    assert recorder.published == []
    _, error = recorder.sent[-1]
    assert error["type"] == "error" and error["code"] == "invalid_input"
    assert error["message"].startswith(message), error
    assert services.sessions.list_sessions(ALICE).items == sessions_before  # no session was opened
