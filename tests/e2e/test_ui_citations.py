"""Citations in headless Chromium against `quarry serve` and the real local model: a source is labelled by the
document's name (not the title embedded in the file), markers follow the sentence's full stop and never wrap
alone, the panel shows the passage with its supporting sentence highlighted and no score until Details is
opened, and its link serves the uploaded file.

One answer costs a real generation (10-60 s on CPU), so the module asks once and checks everything on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.ui_steps import create_workspace, open_app
from tests.platform_fixtures import LivePlatform

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.llm]

FILE_NAME = "returns-policy.md"
EMBEDDED_TITLE = "Acme Store Handbook"
POLICY = (
    f"# {EMBEDDED_TITLE}\n\n"
    "Customers can return any item within 27 days of delivery. "
    "Refunds are paid to the original card within five working days.\n\n"
    "Gift cards cannot be returned."
)
QUESTION = "Within how many days can customers return an item?"
ANSWER_TIMEOUT_MS = 300_000
WIDTHS = range(700, 389, -9)  # the answer re-wraps at each width; no marker may start a line alone


@dataclass
class Asked:
    workspace_id: str = ""


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uploads") / FILE_NAME
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def asked() -> Asked:
    return Asked()


# Each marker run: is it on one line, and on the line of the character before it?
MARKER_LAYOUT = """(answer) => [...answer.querySelectorAll('.cite-run')].map((run) => {
  const rects = run.getClientRects();
  const before = document.createRange();
  let node = run.previousSibling;
  while (node && node.nodeType !== Node.TEXT_NODE) node = node.lastChild || node.previousSibling;
  const tops = [...rects].filter((r) => r.width > 0).map((r) => r.top);
  const oneLine = tops.every((top) => Math.abs(top - tops[0]) < 4);
  if (!node || !node.data.trimEnd().length) return { oneLine, sameLine: true };
  const end = node.data.trimEnd().length;
  before.setStart(node, end - 1);
  before.setEnd(node, end);
  const last = before.getClientRects()[0];
  const first = rects[0];
  return { oneLine, sameLine: Math.abs(last.top - first.top) < 4 };
})"""


def test_upload_a_file_whose_title_is_not_its_name(
    browser_page: Any, live: LivePlatform, policy_file: Path, asked: Asked
) -> None:
    page = browser_page
    open_app(page, live, "/workspaces")
    workspace_id = create_workspace(page, "Store policies")

    open_app(page, live, f"/documents/{workspace_id}")
    page.get_by_test_id("upload-input").set_input_files([str(policy_file)])
    document = page.locator(f"[data-testid=document-row][data-document-name='{FILE_NAME}']")
    document.locator("[data-status=processed]").first.wait_for(timeout=180_000)
    # The parser did find the embedded title, and search hits carry the name too: the labels below are the name's.
    search = httpx.post(
        f"{live.base_url}/api/workspaces/{workspace_id}/search",
        json={"query": "return an item", "top_k": 1},
        headers=live.headers(),
        timeout=60,
    )
    assert search.status_code == 200, search.text
    [hit] = search.json()["hits"]
    assert (hit["title"], hit["document_name"]) == (EMBEDDED_TITLE, FILE_NAME)
    asked.workspace_id = workspace_id


def test_the_answer_cites_the_file_by_name_with_markers_after_the_full_stop(
    browser_page: Any, live: LivePlatform, asked: Asked
) -> None:
    page = browser_page
    assert asked.workspace_id, "the upload test must run first"
    open_app(page, live, "/chat")
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("workspace-picker").select_option(asked.workspace_id)
    page.get_by_test_id("chat-input").fill(QUESTION)
    page.get_by_test_id("send-button").click()
    answer = page.locator("[data-testid=answer-text][data-final=true]").last
    answer.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "27" in answer.inner_text()

    chips = page.get_by_test_id("source-chip")
    assert chips.count() >= 1
    assert [chips.nth(i).inner_text() for i in range(chips.count())] == [
        f"[{n}] {FILE_NAME}" for n in range(1, chips.count() + 1)
    ]
    markers = answer.get_by_test_id("citation-link")
    assert markers.count() >= 1, answer.inner_html()
    assert FILE_NAME in (markers.first.get_attribute("aria-label") or "")
    assert EMBEDDED_TITLE not in (markers.first.get_attribute("aria-label") or "")

    text = answer.inner_text().replace("\u2060", "")
    assert not re.search(r"\]\s*[.!?,;:]", text), text  # no "[1]." left: punctuation comes first
    assert not re.search(r"\s\[\d", text), text  # no space before a marker either
    page.screenshot(path=str(ARTIFACTS / "citations-answer.png"), full_page=True)

    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for run in answer.evaluate(MARKER_LAYOUT):
            assert run == {"oneLine": True, "sameLine": True}, f"a marker wrapped at {width} px"
    page.screenshot(path=str(ARTIFACTS / "citations-answer-narrow.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def test_the_panel_shows_the_source_not_internals_and_opens_the_file(
    browser_page: Any, live: LivePlatform, policy_file: Path
) -> None:
    page = browser_page
    answer = page.locator("[data-testid=answer-text][data-final=true]").last
    answer.get_by_test_id("citation-link").first.click()
    panel = page.get_by_test_id("citation-panel")
    panel.wait_for()

    assert panel.get_by_test_id("citation-title").inner_text() == FILE_NAME
    assert EMBEDDED_TITLE in panel.get_by_test_id("citation-subtitle").inner_text()
    passage = panel.get_by_test_id("citation-text")
    assert passage.locator("h1").inner_text() == EMBEDDED_TITLE  # rendered Markdown, not "# ..."
    highlight = " ".join(m.inner_text() for m in passage.get_by_test_id("citation-highlight").all())
    assert "27 days" in highlight, (answer.inner_text(), passage.inner_html())
    assert "Gift cards" not in highlight

    score = panel.get_by_test_id("citation-score")
    assert not score.is_visible()
    assert "Score" not in panel.inner_text() and "characters" not in panel.inner_text().lower()
    page.screenshot(path=str(ARTIFACTS / "citations-panel.png"), full_page=True)
    panel.locator("summary", has_text="Details").click()
    assert score.is_visible() and re.fullmatch(r"\d\.\d{3}", score.inner_text())
    page.screenshot(path=str(ARTIFACTS / "citations-panel-details.png"), full_page=True)

    link = panel.get_by_test_id("citation-source-link")
    link.wait_for()
    assert link.get_attribute("target") == "_blank"
    href = link.get_attribute("href")
    assert href and href.startswith(f"{live.base_url}/downloads?")
    response = page.request.get(href)
    assert response.status == 200
    assert response.body() == policy_file.read_bytes()
    assert FILE_NAME in response.headers["content-disposition"]


def test_search_hits_are_labelled_by_the_document_name(browser_page: Any, live: LivePlatform, asked: Asked) -> None:
    page = browser_page
    assert asked.workspace_id, "the upload test must run first"
    open_app(page, live, f"/search/{asked.workspace_id}")
    page.get_by_test_id("search-input").fill("return an item")
    page.get_by_test_id("search-submit").click()
    hit = page.get_by_test_id("search-hit").first
    hit.wait_for(timeout=60_000)
    assert hit.get_by_test_id("hit-name").inner_text() == FILE_NAME
    assert EMBEDDED_TITLE in hit.get_by_test_id("hit-subtitle").inner_text()
    page.screenshot(path=str(ARTIFACTS / "citations-search.png"), full_page=True)
