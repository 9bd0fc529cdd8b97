"""The documents screen in headless Chromium against `quarry serve`: failure reasons in words, a live Updated
column, sort and filter, Retry on a failed row, a preview of a processed one, the same order after a reload.

No LLM is involved: uploading runs the real parser, chunker and embedder only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.ui_steps import create_workspace, open_app
from tests.platform_fixtures import LivePlatform

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

GOOD_NAME = "quarterly_financial-statement.2026.consolidated-annex-for-the-board.txt"
GOOD_TEXT = (
    "Tide tables for the harbour.\n\nSpring tides come twice a month, at new and full moon. "
    "Neap tides come in between, when the sun and the moon pull at right angles."
)
BROKEN_NAME = "minutes.pdf"
ROWS = "[data-testid=document-row]"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("documents-uploads")
    good = folder / GOOD_NAME
    good.write_text(GOOD_TEXT)
    broken = folder / BROKEN_NAME
    broken.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\n")  # cut off: no trailer, no /Root
    return {"good": good, "broken": broken}


def _row(page: Any, name: str) -> Any:
    return page.locator(f"{ROWS}[data-document-name='{name}']")


def _names(page: Any) -> list[str]:
    return [str(n) for n in page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.documentName)")]


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"documents-{name}.png"), full_page=True)


def test_the_documents_screen_end_to_end(browser_page: Any, live: LivePlatform, files: dict[str, Path]) -> None:
    page = browser_page
    open_app(page, live, "/workspaces")
    workspace_id = create_workspace(page, "Harbour office")

    # Upload a good file and a damaged PDF; both end live, without a reload.
    open_app(page, live, f"/documents/{workspace_id}")
    page.get_by_test_id("upload-input").set_input_files([str(files["good"]), str(files["broken"])])
    good, broken = _row(page, GOOD_NAME), _row(page, BROKEN_NAME)
    good.locator("[data-testid=document-status][data-status=processed]").wait_for(timeout=180_000)
    broken.locator("[data-testid=document-status][data-status=error]").wait_for(timeout=180_000)

    # 1. The failure reason is a sentence, not the parser's exception.
    reason = broken.get_by_test_id("document-reason").inner_text()
    assert reason.startswith("This PDF is damaged or incomplete."), reason
    assert "PDFSyntaxError" not in reason and "Root" not in reason

    # 2. The Updated column was filled by the live status events (no reload happened).
    for row in (good, broken):
        updated = row.get_by_test_id("document-updated")
        assert updated.get_attribute("data-updated-at"), "the status event carried no update time"
        assert updated.inner_text().strip() not in ("", "—")

    # 3. The long name wraps at its separators within two lines, whole in the tooltip.
    name = good.locator(".file-name")
    assert name.get_attribute("title") == GOOD_NAME
    assert name.inner_text().replace("\n", "") == GOOD_NAME
    box = name.evaluate(
        "e => ({lines: Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)),"
        " over: e.scrollWidth > e.clientWidth})"
    )
    assert box["lines"] == 2 and not box["over"], box  # wrapped, clamped to two lines, nothing sticking out
    # No piece between separators is split across lines: the name breaks only at "_", "-" and ".".
    lines_per_piece = name.evaluate(
        "e => Array.from(e.childNodes).filter(n => n.nodeType === Node.TEXT_NODE)"
        ".map(n => { const r = document.createRange(); r.selectNodeContents(n); return r.getClientRects().length; })"
    )
    assert lines_per_piece and set(lines_per_piece) == {1}, lines_per_piece
    _shot(page, "1-uploaded")

    # 4. Sort by a column header (aria-sort follows), and filter by status.
    assert _names(page) == sorted([GOOD_NAME, BROKEN_NAME], key=str.lower)
    page.get_by_role("button", name="Status").click()
    assert page.get_by_test_id("sort-status").get_attribute("aria-sort") == "ascending"
    assert _names(page) == [BROKEN_NAME, GOOD_NAME]  # failed first
    page.get_by_role("button", name="Status").click()
    assert page.get_by_test_id("sort-status").get_attribute("aria-sort") == "descending"
    assert _names(page) == [GOOD_NAME, BROKEN_NAME]
    _shot(page, "2-sorted-by-status")
    page.get_by_role("combobox", name="Show").select_option("error")
    assert _names(page) == [BROKEN_NAME]
    assert page.get_by_test_id("document-count").inner_text() == "1 of 2 documents"
    _shot(page, "3-filtered-failed")
    page.get_by_role("combobox", name="Show").select_option("all")

    # 5. Retry on the failed row: it runs again, and fails again with the same sentence.
    with page.expect_response(lambda r: r.url.endswith("/retry") and r.request.method == "POST") as retried:
        broken.get_by_role("button", name=f"Retry document {BROKEN_NAME}").click()
    assert retried.value.status == 202
    broken.locator("[data-testid=document-status][data-status=error]").wait_for(timeout=180_000)
    assert broken.get_by_test_id("document-reason").inner_text().startswith("This PDF is damaged or incomplete.")
    _shot(page, "4-retried")

    # 6. Preview of the processed document: its details and extracted text.
    good.get_by_role("button", name=f"Preview document {GOOD_NAME}").click()
    preview = page.get_by_test_id("document-preview")
    preview.get_by_test_id("document-preview-text").wait_for()
    assert "Spring tides come twice a month" in preview.get_by_test_id("document-preview-text").inner_text()
    details = preview.get_by_test_id("document-preview-details").inner_text()
    assert "text/plain" in details and "processed" in details
    assert GOOD_NAME in preview.get_by_test_id("document-preview-name").inner_text()
    _shot(page, "5-preview")
    page.keyboard.press("Escape")
    assert preview.count() == 0

    # 7. The order is the same after a reload.
    before = _names(page)
    page.reload()
    page.wait_for_selector("[data-testid=connection-status][data-status=open]")
    _row(page, GOOD_NAME).wait_for()
    assert _names(page) == before
    _shot(page, "6-reloaded")
