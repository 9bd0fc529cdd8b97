"""The chat screen in headless Chromium against `quarry serve` and the real local model: the workspace a fresh
browser picks, the no-documents banner, progress before the first token, the live region, copy / regenerate /
edit-and-resend, a stopped answer, rename surviving a reload, and the conversation drawer at 390 px.

The tests run in order against one server and share what they made through ``Journey``; each answer costs a
real generation (10-60 s on CPU), so they are few and short (``max_tokens`` stays the UI's default)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.platform_fixtures import LivePlatform

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.llm]

POLICY = (
    "Annual leave policy.\n\nEvery employee receives 27 days of paid annual leave per year. "
    "Unused days can be carried over until the end of March.\n\n"
    "Part-time staff receive leave in proportion to their working hours."
)
QUESTION = "How many days of paid annual leave does an employee get?"
ANSWER_TIMEOUT_MS = 300_000
SERVER_PHASES = ("condensing", "searching", "reading", "writing")


@dataclass
class Journey:
    workspace_id: str = ""
    session_id: str = ""


@pytest.fixture(scope="module")
def journey(live: LivePlatform) -> Journey:
    """A workspace holding the leave policy, made through the REST API and processed before the UI opens."""
    api = httpx.Client(base_url=f"{live.base_url}/api", headers=live.headers(), timeout=120)
    ws = api.post("/workspaces", json={"name": "HR handbook", "chunk_size": 128, "chunk_overlap": 16})
    assert ws.status_code == 201, ws.text
    workspace_id = ws.json()["id"]
    doc = api.post(f"/workspaces/{workspace_id}/documents", json={"type": "text", "title": "leave", "text": POLICY})
    assert doc.status_code in (200, 201, 202), doc.text
    deadline = time.time() + 180
    while api.get(f"/workspaces/{workspace_id}/documents").json()["items"][0]["status"] != "processed":
        assert time.time() < deadline, "the policy was not processed in time"
        time.sleep(0.5)
    return Journey(workspace_id=workspace_id)


@pytest.fixture
def fresh_page(browser_page: Any) -> Iterator[Any]:
    """A page in a new browser context: empty localStorage, as a browser that never opened Quarry."""
    context = browser_page.context.browser.new_context(viewport={"width": 1400, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


def open_chat(page: Any, live: LivePlatform, route: str = "/chat") -> None:
    page.goto(f"{live.base_url}/#{route}")
    page.wait_for_selector("[data-testid=connection-status][data-status=open]")


def wait_final(page: Any) -> str:
    """The last answer's text once no answer is streaming any more."""
    page.wait_for_selector(
        "[data-testid=assistant-message][data-status=streaming]", state="detached", timeout=ANSWER_TIMEOUT_MS
    )
    answer = page.locator("[data-testid=answer-text][data-final=true]").last
    answer.wait_for(timeout=ANSWER_TIMEOUT_MS)
    return str(answer.inner_text())


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"chat-{name}.png"), full_page=True)


def test_a_fresh_browser_answers_from_its_workspace_showing_progress_then_announcing(
    fresh_page: Any, live: LivePlatform, journey: Journey
) -> None:
    page = fresh_page
    open_chat(page, live)
    picker = page.get_by_test_id("workspace-picker")
    try:
        page.wait_for_function(
            "id => document.querySelector('[data-testid=workspace-picker]').value === id",
            arg=journey.workspace_id,
            timeout=120_000,  # the machine may be busy: the page and the workspace list share two CPUs
        )
    except Exception:
        shot(page, "default-workspace-failed")  # what the page showed instead
        raise
    assert page.get_by_test_id("no-documents-banner").count() == 0
    assert not page.get_by_test_id("conversations-toggle").is_visible()  # wide screens show the list itself
    assert page.get_by_test_id("session-drawer").is_visible()
    for label in page.get_by_test_id("model-picker").locator("option").all_inner_texts():
        assert label.count("(llama.cpp)") <= 1, label  # the provider is named once
    shot(page, "default-workspace")

    page.get_by_test_id("chat-input").fill(QUESTION)
    page.get_by_test_id("send-button").click()
    # Before the first token the server's phases show ("sent" is the UI's own state before any of them).
    phase = page.locator("[data-testid=answer-phase]:not([data-phase=sent])")
    phase.wait_for(timeout=120_000)
    assert phase.get_attribute("data-phase") in SERVER_PHASES  # shown only while no text has come
    shot(page, "progress")

    text = wait_final(page)
    assert "27" in text
    assert page.get_by_test_id("answer-phase").count() == 0
    announced = page.get_by_test_id("answer-announcer")
    assert announced.get_attribute("aria-live") == "polite"
    assert announced.inner_text().startswith("Answer: ") and "27" in announced.inner_text()
    assert picker.input_value() == journey.workspace_id
    shot(page, "announced")
    journey.session_id = page.evaluate("location.hash").rsplit("/", 1)[-1]
    assert journey.session_id


def test_copy_regenerate_edit_and_a_stopped_answer(fresh_page: Any, live: LivePlatform, journey: Journey) -> None:
    assert journey.session_id, "the first test must run first"
    page = fresh_page
    open_chat(page, live, f"/chat/{journey.session_id}")
    wait_final(page)

    page.get_by_test_id("copy-answer").last.click()
    page.locator("[data-testid=copy-status]", has_text="Copied").wait_for()
    assert "27" in page.evaluate("navigator.clipboard.readText()")
    shot(page, "copied")

    page.get_by_test_id("regenerate-answer").click()
    page.get_by_test_id("earlier-answers").wait_for()
    wait_final(page)
    assert page.get_by_test_id("user-message").count() == 1  # the same question, answered again
    earlier = page.get_by_test_id("earlier-answers")
    earlier.locator("summary").click()
    assert "27" in earlier.get_by_test_id("earlier-answer").first.inner_text()
    shot(page, "regenerated")

    page.get_by_test_id("edit-question").click()
    box = page.get_by_test_id("chat-input")
    assert box.input_value() == QUESTION
    box.fill("Write a long essay on how unused annual leave days can be carried over.")
    page.get_by_test_id("send-button").click()
    page.get_by_test_id("user-message").nth(1).wait_for()
    assert "carried over" in page.get_by_test_id("user-message").nth(1).inner_text()
    # Stop while the model reads the prompt (a short answer could end before a click on streaming text).
    page.locator("[data-testid=assistant-message][data-status=streaming] [data-testid=answer-phase]").wait_for()
    page.get_by_test_id("stop-button").click()
    stopped = page.locator("[data-testid=assistant-message][data-status=cancelled]").last
    stopped.get_by_test_id("answer-stopped").wait_for(timeout=60_000)
    stopped.locator("[data-testid=answer-text][data-final=true]").wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert stopped.get_by_test_id("thumbs-up").count() == 0  # not offered for feedback as if complete
    shot(page, "stopped")

    page.reload()
    page.wait_for_selector("[data-testid=connection-status][data-status=open]")
    reread = page.locator("[data-testid=assistant-message][data-status=cancelled]").last
    reread.get_by_test_id("answer-stopped").wait_for()  # the history says it was stopped too
    assert page.get_by_test_id("earlier-answers").count() == 1  # and the regeneration stays one question


def test_rename_survives_a_reload_and_no_documents_is_explicit(
    fresh_page: Any, live: LivePlatform, journey: Journey
) -> None:
    assert journey.session_id, "the first test must run first"
    page = fresh_page
    open_chat(page, live)
    item = page.locator(f"[data-testid=session-item][data-session-id='{journey.session_id}']")
    assert item.get_by_test_id("session-title").inner_text() == QUESTION  # short enough to be its own title
    assert item.get_by_test_id("session-workspace").inner_text() == "HR handbook"
    item.get_by_test_id("session-rename").click()
    item.get_by_test_id("session-title-input").fill("Leave days")
    item.get_by_test_id("session-title-input").press("Enter")
    item.locator("[data-testid=session-title]", has_text="Leave days").wait_for()
    page.reload()
    page.wait_for_selector("[data-testid=connection-status][data-status=open]")
    item.locator("[data-testid=session-title]", has_text="Leave days").wait_for()
    shot(page, "renamed")

    page.get_by_test_id("workspace-picker").select_option("")
    banner = page.get_by_test_id("no-documents-banner")
    banner.wait_for()
    assert "Answering without documents" in banner.inner_text()
    shot(page, "no-documents")
    page.reload()
    page.wait_for_selector("[data-testid=connection-status][data-status=open]")
    page.get_by_test_id("no-documents-banner").wait_for()  # an explicit choice is remembered


def test_the_conversation_list_is_a_drawer_at_390_px(browser_page: Any, live: LivePlatform, journey: Journey) -> None:
    assert journey.session_id, "the first test must run first"
    context = browser_page.context.browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_chat(page, live)
        drawer = page.get_by_test_id("session-drawer")
        toggle = page.get_by_test_id("conversations-toggle")
        assert not drawer.is_visible()
        toggle.click()
        item = drawer.locator(f"[data-testid=session-item][data-session-id='{journey.session_id}']")
        item.wait_for(state="visible")
        assert page.evaluate("document.activeElement.dataset.testid") == "drawer-close"
        box = drawer.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        shot(page, "drawer-390")
        page.keyboard.press("Escape")
        drawer.wait_for(state="hidden")
        assert page.evaluate("document.activeElement.dataset.testid") == "conversations-toggle"
        toggle.click()
        item.get_by_test_id("session-open").click()
        drawer.wait_for(state="hidden")
        page.locator("[data-testid=answer-text][data-final=true]").first.wait_for()
        shot(page, "drawer-390-opened")
    finally:
        context.close()
