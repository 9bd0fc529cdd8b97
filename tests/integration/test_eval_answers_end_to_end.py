"""`quarry eval answers` end to end: real embedded Postgres, MiniLM, llama.cpp (answering and judging)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from quarry.adapters.llamacpp import assemble_packaged_gguf
from quarry.cli import app
from quarry.evaluation.bulk_index import index_documents
from quarry.models import Document, DocumentSource
from quarry.ports import ParsedDocument
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import build_services

pytestmark = [pytest.mark.integration, pytest.mark.llm]

PASSAGES: list[dict[str, Any]] = [
    {
        "id": "1",
        "passage": "The Veltrana Observatory stands on Mount Orrin at 3,412 metres. It was opened in 1987 by the "
        "astronomer Ilse Marrow.",
    },
    {
        "id": "2",
        "passage": "Ferries leave Kessel Bay every 40 minutes for the island of Durn. The crossing takes 25 minutes.",
    },
    {
        "id": "3",
        "passage": "Amberleaf tea is grown on the terraces of the Sorrel Valley and dried over beech wood.",
    },
    {"id": "4", "passage": "The Tollan rail line links Pell to Varo over 212 kilometres. The line opened in 2011."},
]
QUESTIONS: list[dict[str, Any]] = [
    {"id": "q1", "question": "Who opened the Veltrana Observatory?", "answer": "Ilse Marrow"},
    {"id": "q2", "question": "How long does the ferry crossing from Kessel Bay to Durn take?", "answer": "25 minutes"},
    {
        "id": "q3",
        "question": "What is the boiling point of liquid nitrogen in kelvin?",
        "answer": "",
        "answerable": False,
    },
]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return assemble_packaged_gguf(tmp_path_factory.mktemp("models"))


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _env(pg_database: str, model_path: Path) -> dict[str, str]:
    return {"QUARRY_PG_DSN": pg_database, "QUARRY_LLM_MODEL_PATH": str(model_path)}


def test_a_tiny_dataset_is_answered_judged_and_reported(tmp_path: Path, pg_database: str, model_path: Path) -> None:
    questions = _jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    corpus = _jsonl(tmp_path / "passages.jsonl", PASSAGES)
    data_dir = tmp_path / "data"
    args = ["eval", "answers", "--dataset", str(questions), "--corpus", str(corpus), "--judge", "default"]
    args += ["--max-tokens", "48", "--report", str(tmp_path / "report"), "--data-dir", str(data_dir), "--json"]

    result = CliRunner().invoke(app, args, env=_env(pg_database, model_path))

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["items"] == 3
    assert out["corpus"]["passages"] == 4
    assert out["ingest"]["documents"] == 4
    assert out["latency"]["count"] == 3 and out["latency"]["min_ms"] > 0
    assert out["settings"]["temperature"] == 0.0
    by_id = {row["id"]: row for row in out["per_item"]}
    # nothing in the corpus is near the off-topic question: the service refuses without asking the model
    assert by_id["q3"]["refusal"] is True
    assert by_id["q3"]["sources"] == 0
    assert out["refusal_rate_unanswerable"] == 1.0
    for qid in ("q1", "q2"):
        row = by_id[qid]
        assert row["answer"].strip()
        assert row["sources"] >= 1  # grounded on the indexed passages
        assert 0.0 <= row["token_f1"] <= 1.0
        assert 0.0 <= row["judge_correctness"] <= 1.0
        assert row["citations_valid"] in (True, False, None)
    # the passages scored are the ones the chat service gave the model, citation for citation
    assert out["source_mismatches"] == 0
    assert out["cited_answers"] + out["uncited_answers"] == 3
    assert out["citation_validity"] is None or 0.0 <= out["citation_validity"] <= 1.0
    assert 0.0 <= out["reference_in_answer"] <= 1.0 and by_id["q3"]["reference_in_answer"] is None
    judge = out["judge"]
    assert judge["model"] == "qwen2.5-coder-0.5b-instruct"
    answered = [by_id[q] for q in ("q1", "q2") if not by_id[q]["refusal"]]
    if answered:
        assert judge["support_calls"] + judge["verbatim"] >= len(answered)
        assert all(row["faithfulness"] is not None for row in answered)
    assert judge["correctness_calls"] + judge["exact_matches"] + judge["refusals"] == 2
    html = Path(out["report"]).read_text(encoding="utf-8")
    assert "Answer quality" in html and "data:image/png;base64," in html

    # the throwaway workspace and every evaluation session are gone
    services = build_services(Settings(data_dir=data_dir, pg_dsn=pg_database, llm_model_path=str(model_path)))
    try:
        assert services.adapters.catalog.list_workspaces("eval") == []
        assert services.sessions.list_sessions("eval").items == []
    finally:
        services.close()


def test_questions_can_be_put_to_an_existing_workspace(tmp_path: Path, pg_database: str, model_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, pg_dsn=pg_database, llm_model_path=str(model_path))
    services = build_services(settings)
    try:
        workspace = services.workspaces.create("local", WorkspaceSpec(name="facts"))
        text = PASSAGES[3]["passage"]
        document = Document(id="tollan", workspace_id=workspace.id, name="Tollan", source=DocumentSource.TEXT)
        index_documents(services, workspace, [(document, ParsedDocument(text=text, title="Tollan rail line"))])
    finally:
        services.close()
    questions = _jsonl(tmp_path / "q.jsonl", [{"question": "When did the Tollan rail line open?", "answer": "2011"}])
    args = ["eval", "answers", "--dataset", str(questions), "--workspace", "facts", "--max-tokens", "24"]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir), "--json"], env=_env(pg_database, model_path))

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["workspace"] == "facts"
    assert out["items"] == 1
    assert out["per_item"][0]["sources"] == 1
    assert "judge" not in out and out["judge_correctness"] is None
    services = build_services(settings)
    try:
        assert [w.name for w in services.adapters.catalog.list_workspaces("local")] == ["facts"]  # left as it was
        assert services.sessions.list_sessions("local").items == []
    finally:
        services.close()


def test_bad_invocations_fail_with_a_clear_message(tmp_path: Path, pg_database: str, model_path: Path) -> None:
    questions = _jsonl(tmp_path / "q.jsonl", QUESTIONS[:1])
    corpus = _jsonl(tmp_path / "p.jsonl", PASSAGES)
    env = _env(pg_database, model_path)
    base = ["eval", "answers", "--dataset", str(questions), "--data-dir", str(tmp_path / "data")]
    runner = CliRunner()

    unknown = runner.invoke(app, [*base, "--workspace", "nope"], env=env)
    assert unknown.exit_code == 1
    assert "unknown workspace 'nope'" in unknown.output

    both = runner.invoke(app, [*base, "--workspace", "nope", "--corpus", str(corpus)], env=env)
    assert both.exit_code == 2
    assert "either --workspace or --corpus" in both.output

    missing = runner.invoke(app, ["eval", "answers", "--dataset", str(tmp_path / "none.csv"), "--corpus", str(corpus)])
    assert missing.exit_code == 1
    assert "dataset file not found" in missing.output
