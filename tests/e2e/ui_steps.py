"""Steps the browser tests share: open a screen once the WebSocket is up, create a workspace in the UI."""

from __future__ import annotations

from typing import Any

from tests.platform_fixtures import LivePlatform

__all__ = ["create_workspace", "open_app"]


def open_app(page: Any, live: LivePlatform, route: str) -> None:
    page.goto(f"{live.base_url}/#{route}")
    page.wait_for_selector("[data-testid=connection-status][data-status=open]")


def create_workspace(page: Any, name: str, **fields: str) -> str:
    """Fill the workspace form on the open Workspaces screen (``fields``: ``chunk_size="128"``, ...), create it,
    and return its id once its row shows."""
    page.get_by_test_id("workspace-name").fill(name)
    for field, value in fields.items():
        page.get_by_test_id(f"workspace-{field.replace('_', '-')}").fill(value)
    page.get_by_test_id("workspace-create").click()
    row = page.locator("[data-testid=workspace-row]", has_text=name)
    row.wait_for()
    workspace_id = row.get_attribute("data-workspace-id")
    assert workspace_id
    return str(workspace_id)
