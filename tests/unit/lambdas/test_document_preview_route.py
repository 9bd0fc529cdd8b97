"""REST: GET /workspaces/{id}/documents/{doc}/preview reads the stored start of the extracted text (no re-parse)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.services.documents import PREVIEW_CHARS, preview_key
from quarry.wiring import Services
from tests.unit.lambdas.rest_calls import installed_services, rest

MALLORY = "mallory"
TIDES = "Spring tides come twice a month, at new and full moon, when the sun and moon pull together."


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with installed_services(tmp_path) as built:
        yield built


def _text_document(services: Services, text: str, *, process: bool = True) -> tuple[str, dict[str, Any]]:
    status, ws = rest("POST", "/workspaces", {"name": "coast"})
    assert status == 201
    status, doc = rest("POST", f"/workspaces/{ws['id']}/documents", {"type": "text", "title": "Tides", "text": text})
    assert status == 201
    if process:
        services.ingestion.process(ws["id"], doc["id"])
    return ws["id"], doc


def test_the_owner_sees_the_extracted_text_and_the_details(services: Services) -> None:
    ws_id, doc = _text_document(services, TIDES)

    status, preview = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/preview")

    assert status == 200
    assert TIDES in preview["text"] and (preview["truncated"], preview["available"]) == (False, True)
    assert preview["document"]["name"] == "Tides" and preview["document"]["status"] == "processed"
    assert preview["document"]["chunk_count"] >= 1


def test_a_long_text_is_cut_to_the_preview_length(services: Services) -> None:
    long_text = " ".join(f"Tide table line {i} for the harbour." for i in range(400))
    ws_id, doc = _text_document(services, long_text)

    status, preview = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/preview")

    assert status == 200 and preview["truncated"] is True and len(preview["text"]) == PREVIEW_CHARS
    assert preview["text"].startswith("Tide table line 0")


def test_the_preview_comes_from_the_stored_text_not_a_new_parse(services: Services) -> None:
    ws_id, doc = _text_document(services, TIDES)
    services.adapters.blob_store.put(preview_key(ws_id, doc["id"]), b"stored extract")

    status, preview = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/preview")

    assert status == 200 and preview["text"] == "stored extract"


def test_another_user_gets_404(services: Services) -> None:
    ws_id, doc = _text_document(services, TIDES)

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/preview", user=MALLORY)

    assert status == 404 and body["error"]["code"] == "not_found"
    assert TIDES not in str(body)


def test_a_document_not_processed_yet_is_409_with_a_clear_message(services: Services) -> None:
    ws_id, doc = _text_document(services, TIDES, process=False)

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/preview")

    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["message"] == "“Tides” is not processed yet: a preview is shown once it is processed"


def test_a_failed_document_is_409_and_a_deleted_one_loses_its_preview(services: Services) -> None:
    ws_id, doc = _text_document(services, TIDES, process=False)
    services.ingestion_steps.fail(ws_id, doc["id"], UnreadableFile("Tides: no text", kind=FailureKind.NO_TEXT))
    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/preview")
    assert status == 409 and body["error"]["message"].startswith("“Tides” could not be processed")

    ws_id, doc = _text_document(services, TIDES)
    assert services.adapters.blob_store.head(preview_key(ws_id, doc["id"])) is not None
    services.documents.purge(ws_id, doc["id"])
    assert services.adapters.blob_store.head(preview_key(ws_id, doc["id"])) is None
    status, _ = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/preview")
    assert status == 404
