"""Q&A dataset and passage loaders, mojibake repair, and the real rag-mini-wikipedia files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quarry.errors import InvalidInput, NotFound
from quarry.evaluation.qa_dataset import load_passages, load_qa, repair_mojibake

MINI_WIKI = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "qa" / "rag-mini-wikipedia"
needs_mini_wiki = pytest.mark.skipif(not MINI_WIKI.is_dir(), reason="rag-mini-wikipedia is not next to the repository")


def test_csv_with_aliases_and_a_json_list_of_passages(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text(
        "query,ground_truth,contexts,answerable,topic\n"
        '"Who?",Ada,"[""Ada wrote code."", ""She was first.""]",yes,math\n'
        "Why?,,,false,\n",
        encoding="utf-8",
    )
    first, second = load_qa(path)
    assert first.id == "1" and first.question == "Who?" and first.reference == "Ada"
    assert first.passages == ("Ada wrote code.", "She was first.")
    assert first.answerable is True and first.metadata == {"topic": "math"}
    assert second.answerable is False and second.reference == ""  # unanswerable: no reference needed


def test_jsonl_with_ids_and_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [{"id": f"q{i}", "question": f"Q{i}?", "answer": f"A{i}", "passages": "one passage"} for i in range(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    items = load_qa(path, limit=2)
    assert [item.id for item in items] == ["q0", "q1"]
    assert items[0].passages == ("one passage",)


def test_unlabelled_rows_need_require_reference_false(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_text(
        json.dumps({"question": "Q?", "answer_given": "A", "reference_answer": ""}) + "\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInput, match="line 1: the reference answer is empty"):
        load_qa(path)
    (item,) = load_qa(path, require_reference=False)
    assert item.reference == "" and item.metadata["answer_given"] == "A"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("qa.csv", "question,answer\n,yes\n", "line 2: the question is missing"),
        ("qa.jsonl", '{"question": "Q", "answer": "A"}\n[1, 2]\n', "line 2: expected a JSON object"),
        ("qa.jsonl", "{broken\n", "line 1: not valid JSON"),
        ("qa.jsonl", '{"question": "Q", "answer": "A", "answerable": "maybe"}\n', "answerable must be true or false"),
        ("qa.jsonl", '{"question": "Q", "answer": "A", "passages": [1]}\n', "passages must be a string or a list"),
        ("qa.txt", "question,answer\n", "unsupported dataset format"),
        ("qa.csv", "question,answer\n", "holds no questions"),
    ],
)
def test_bad_files_name_the_line_and_reason(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        load_qa(path)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_qa(tmp_path / "absent.csv")
    path = tmp_path / "latin1.csv"
    path.write_bytes("question,answer\nCaf\xe9?,oui\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load_qa(path)


def test_mojibake_repair() -> None:
    assert repair_mojibake("the RÃ\xado de la Plata") == "the Río de la Plata"
    assert repair_mojibake("JosÃ© Artigas, TabarÃ© VÃ¡zquez") == "José Artigas, Tabaré Vázquez"
    assert repair_mojibake("Hans Christian Ã\x98rsted") == "Hans Christian Ørsted"
    assert repair_mojibake("a British Â£20 note") == "a British £20 note"
    assert (
        repair_mojibake("it\u00e2\u20ac\u2122s") == "it\u2019s"
    )  # mojibake of a right single quote (Windows-1252 bytes)
    # correct text is left alone, including real accented capitals
    for text in ("România Mare", "Río", "naïve café", "plain ascii", "Ã alone"):
        assert repair_mojibake(text) == text


def test_passages_csv_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "passages.csv"
    csv_path.write_text('id,passage\n7,"RÃ­o, with a comma"\n8,second\n', encoding="utf-8")
    assert [(p.id, p.text) for p in load_passages(csv_path)] == [("7", "Río, with a comma"), ("8", "second")]
    assert load_passages(csv_path, repair=False)[0].text == "RÃ­o, with a comma"
    jsonl_path = tmp_path / "passages.jsonl"
    jsonl_path.write_text('{"text": "no id"}\n', encoding="utf-8")
    assert load_passages(jsonl_path)[0].id == "0"
    jsonl_path.write_text('{"id": 1, "text": "  "}\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="line 1: the passage text is missing"):
        load_passages(jsonl_path)


@needs_mini_wiki
def test_real_rag_mini_wikipedia() -> None:
    questions = load_qa(MINI_WIKI / "questions.csv")
    assert len(questions) == 918
    assert questions[0].question == "Was Abraham Lincoln the sixteenth President of the United States?"
    assert questions[0].reference == "yes" and questions[0].passages == ()
    passages = load_passages(MINI_WIKI / "passages.csv")
    assert len(passages) == 3200
    assert "Río de la Plata" in passages[1].text
    assert not any("Ã" in p.text for p in passages)
