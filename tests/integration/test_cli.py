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
        (["search", "x", "--workspace", "cli", "--filter", "novalue"], "expected key=value"),
        (["search", "x", "--workspace", "cli", "--filter-json", "{oops"], "--filter-json: not valid JSON"),
        (["search", "x", "--workspace", "cli", "--filter-json", '{"n": {"gte": "x"}}'], "--filter-json.n.gte: ranges"),
        (["search", "x", "--workspace", "cli", "--filter", "a=1", "--filter-json", "{}"], "not both"),
        (["ingest", "/no/such/path", "--workspace", "cli", "--meta", "1x=2"], "--meta.1x: keys start with a letter"),
        (["ingest", "/no/such/path", "--workspace", "cli"], "no such file or folder"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(env: dict[str, str], args: list[str], message: str) -> None:
    result = quarry(*args, env=env)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_metadata_from_options_and_a_sidecar_then_filters_and_an_edit(env: dict[str, str], tmp_path: Path) -> None:
    docs = tmp_path / "reviews"
    docs.mkdir()
    (docs / "kettle-1.txt").write_text("The kettle boils water in two minutes and the handle stays cool.\n")
    (docs / "kettle-2.txt").write_text("The kettle leaks water from the lid after a week of boiling.\n")
    (docs / "toaster.txt").write_text("The toaster browns bread evenly; boiling water is not its job.\n")
    sidecar = docs / "meta.csv"  # inside the folder: it is read, not indexed
    sidecar.write_text('file,product,rating,tags\nkettle-1.txt,kettle,5,"[home,fast]"\nkettle-2.txt,kettle,2,\n')

    ingest = quarry(
        "ingest", str(docs), "--workspace", "meta", "--meta", "source_site=shop", "--meta-file", str(sidecar),
        "--json", env=env,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["documents"] == 3  # the sidecar is not a document

    listed = json.loads(quarry("documents", "list", "--workspace", "meta", "--json", env=env).stdout)
    by_name = {d["name"]: d["metadata"] for d in listed}
    assert by_name == {
        "kettle-1.txt": {"source_site": "shop", "product": "kettle", "rating": 5, "tags": ["home", "fast"]},
        "kettle-2.txt": {"source_site": "shop", "product": "kettle", "rating": 2},
        "toaster.txt": {"source_site": "shop"},
    }

    def found(*args: str) -> set[str]:
        result = quarry("search", "boiling water", "--workspace", "meta", "--json", *args, env=env)
        assert result.returncode == 0, result.stderr
        return {hit["document_name"] for hit in json.loads(result.stdout)["hits"]}

    assert found("--filter", "product=kettle", "--filter", "rating>=4") == {"kettle-1.txt"}
    assert found("--filter-json", '{"$or": [{"rating": {"lt": 3}}, {"product": {"exists": false}}]}') == {
        "kettle-2.txt",
        "toaster.txt",
    }

    edit = quarry("documents", "set-meta", "toaster.txt", "product=kettle", "rating=4", "--workspace", "meta", env=env)
    assert edit.returncode == 0, edit.stderr
    assert "product=kettle" in edit.stdout
    assert found("--filter", "product=kettle", "--filter", "rating>=4") == {"kettle-1.txt", "toaster.txt"}
    unset = quarry("documents", "set-meta", "toaster.txt", "--unset", "rating", "--workspace", "meta", env=env)
    assert unset.returncode == 0, unset.stderr
    assert found("--filter", "!rating?") == {"toaster.txt"}

    json_sidecar = tmp_path / "meta.json"  # again with other metadata: changed in place, nothing re-indexed
    json_sidecar.write_text(json.dumps({"kettle-2.txt": {"product": "kettle", "rating": 1}}))
    again = quarry("ingest", str(docs / "kettle-2.txt"), "--workspace", "meta", "--meta-file", str(json_sidecar),
                   "--json", env=env)  # fmt: skip
    assert again.returncode == 0 and json.loads(again.stdout)["unchanged"] == 1, again.stderr
    assert found("--filter", "rating<2") == {"kettle-2.txt"}
