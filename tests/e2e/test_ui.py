"""The UI in headless Chromium against `quarry serve`: upload, watch status, ask, stream, cite, feedback, reopen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.ui_steps import create_workspace, open_app
from tests.platform_fixtures import LivePlatform

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.llm]


@dataclass
class Journey:
    """What one test of this module leaves for the next (they run in order, against one server)."""

    workspace_id: str | None = None


@pytest.fixture(scope="module")
def journey() -> Journey:
    return Journey()


def test_create_workspace_upload_and_see_status(
    browser_page: Any, live: LivePlatform, files: dict[str, Path], journey: Journey
) -> None:
    page = browser_page
    open_app(page, live, "/workspaces")
    workspace_id = create_workspace(page, "HR handbook", chunk_size="128", chunk_overlap="16")

    open_app(page, live, f"/documents/{workspace_id}")
    page.get_by_test_id("upload-input").set_input_files([str(files["good"]), str(files["broken"])])
    good = page.locator("[data-testid=document-row][data-document-name='leave-policy.txt']")
    good.locator("[data-status=processed]").first.wait_for(timeout=180_000)
    broken = page.locator("[data-testid=document-row][data-document-name='scan.pdf']")
    broken.locator("[data-testid=document-status][data-status=error]").wait_for(timeout=180_000)
    reason = broken.get_by_test_id("document-reason").inner_text()
    assert reason.startswith("This PDF is damaged or incomplete.")  # in words, not the parser's exception
    page.screenshot(path=str(ARTIFACTS / "documents.png"), full_page=True)
    journey.workspace_id = workspace_id


def test_ask_stream_cite_feedback_and_reopen(browser_page: Any, live: LivePlatform, journey: Journey) -> None:
    page = browser_page
    workspace_id = journey.workspace_id
    assert workspace_id, "the upload test must run first"
    open_app(page, live, "/chat")
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("workspace-picker").select_option(workspace_id)
    page.get_by_test_id("chat-input").fill("How many days of paid annual leave does an employee get?")
    page.get_by_test_id("send-button").click()

    page.wait_for_selector("[data-testid=assistant-message][data-status=streaming]", timeout=120_000)
    answer = page.locator("[data-testid=answer-text][data-final=true]").last
    answer.wait_for(timeout=300_000)
    assert "27" in answer.inner_text()

    chip = page.get_by_test_id("citation-link").or_(page.get_by_test_id("source-chip")).first
    chip.click()
    panel = page.get_by_test_id("citation-panel")
    panel.wait_for()
    assert "27 days" in panel.get_by_test_id("citation-text").inner_text()
    assert "leave-policy" in panel.get_by_test_id("citation-title").inner_text()
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

    page.get_by_test_id("thumbs-up").last.click()
    page.get_by_test_id("feedback-thanks").last.wait_for()
    assert live.services.adapters.catalog.list_feedback()[-1].rating == 1

    session = page.get_by_test_id("session-item").first
    session_id = session.get_attribute("data-session-id")
    page.get_by_test_id("new-chat").click()
    page.locator(f"[data-testid=session-item][data-session-id='{session_id}']").get_by_test_id("session-open").click()
    page.locator("[data-testid=answer-text]", has_text="27").first.wait_for()
