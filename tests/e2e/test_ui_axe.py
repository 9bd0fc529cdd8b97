"""Accessibility of every screen in headless Chromium: axe-core (frontend's devDependency) finds no serious or
critical violation, on a desktop (1400x900) and a phone (390x844) viewport, and nothing scrolls sideways on the
phone. Each screen is scanned in a realistic state: documents with a failed one, search with results, chat with a
cited answer and its source open, the usage panel with a row. A screenshot of each is kept."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.ui_steps import create_workspace, open_app
from tests.platform_fixtures import LivePlatform

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.llm]

AXE_JS = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
VIEWPORTS = {"desktop": (1400, 900), "phone": (390, 844)}
PHONE_WIDTH = VIEWPORTS["phone"][0]

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    rule: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""

# What scrolls sideways: the page itself, or the screen's own scroll container (`main` scrolls, not the body).
HORIZONTAL_OVERFLOW = """(limit) => {
  const out = [];
  const root = document.documentElement;
  if (root.scrollWidth > limit) out.push(`the page is ${root.scrollWidth} px wide`);
  const main = document.getElementById("main");
  if (main && main.scrollWidth > main.clientWidth + 1) {
    out.push(`#main scrolls: ${main.scrollWidth} > ${main.clientWidth} px`);
  }
  if (out.length) {
    const wide = [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > limit + 1 && el.getClientRects().length > 0)
      .slice(-5)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")}`);
    out.push(`wider than ${limit} px: ${wide.join(", ")}`);
  }
  return out;
}"""


# Content sticking out of its card (e.g. a table wider than the usage panel's column), at any viewport.
CARD_OVERFLOW = """() => [...document.querySelectorAll(".card")]
  .filter((card) => card.scrollWidth > card.clientWidth + 1)
  .map((card) => {
    const what = card.dataset.testid || card.className;
    return `content overflows ${what}: ${card.scrollWidth} > ${card.clientWidth} px`;
  })"""


@dataclass
class Findings:
    """What the scans found, by screen and viewport; each test asserts on its own screens."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    workspace_id: str | None = None

    def report(self, keys: list[str]) -> str:
        return "\n".join(f"{k}:\n  " + "\n  ".join(self.problems[k]) for k in keys if self.problems.get(k))


@pytest.fixture(scope="module")
def findings() -> Findings:
    return Findings()


def upload(live: LivePlatform, workspace_id: str, path: Path, content_type: str) -> None:
    """A file into the workspace the way the UI sends one: a presigned POST to the upload endpoint."""
    target = httpx.post(
        f"{live.base_url}/api/workspaces/{workspace_id}/documents/upload-url",
        headers=live.headers(),
        json={"filename": path.name, "content_type": content_type},
        timeout=30,
    )
    assert target.status_code == 200, target.text
    body = target.json()
    sent = httpx.post(
        body["url"], data=body["fields"], files={"file": (path.name, path.read_bytes(), content_type)}, timeout=30
    )
    assert sent.status_code in (200, 201, 204), sent.text


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds on the page as it is now."""
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `cd frontend && npm ci` (axe-core is a devDependency)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;undefined")
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [v for v in found if v["impact"] in BLOCKING_IMPACTS]


def scan(page: Any, findings: Findings, name: str, viewport: str, show: str | None = None) -> str:
    """Screenshot, axe and the overflow checks of the current screen (scrolled to ``show``); returns its key."""
    width, height = VIEWPORTS[viewport]
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(300)  # layout and the media queries settle
    if show:
        page.locator(show).scroll_into_view_if_needed()
    key = f"{name} @ {width}x{height}"
    page.screenshot(path=str(ARTIFACTS / f"axe-{name}-{viewport}.png"))
    problems = [f"[{v['impact']}] {v['rule']}: {v['help']} -> {json.dumps(v['targets'])}" for v in axe_violations(page)]
    problems += page.evaluate(CARD_OVERFLOW)
    if viewport == "phone":
        problems += page.evaluate(HORIZONTAL_OVERFLOW, PHONE_WIDTH)
    findings.problems[key] = problems
    return key


def scan_both(page: Any, findings: Findings, name: str, show: str | None = None) -> list[str]:
    keys = [scan(page, findings, name, viewport, show) for viewport in ("desktop", "phone")]
    page.set_viewport_size({"width": VIEWPORTS["desktop"][0], "height": VIEWPORTS["desktop"][1]})
    return keys


def test_sign_in_screen(browser_page: Any, live: LivePlatform, findings: Findings) -> None:
    """The Cognito sign-in form, reached by serving a Cognito config.json (no session is stored, so no call
    leaves the browser)."""
    page = browser_page
    cognito = {
        "apiUrl": "/api",
        "wsUrl": "/ws",
        "auth": {"mode": "cognito", "userPoolId": "eu-west-1_Axe0Check", "clientId": "axecheck", "region": "eu-west-1"},
    }
    page.route("**/config.json", lambda route: route.fulfill(json=cognito))
    try:
        page.goto(f"{live.base_url}/#/chat")
        page.get_by_test_id("signin-form").wait_for()
        keys = scan_both(page, findings, "sign-in")
    finally:
        page.unroute("**/config.json")
        page.goto("about:blank")  # the next goto loads the app again rather than changing only the hash
    assert not findings.report(keys), findings.report(keys)


def test_workspaces_and_documents(
    browser_page: Any, live: LivePlatform, files: dict[str, Path], findings: Findings
) -> None:
    page = browser_page
    open_app(page, live, "/workspaces")
    keys = scan_both(page, findings, "workspaces-empty")

    workspace_id = create_workspace(page, "Accessible handbook")
    findings.workspace_id = workspace_id

    # The documents arrive through the API (the upload UI has its own browser test): one indexed, one failed.
    upload(live, workspace_id, files["good"], "text/plain")
    upload(live, workspace_id, files["broken"], "application/pdf")
    open_app(page, live, f"/documents/{workspace_id}")
    good = page.locator("[data-testid=document-row][data-document-name='leave-policy.txt']")
    good.locator("[data-status=processed]").first.wait_for(timeout=180_000)
    broken = page.locator("[data-testid=document-row][data-document-name='scan.pdf']")
    broken.locator("[data-testid=document-status][data-status=error]").wait_for(timeout=180_000)
    keys += scan_both(page, findings, "documents")
    assert not findings.report(keys), findings.report(keys)


def test_search_with_results(browser_page: Any, live: LivePlatform, findings: Findings) -> None:
    page = browser_page
    assert findings.workspace_id, "the documents test must run first"
    open_app(page, live, f"/search/{findings.workspace_id}")
    rerank = page.get_by_test_id("search-rerank")
    assert rerank.is_disabled(), "the local deployment has no reranker: the option must be off"
    assert "No reranker is configured" in page.get_by_test_id("search-rerank-reason").inner_text()
    page.get_by_test_id("search-input").fill("paid annual leave")
    page.get_by_test_id("search-compare").check()
    page.get_by_test_id("search-submit").click()
    page.get_by_test_id("search-hit").first.wait_for(timeout=60_000)
    keys = scan_both(page, findings, "search")
    assert not findings.report(keys), findings.report(keys)


def test_chat_with_cited_answer_and_usage(browser_page: Any, live: LivePlatform, findings: Findings) -> None:
    page = browser_page
    assert findings.workspace_id, "the documents test must run first"
    open_app(page, live, "/chat")
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("workspace-picker").select_option(findings.workspace_id)
    page.get_by_test_id("chat-input").fill("How many days of paid annual leave does an employee get?")
    page.get_by_test_id("send-button").click()
    try:
        page.locator("[data-testid=answer-text][data-final=true]").last.wait_for(timeout=300_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "axe-chat-no-answer.png"))
        raise
    page.get_by_test_id("citation-link").or_(page.get_by_test_id("source-chip")).first.click()
    page.get_by_test_id("citation-panel").wait_for()
    keys = scan_both(page, findings, "chat-cited")

    open_app(page, live, "/workspaces")
    page.get_by_test_id("usage-row").first.wait_for()
    keys += scan_both(page, findings, "usage", show="[data-testid=usage-table]")
    assert not findings.report(keys), findings.report(keys)


def test_phone_menu_opens_closes_and_navigates(browser_page: Any, live: LivePlatform, findings: Findings) -> None:
    """At 390 px the navigation is behind the Menu button: open, Escape, open, choose a screen."""
    page = browser_page
    open_app(page, live, "/workspaces")
    page.set_viewport_size({"width": VIEWPORTS["phone"][0], "height": VIEWPORTS["phone"][1]})
    try:
        toggle = page.get_by_test_id("nav-toggle")
        assert toggle.is_visible()
        assert not page.get_by_test_id("nav-search").is_visible()
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        page.get_by_test_id("nav-search").wait_for(state="visible")
        keys = [scan(page, findings, "menu-open", "phone")]
        page.keyboard.press("Escape")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.evaluate("() => document.activeElement?.dataset.testid") == "nav-toggle"
        page.get_by_test_id("nav-search").wait_for(state="hidden")
        toggle.click()
        page.get_by_test_id("nav-search").click()
        page.wait_for_url("**/#/search**")
        assert toggle.get_attribute("aria-expanded") == "false"
    finally:
        page.set_viewport_size({"width": VIEWPORTS["desktop"][0], "height": VIEWPORTS["desktop"][1]})
    assert not findings.report(keys), findings.report(keys)


# Tab through the screen; every element that takes focus must show a ring (outline or box-shadow) when it has it.
TAB_STOP = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== "none";
  const testid = el.dataset.testid ? `[${el.dataset.testid}]` : "";
  const label = (el.textContent || el.getAttribute("aria-label") || "").trim().slice(0, 30);
  const name = `${el.tagName.toLowerCase()}${testid} "${label}"`;
  return { name, ring };
}"""


def unringed_tab_stops(page: Any, stops: int) -> tuple[list[str], list[str]]:
    page.locator("body").click(position={"x": 1, "y": 1})
    seen: list[str] = []
    missing: list[str] = []
    for _ in range(stops):
        page.keyboard.press("Tab")
        stop = page.evaluate(TAB_STOP)
        if stop is None:
            continue
        seen.append(stop["name"])
        if not stop["ring"]:
            missing.append(stop["name"])
    return seen, missing


@pytest.mark.parametrize("route", ["/workspaces", "/search"])
def test_keyboard_focus_is_visible(browser_page: Any, live: LivePlatform, findings: Findings, route: str) -> None:
    page = browser_page
    assert findings.workspace_id, "the documents test must run first"
    open_app(page, live, f"{route}/{findings.workspace_id}" if route == "/search" else route)
    seen, missing = unringed_tab_stops(page, 25)
    assert len(seen) >= 10, f"too few tab stops reached: {seen}"
    assert not missing, f"focused without a visible focus ring: {missing}"


def test_dark_scheme(browser_page: Any, live: LivePlatform, findings: Findings) -> None:
    """styles.css has a dark palette too (prefers-color-scheme): the same scan of the workspaces and documents."""
    page = browser_page
    assert findings.workspace_id, "the documents test must run first"
    page.emulate_media(color_scheme="dark")
    try:
        open_app(page, live, "/workspaces")
        keys = scan_both(page, findings, "workspaces-dark")
        open_app(page, live, f"/documents/{findings.workspace_id}")
        page.locator("[data-testid=document-row]").first.wait_for()
        keys += scan_both(page, findings, "documents-dark")
    finally:
        page.emulate_media(color_scheme="light")
    assert not findings.report(keys), findings.report(keys)


def test_the_scan_reports_what_it_should(browser_page: Any) -> None:
    """The check is not vacuous: a nameless button and a page wider than the phone are reported."""
    page = browser_page
    page.set_content(
        '<html lang="en"><body><main id="main"><button></button><div style="width:600px">x</div></main></body></html>'
    )
    assert "button-name" in [v["rule"] for v in axe_violations(page)]
    page.set_viewport_size({"width": VIEWPORTS["phone"][0], "height": VIEWPORTS["phone"][1]})
    try:
        assert any("the page is" in p for p in page.evaluate(HORIZONTAL_OVERFLOW, PHONE_WIDTH))
    finally:
        page.set_viewport_size({"width": VIEWPORTS["desktop"][0], "height": VIEWPORTS["desktop"][1]})
