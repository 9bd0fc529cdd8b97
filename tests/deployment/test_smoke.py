"""`quarry smoke` against a live `quarry serve`: real HTTP, the presigned POST, the WebSocket, the local models."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from quarry.cli import app
from quarry.deployment.smoke import SMOKE_DOCUMENT, SmokeDocument, SmokeOptions, run_smoke
from quarry.deployment.smoke_target import LocalTarget
from tests.platform_fixtures import LivePlatform, free_port, live, model_registry

__all__ = ["live", "model_registry"]  # fixtures, imported as tests/integration/conftest.py does

pytestmark = [pytest.mark.integration, pytest.mark.llm]

CHECKS = ["sign in", "create workspace", "open WebSocket", "upload", "processed", "chat", "search"]
CLEANUP = ["delete session", "delete workspace"]


def _api(live: LivePlatform, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"{live.base_url}/api{path}", headers=live.headers(), timeout=60)


def _smoke_workspaces(live: LivePlatform) -> list[dict[str, Any]]:
    items = _api(live, "GET", "/workspaces").json()["items"]
    return [w for w in items if w["name"].startswith("quarry-smoke-")]


def _session_ids(live: LivePlatform) -> set[str]:
    return {s["id"] for s in _api(live, "GET", "/sessions").json()["items"]}


def _report(stdout: str) -> dict[str, Any]:
    """The `--json` report: the indented document from its first line `{` (server logs are one-line JSON)."""
    lines = stdout.splitlines()
    report: dict[str, Any] = json.loads("\n".join(lines[lines.index("{") :]))
    return report


def test_every_step_passes_and_nothing_is_left_behind(live: LivePlatform) -> None:
    sessions_before = _session_ids(live)
    seen: list[str] = []

    report = run_smoke(
        LocalTarget(live.base_url), SmokeOptions(timeout_seconds=300), on_step=lambda s: seen.append(s.name)
    )

    assert report.ok, report.failure
    assert [s.name for s in report.steps] == CHECKS + CLEANUP == seen
    steps = {s.name: s for s in report.steps}
    assert report.identity == "the dev identity from /config.json"
    assert "ping answered" in steps["open WebSocket"].detail
    assert "citation(s) of the document" in steps["chat"].detail
    assert steps["search"].detail.startswith("the document is hit 1 of")
    assert all(s.seconds > 0 for s in report.steps)
    # What it made is gone: the workspace (it waited for the 404), its chat session.
    assert steps["delete workspace"].detail.endswith("is gone")
    assert _smoke_workspaces(live) == []
    assert _session_ids(live) == sessions_before


def test_the_cli_prints_each_step_and_passes(live: LivePlatform) -> None:
    result = CliRunner().invoke(app, ["smoke", "--url", live.base_url, "--timeout", "300"])

    assert result.exit_code == 0, result.output
    # The in-process server's handlers log JSON to the same stdout here; a real `quarry smoke` prints only its own.
    lines = [line for line in result.stdout.splitlines() if not line.startswith("{")]
    assert lines[0] == f"smoke: quarry serve at {live.base_url}"
    assert len(lines) == len(CHECKS + CLEANUP) + 2, lines
    for name, line in zip(CHECKS + CLEANUP, lines[1:-1], strict=True):
        assert line.lstrip().startswith(f"✓ {name}") and " s  " in line, line
    assert lines[-1].startswith(f"smoke passed: {len(CHECKS + CLEANUP)} steps in ")
    assert _smoke_workspaces(live) == []


def test_a_wrong_url_fails_at_the_first_step() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    result = CliRunner().invoke(app, ["smoke", "--url", url, "--json"])

    assert result.exit_code == 1
    report = _report(result.stdout)
    assert report["ok"] is False and report["failed_step"] == "sign in"
    (step,) = report["steps"]
    assert f"could not reach {url}/config.json" in step["detail"] and "is `quarry serve` running" in step["detail"]


def test_a_bad_token_fails_at_the_first_call_and_leaves_nothing(live: LivePlatform) -> None:
    result = CliRunner().invoke(app, ["smoke", "--url", live.base_url, "--token", "abc.def.ghi", "--json"])

    assert result.exit_code == 1
    report = _report(result.stdout)
    assert report["identity"] == "the token given with --token"
    assert [(s["name"], s["ok"]) for s in report["steps"]] == [("sign in", True), ("create workspace", False)]
    assert "POST /workspaces answered 401 unauthorized" in report["steps"][1]["detail"]
    assert _smoke_workspaces(live) == []


def test_a_step_failing_midway_still_deletes_the_workspace(live: LivePlatform) -> None:
    """An upload the server refuses (an .exe): the run stops there, and the workspace it made is removed."""
    refused = SmokeDocument(filename="quarry-smoke.exe", text=SMOKE_DOCUMENT.text, question=SMOKE_DOCUMENT.question)

    report = run_smoke(LocalTarget(live.base_url), SmokeOptions(timeout_seconds=60, document=refused))

    assert [(s.name, s.ok) for s in report.steps] == [
        ("sign in", True),
        ("create workspace", True),
        ("open WebSocket", True),
        ("upload", False),
        ("delete workspace", True),
    ]
    assert report.failure is not None and "upload-url answered 415" in report.failure.detail
    assert _smoke_workspaces(live) == []
