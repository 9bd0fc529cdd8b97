"""Browser tier: headless Debian Chromium (no browser download) against `quarry serve` started in-process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform_fixtures import LivePlatform, live, model_registry

__all__ = ["POLICY", "LivePlatform", "browser_page", "files", "live", "model_registry"]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser_page(live: LivePlatform) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run `make setup-test`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


POLICY = (
    "Annual leave policy.\n\nEvery employee receives 27 days of paid annual leave per year. "
    "Unused days can be carried over until the end of March.\n\n"
    "Part-time staff receive leave in proportion to their working hours."
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    good = folder / "leave-policy.txt"
    good.write_text(POLICY)
    broken = folder / "scan.pdf"
    broken.write_bytes(b"%PDF-1.4\n% not a real pdf body\n%%EOF\n")
    return {"good": good, "broken": broken}
