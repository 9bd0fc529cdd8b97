"""The documents table on a 390 px phone in headless Chromium against `quarry serve`: each row is a stacked card,
nothing scrolls sideways (long names, a failure reason, metadata), and every row's actions, status and reason
stay visible and usable; back at desktop width it is a table again.

No LLM is involved: uploading runs the real parser, chunker and embedder only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.ui_steps import open_app
from tests.platform_fixtures import LivePlatform

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}
SEPARATED_NAME = "quarterly_financial-statement.2026.consolidated-annex-for-the-board-of-directors.txt"
ONE_WORD_NAME = "Betriebsvereinbarungsentwurfsueberarbeitungsprotokollzusammenfassung2026.txt"
BROKEN_NAME = "minutes-of-the-extraordinary-general-meeting-of-the-harbour-authority.pdf"
TEXT_TITLE = "Tide tables for the harbour, spring and neap tides, with the pilot notes for every berth"
TEXT = "Spring tides come twice a month, at new and full moon. Neap tides come in between."
ROWS = "[data-testid=document-row]"

# What scrolls sideways: the page, the screen's scroll container (`main`), the table's own scroll box; and what
# sticks out past the viewport's right edge, for the failure message.
SIDEWAYS = """() => {
  const overflow = (el) => (el ? el.scrollWidth - el.clientWidth : 0);
  return {
    page: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    main: overflow(document.getElementById("main")),
    table: overflow(document.querySelector("[data-testid=document-table]")?.parentElement),
    wide: [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && el.getClientRects().length > 0)
      .slice(-5)
      .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}`),
  };
}"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("phone-uploads")
    separated = folder / SEPARATED_NAME
    separated.write_text(TEXT)
    one_word = folder / ONE_WORD_NAME
    one_word.write_text(TEXT)
    broken = folder / BROKEN_NAME
    broken.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\n")  # cut off: no trailer, no /Root
    return {"separated": separated, "one_word": one_word, "broken": broken}


@pytest.fixture(scope="module")
def workspace_id(live: LivePlatform) -> str:
    """A workspace holding a text document with long metadata values, made through the REST API."""
    api = httpx.Client(base_url=f"{live.base_url}/api", headers=live.headers(), timeout=120)
    ws = api.post("/workspaces", json={"name": "Harbour office on a phone"})
    assert ws.status_code == 201, ws.text
    metadata = {"department": "Harbour master's office, berth allocation", "reviewed_by": "the-deputy-harbour-master"}
    doc = api.post(
        f"/workspaces/{ws.json()['id']}/documents",
        json={"type": "text", "title": TEXT_TITLE, "text": TEXT, "metadata": metadata},
    )
    assert doc.status_code in (200, 201, 202), doc.text
    return str(ws.json()["id"])


def _row(page: Any, name: str) -> Any:
    return page.locator(f"{ROWS}[data-document-name='{name}']")


def _shot(target: Any, name: str) -> None:
    """A screenshot of ``target``: a page, or one element (the screen scrolls inside `main`, not the page)."""
    target.screenshot(path=str(ARTIFACTS / f"documents-phone-{name}.png"))


def _assert_nothing_scrolls_sideways(page: Any) -> None:
    found = page.evaluate(SIDEWAYS)
    assert found["page"] <= found["viewport"] and found["main"] <= 1 and found["table"] <= 1, found


def _assert_inside_viewport(locator: Any) -> None:
    """Visible, and wholly between the viewport's left and right edges (not clipped or scrolled away)."""
    assert locator.is_visible()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def test_the_documents_table_is_stacked_cards_on_a_phone(
    browser_page: Any, live: LivePlatform, files: dict[str, Path], workspace_id: str
) -> None:
    context = browser_page.context.browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_app(page, live, f"/documents/{workspace_id}")
        page.get_by_test_id("upload-input").set_input_files([str(p) for p in files.values()])
        names = (SEPARATED_NAME, ONE_WORD_NAME, TEXT_TITLE)
        for name in names:
            _row(page, name).locator("[data-testid=document-status][data-status=processed]").wait_for(timeout=180_000)
        broken = _row(page, BROKEN_NAME)
        broken.locator("[data-testid=document-status][data-status=error]").wait_for(timeout=180_000)
        page.wait_for_timeout(300)  # the last live updates lay out
        table = page.get_by_test_id("document-table")
        broken.scroll_into_view_if_needed()
        _shot(page, "1-cards")

        # 1. Nothing scrolls sideways: not the page, not the screen's scroll container, not the table in its box.
        _assert_nothing_scrolls_sideways(page)

        # 2. Each row is a card: every cell but the name and the buttons shows its column as a visible label.
        first = _row(page, TEXT_TITLE)
        labels = [label.inner_text().strip() for label in first.locator(".cell-label").all() if label.is_visible()]
        assert labels == ["Source", "Status", "Metadata", "Chunks", "Size", "Updated"], labels
        assert first.get_by_test_id("metadata-chip").first.is_visible()
        _shot(first, "2-card-with-metadata")

        # 3. Every action, the status and the failure reason are on screen and whole; Preview opens its panel.
        for name in names:
            row = _row(page, name)
            _assert_inside_viewport(row.get_by_role("button", name=f"Preview document {name}"))
            _assert_inside_viewport(row.get_by_role("button", name=f"Edit metadata of {name}"))
            _assert_inside_viewport(row.get_by_role("button", name=f"Delete document {name}"))
            _assert_inside_viewport(row.get_by_test_id("document-status"))
        _assert_inside_viewport(broken.get_by_role("button", name=f"Retry document {BROKEN_NAME}"))
        _assert_inside_viewport(broken.get_by_role("button", name=f"Edit metadata of {BROKEN_NAME}"))
        _assert_inside_viewport(broken.get_by_role("button", name=f"Delete document {BROKEN_NAME}"))
        reason = broken.get_by_test_id("document-reason")
        _assert_inside_viewport(reason)
        assert reason.inner_text().startswith("This PDF is damaged or incomplete."), reason.inner_text()
        for column in ("name", "status", "updated"):  # the sortable headers stay reachable, as a sort bar
            _assert_inside_viewport(page.get_by_test_id(f"sort-{column}").get_by_role("button"))

        _row(page, SEPARATED_NAME).get_by_role("button", name=f"Preview document {SEPARATED_NAME}").click()
        preview = page.get_by_test_id("document-preview")
        preview.get_by_test_id("document-preview-text").wait_for()
        _assert_nothing_scrolls_sideways(page)
        _shot(page, "3-preview")
        page.keyboard.press("Escape")

        # 4. At desktop width it is a table again: the header row shows, cells sit side by side, labels hidden.
        page.set_viewport_size(DESKTOP)
        page.wait_for_timeout(300)
        assert table.locator("thead th").nth(1).is_visible()
        assert not first.locator(".cell-label").first.is_visible()
        status, updated = first.get_by_test_id("document-status"), first.get_by_test_id("document-updated")
        status_box, updated_box = status.bounding_box(), updated.bounding_box()
        assert status_box and updated_box and abs(status_box["y"] - updated_box["y"]) < 20, (status_box, updated_box)
        _shot(table, "4-desktop")
    finally:
        context.close()
