"""REST: GET /workspaces/{id}/documents/{doc}/source links to the document itself (a presigned download)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from quarry.adapters.localfs import LocalBlobStore
from quarry.models import Document, DocumentSource, DocumentStatus
from quarry.wiring import Services
from tests.unit.lambdas.rest_calls import installed_services, rest
from tests.unit.lambdas.test_handlers import ALICE

MALLORY = "mallory"
PDF = b"%PDF-1.4 a tiny pretend PDF"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    blobs = LocalBlobStore(tmp_path / "blobs", upload_url="http://127.0.0.1:8000/uploads", secret=b"s" * 32)
    with installed_services(tmp_path, blob_store=blobs) as built:
        yield built


def _workspace() -> str:
    status, ws = rest("POST", "/workspaces", {"name": "reports"})
    assert status == 201
    return str(ws["id"])


def _served(services: Services, url: str) -> tuple[bytes, str]:
    """What the local download endpoint would serve for ``url``: (bytes, file name)."""
    store = services.adapters.blob_store
    assert isinstance(store, LocalBlobStore)
    key, filename = store.verify_get(dict(parse_qsl(urlsplit(url).query)))
    return store.get(key), filename


def test_the_owner_gets_a_link_that_serves_the_file_under_its_name(services: Services) -> None:
    ws_id = _workspace()
    doc, _ = services.documents.add_file(ALICE, ws_id, "Q3 report.pdf", PDF)

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc.id}/source")

    assert status == 200
    assert body["url"].startswith("http://127.0.0.1:8000/downloads?") and "#page" not in body["url"]
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(datetime.fromisoformat(body["expires_at"]).tzinfo)
    assert _served(services, body["url"]) == (PDF, "Q3 report.pdf")


def test_a_pdf_opens_at_the_cited_page(services: Services) -> None:
    ws_id = _workspace()
    doc, _ = services.documents.add_file(ALICE, ws_id, "manual.pdf", PDF)

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc.id}/source", page="7")

    assert status == 200 and body["url"].endswith("#page=7")
    assert _served(services, body["url"].split("#")[0])[0] == PDF


def test_a_page_is_ignored_for_other_files_and_must_be_positive(services: Services) -> None:
    ws_id = _workspace()
    doc, _ = services.documents.add_file(ALICE, ws_id, "notes.md", b"# Notes\nHello")

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc.id}/source", page="3")
    assert status == 200 and "#page" not in body["url"]

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc.id}/source", page="0")
    assert status == 422


def test_typed_text_opens_as_markdown_named_after_its_title(services: Services) -> None:
    ws_id = _workspace()
    status, doc = rest("POST", f"/workspaces/{ws_id}/documents", {"type": "text", "title": "Tides", "text": "Hi."})
    assert status == 201

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc['id']}/source")

    assert status == 200 and _served(services, body["url"]) == (b"Hi.", "Tides.md")


def test_a_web_page_opens_at_its_own_address(services: Services) -> None:
    ws_id = _workspace()
    page = Document(
        id="page1",
        workspace_id=ws_id,
        name="Opening hours",
        source=DocumentSource.WEBPAGE,
        status=DocumentStatus.PROCESSED,
        metadata={"url": "https://example.org/hours"},
    )
    services.adapters.catalog.put_document(page)

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/page1/source")

    assert (status, body) == (200, {"url": "https://example.org/hours", "expires_at": None})


def test_another_user_gets_404_and_no_link(services: Services) -> None:
    ws_id = _workspace()
    doc, _ = services.documents.add_file(ALICE, ws_id, "Q3 report.pdf", PDF)

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc.id}/source", user=MALLORY)

    assert status == 404 and body["error"]["code"] == "not_found" and "url" not in body


def test_a_document_whose_file_is_gone_is_404_with_a_clear_message(services: Services) -> None:
    ws_id = _workspace()
    doc, _ = services.documents.add_file(ALICE, ws_id, "gone.pdf", PDF)
    assert doc.blob_key is not None
    services.adapters.blob_store.delete(doc.blob_key)

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/{doc.id}/source")
    assert status == 404 and "gone.pdf" in unquote(body["error"]["message"])

    status, body = rest("GET", f"/workspaces/{ws_id}/documents/no-such-doc/source")
    assert status == 404
