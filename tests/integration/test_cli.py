"""The command line as a user runs it: exit codes, summaries, JSON output, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def quarry(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quarry.cli", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pg_database: str) -> dict[str, str]:
    data = tmp_path_factory.mktemp("cli")
    return {**os.environ, "QUARRY_DATA_DIR": str(data), "QUARRY_PG_DSN": pg_database, "HF_HUB_OFFLINE": "1"}


def test_ingest_then_search_with_a_bad_file_in_the_batch(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "tides.md").write_text("# Tides\n\nSpring tides at Plimsk reach 4.2 metres.\n")
    (tmp_path / "docs" / "birds.txt").write_text("Herons wait in shallow water and strike fast.\n")
    (tmp_path / "docs" / "empty.txt").write_text("   \n")
    (tmp_path / "docs" / "tool.exe").write_bytes(b"MZ\x90\x00")

    ingest = quarry("ingest", str(tmp_path / "docs"), "--workspace", "cli", "--json", env=env)
    assert ingest.returncode == 0, ingest.stderr
    summary = json.loads(ingest.stdout)
    assert summary["documents"] == 2 and summary["chunks"] >= 2
    reasons = {Path(f["file"]).name: f["reason"] for f in summary["failures"]}
    assert set(reasons) == {"empty.txt", "tool.exe"} and "unsupported" in reasons["tool.exe"]

    again = json.loads(quarry("ingest", str(tmp_path / "docs"), "--workspace", "cli", "--json", env=env).stdout)
    assert again["unchanged"] == 2 and again["documents"] == 0

    found = quarry("search", "how high are spring tides", "--workspace", "cli", "--json", "--top-k", "1", env=env)
    assert found.returncode == 0, found.stderr
    hit = json.loads(found.stdout)["hits"][0]
    assert "4.2 metres" in hit["text"] and hit["metadata"]["document_name"] == "tides.md"

    text = quarry("search", "heron", "--workspace", "cli", "--mode", "keyword", env=env)
    assert text.returncode == 0 and "birds" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--workspace", "nope"], "unknown workspace 'nope'"),
        (["search", "", "--workspace", "cli"], "query must not be empty"),
        (["search", "x", "--workspace", "cli", "--top-k", "0"], "top_k must be between 1 and 100"),
        (["search", "x", "--workspace", "cli", "--filter", "novalue"], "is not key=value"),
        (["ingest", "/no/such/path", "--workspace", "cli"], "no such file or folder"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(env: dict[str, str], args: list[str], message: str) -> None:
    result = quarry(*args, env=env)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
