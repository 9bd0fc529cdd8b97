"""The BEIR loader on the real SciFact files and on small fixtures written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quarry.errors import InvalidInput, NotFound
from quarry.evaluation.beir import build_slice, iter_corpus, load_beir, read_qrels

SCIFACT = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "beir" / "scifact"
needs_scifact = pytest.mark.skipif(not SCIFACT.is_dir(), reason="SciFact is not next to the repository")


def _write_dataset(root: Path, *, qrels: bytes) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Alpha", "text": "first document"},
        {"_id": "d2", "title": "", "text": "second document"},
        {"_id": "d3", "title": "Gamma", "text": "third document"},
        {"_id": "d4", "title": "Delta", "text": "fourth document"},
    ]
    queries = [
        {"_id": "1", "text": "what is alpha"},
        {"_id": "2", "text": "what is beta"},
        {"_id": "9", "text": "unjudged"},
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries), encoding="utf-8")
    (root / "qrels" / "test.tsv").write_bytes(qrels)
    return root


CRLF_QRELS = b"query-id\tcorpus-id\tscore\r\n1\td1\t2\r\n1\td2\t0\r\n2\td3\t1\r\n\r\n"


def test_crlf_qrels_with_header_and_graded_relevance(tmp_path: Path) -> None:
    dataset = load_beir(_write_dataset(tmp_path / "tiny", qrels=CRLF_QRELS))
    assert dataset.qrels == {"1": {"d1": 2, "d2": 0}, "2": {"d3": 1}}
    assert list(dataset.queries) == ["1", "2"]  # only judged queries, as BEIR's loader keeps
    assert dataset.stats() == {"name": "tiny", "split": "test", "documents": 4, "queries": 2, "judgments": 3}
    assert dataset.corpus["d1"].content == "Alpha\n\nfirst document"
    assert dataset.corpus["d2"].content == "second document"


def test_limit_queries_keeps_the_first_in_qrels_order(tmp_path: Path) -> None:
    dataset = load_beir(_write_dataset(tmp_path / "tiny", qrels=CRLF_QRELS), limit_queries=1)
    assert list(dataset.queries) == ["1"]
    assert list(dataset.qrels) == ["1"]


def test_lf_qrels_without_header_load_too(tmp_path: Path) -> None:
    root = _write_dataset(tmp_path / "lf", qrels=b"1\td1\t1\n2\td3\t1\n")
    assert read_qrels(root) == {"1": {"d1": 1}, "2": {"d3": 1}}


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        (b"query-id\tcorpus-id\tscore\r\n1\td1\thigh\r\n", "line 2: relevance 'high' is not an integer"),
        (b"1\td1\r\n", "line 1: expected 3 tab-separated fields"),
        (b"query-id\tcorpus-id\tscore\r\n", "holds no judgments"),
        (b"7\td1\t1\n", "absent from queries.jsonl"),
    ],
)
def test_bad_qrels_name_the_line_and_reason(tmp_path: Path, qrels: bytes, message: str) -> None:
    root = _write_dataset(tmp_path / "bad", qrels=qrels)
    with pytest.raises(InvalidInput, match=message):
        load_beir(root)


def test_missing_or_broken_files_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_beir(tmp_path / "nowhere")
    root = _write_dataset(tmp_path / "broken", qrels=CRLF_QRELS)
    with pytest.raises(InvalidInput, match="no qrels for split 'dev'"):
        load_beir(root, split="dev")
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"corpus\.jsonl line 2: not valid JSON"):
        list(iter_corpus(root))
    (root / "corpus.jsonl").write_text('{"title": "no id", "text": "x"}\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="line 1: missing '_id'"):
        list(iter_corpus(root))
    (root / "queries.jsonl").unlink()
    with pytest.raises(InvalidInput, match=r"queries\.jsonl is missing"):
        load_beir(root)


def test_slice_is_deterministic_and_holds_the_judged_documents(tmp_path: Path) -> None:
    dataset = load_beir(_write_dataset(tmp_path / "tiny", qrels=CRLF_QRELS))
    first = build_slice(dataset, queries=1, distractors=1, seed=3)
    again = build_slice(dataset, queries=1, distractors=1, seed=3)
    assert set(first.corpus) == set(again.corpus)
    assert {"d1", "d2"} <= set(first.corpus)  # every document judged for query 1, even grade 0
    assert len(first.corpus) == 3
    assert first.notes["slice"] == {"queries": 1, "judged_documents": 2, "distractors": 1, "seed": 3}
    with pytest.raises(InvalidInput):
        build_slice(dataset, queries=0)


@needs_scifact
def test_real_scifact_counts() -> None:
    dataset = load_beir(SCIFACT)
    assert len(dataset.corpus) == 5183
    assert len(dataset.queries) == 300
    assert dataset.judgments == 339
    assert all(grade == 1 for docs in dataset.qrels.values() for grade in docs.values())
    assert all(not qid.endswith("\r") and not doc.endswith("\r") for qid, docs in dataset.qrels.items() for doc in docs)


@needs_scifact
def test_real_scifact_slice() -> None:
    dataset = load_beir(SCIFACT)
    piece = build_slice(dataset, queries=50, distractors=500, seed=13)
    assert len(piece.queries) == 50
    judged = {doc for docs in piece.qrels.values() for doc in docs}
    assert judged <= set(piece.corpus)
    assert len(piece.corpus) == len(judged) + 500
    assert set(piece.corpus) == set(build_slice(dataset, queries=50, distractors=500, seed=13).corpus)
    assert set(piece.corpus) != set(build_slice(dataset, queries=50, distractors=500, seed=14).corpus)
