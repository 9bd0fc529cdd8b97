"""`quarry bench chat`: a real WebSocket through the local runtime, next to the service and the bare model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quarry.adapters.llamacpp import assemble_packaged_gguf
from quarry.cli import app
from quarry.errors import InvalidInput
from quarry.evaluation.chat_bench import ChatBenchOptions
from quarry.settings import Settings
from quarry.wiring import build_services

pytestmark = [pytest.mark.integration, pytest.mark.llm]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return assemble_packaged_gguf(tmp_path_factory.mktemp("models"))


def test_bench_chat_reports_first_token_total_and_the_websocket_overhead(
    tmp_path: Path, pg_database: str, model_path: Path
) -> None:
    env = {"QUARRY_PG_DSN": pg_database, "QUARRY_LLM_MODEL_PATH": str(model_path)}
    args = ["bench", "chat", "--questions", "2", "--max-tokens", "8", "--data-dir", str(tmp_path), "--json"]

    result = CliRunner().invoke(app, args, env=env)

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # the handlers' logs and metrics stayed off stdout
    assert out["questions"] == 2 and out["max_tokens"] == 8
    for way in ("websocket", "service", "model_only"):
        assert out[way]["first_token"]["count"] == 2
        assert out[way]["total"]["p50_ms"] >= out[way]["first_token"]["p50_ms"] > 0
    runs = out["runs"]
    assert sorted(r["way"] for r in runs) == ["model"] * 2 + ["service"] * 2 + ["websocket"] * 2
    for run in (r for r in runs if r["way"] == "websocket"):
        assert run["tokens"] >= 1
        # the client sees the first token after the server produced it, on the same clock
        assert run["first_token_ms"] >= run["server_first_token_ms"] > 0
        assert run["total_ms"] >= run["server_total_ms"] > 0
    overhead = out["overhead_ms"]
    assert overhead["first_token"]["count"] == 2
    assert 0.0 <= overhead["first_token"]["p50_ms"] < 2000.0  # loose: catches a lost token path, not noise
    assert overhead["target_ms"] == 50.0
    assert overhead["meets_target"] is (overhead["first_token"]["p50_ms"] < 50.0)
    assert out["peak_rss_mb"] > 0

    services = build_services(Settings(data_dir=tmp_path, pg_dsn=pg_database, llm_model_path=str(model_path)))
    try:  # the benchmark workspace and its sessions are gone
        assert [w for w in services.adapters.catalog.list_workspaces("local") if w.name.startswith("bench-chat")] == []
        assert services.sessions.list_sessions("local").items == []
    finally:
        services.close()


@pytest.mark.parametrize("kwargs", [{"questions": 0}, {"questions": 9}, {"max_tokens": 0}], ids=str)
def test_bench_chat_options_are_checked(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidInput):
        ChatBenchOptions(**kwargs)  # type: ignore[arg-type]
