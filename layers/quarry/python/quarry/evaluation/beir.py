"""BEIR-format datasets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

* ``corpus.jsonl``: one JSON object a line with ``_id``, ``title`` (may be empty) and ``text``.
* ``queries.jsonl``: one JSON object a line with ``_id`` and ``text``.
* ``qrels/<split>.tsv``: ``query-id <TAB> corpus-id <TAB> score``, an optional header row, graded integer
  relevance; files in the wild carry CRLF line endings, both are accepted.

As BEIR's own loader does, only queries that have judgments in the split are kept. Restricting to the
first N queries (in qrels order) and building a *slice* (N queries, the documents judged for them, and
K distractor documents drawn with a fixed seed) are both deterministic, so CI gates compare like with like.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quarry.errors import InvalidInput, NotFound

__all__ = [
    "BeirDataset",
    "BeirDocument",
    "BeirQuery",
    "Qrels",
    "build_slice",
    "iter_corpus",
    "load_beir",
    "read_qrels",
    "read_queries",
]

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class BeirDocument:
    id: str
    title: str
    text: str

    @property
    def content(self) -> str:
        """Title and text as one passage, the way BEIR retrievers index them."""
        return f"{self.title}\n\n{self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class BeirQuery:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirDataset:
    name: str
    split: str
    corpus: dict[str, BeirDocument]
    queries: dict[str, BeirQuery]
    qrels: Qrels
    source: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def judgments(self) -> int:
        return sum(len(docs) for docs in self.qrels.values())

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "split": self.split,
            "documents": len(self.corpus),
            "queries": len(self.queries),
            "judgments": self.judgments,
            **self.notes,
        }


def _check_dir(root: Path) -> None:
    if not root.is_dir():
        raise NotFound(f"BEIR dataset directory not found: {root}")
    for required in ("corpus.jsonl", "queries.jsonl"):
        if not (root / required).is_file():
            raise InvalidInput(f"{root} is not a BEIR dataset: {required} is missing")


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path.name} line {number}: not valid JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise InvalidInput(f"{path.name} line {number}: expected a JSON object")
                yield number, record
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path.name}: not UTF-8 text ({exc.reason})") from exc


def _record_id(path: Path, number: int, record: dict[str, Any]) -> str:
    raw = record.get("_id")
    if raw is None or str(raw).strip() == "":
        raise InvalidInput(f"{path.name} line {number}: missing '_id'")
    return str(raw)


def iter_corpus(directory: str | Path) -> Iterator[BeirDocument]:
    """Stream the corpus in file order (for ingesting corpora too large to hold twice)."""
    root = Path(directory)
    _check_dir(root)
    path = root / "corpus.jsonl"
    for number, record in _iter_jsonl(path):
        doc_id = _record_id(path, number, record)
        title = str(record.get("title") or "")
        text = str(record.get("text") or "")
        if not (title or text).strip():
            raise InvalidInput(f"{path.name} line {number}: document {doc_id!r} has neither title nor text")
        yield BeirDocument(id=doc_id, title=title, text=text)


def read_queries(directory: str | Path) -> dict[str, BeirQuery]:
    root = Path(directory)
    _check_dir(root)
    path = root / "queries.jsonl"
    queries: dict[str, BeirQuery] = {}
    for number, record in _iter_jsonl(path):
        query_id = _record_id(path, number, record)
        text = str(record.get("text") or "")
        if not text.strip():
            raise InvalidInput(f"{path.name} line {number}: query {query_id!r} has no text")
        queries[query_id] = BeirQuery(id=query_id, text=text)
    return queries


def _parse_qrels_line(path: Path, number: int, line: str) -> tuple[str, str, int] | None:
    """One qrels row, or None for a blank line or the header row."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    fields = text.split("\t")
    if len(fields) == 4:  # TREC layout: qid iter docid rel
        fields = [fields[0], fields[2], fields[3]]
    if len(fields) != 3:
        raise InvalidInput(f"{path.name} line {number}: expected 3 tab-separated fields, got {len(fields)}")
    query_id, doc_id, grade = (part.strip() for part in fields)
    try:
        value = int(grade)
    except ValueError:
        if number == 1:
            return None  # header row ("query-id corpus-id score")
        raise InvalidInput(f"{path.name} line {number}: relevance {grade!r} is not an integer") from None
    return query_id, doc_id, value


def read_qrels(directory: str | Path, split: str = "test") -> Qrels:
    """``{query_id: {doc_id: grade}}`` in file order; a repeated pair keeps its last grade."""
    path = Path(directory) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise InvalidInput(f"no qrels for split {split!r}: {path} is missing")
    qrels: Qrels = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                row = _parse_qrels_line(path, number, line)
                if row is not None:
                    query_id, doc_id, grade = row
                    qrels.setdefault(query_id, {})[doc_id] = grade
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name}: not UTF-8 text ({exc.reason})") from exc
    if not qrels:
        raise InvalidInput(f"{path} holds no judgments")
    return qrels


def load_beir(directory: str | Path, *, split: str = "test", limit_queries: int | None = None) -> BeirDataset:
    """Load a whole BEIR dataset; ``limit_queries`` keeps the first N judged queries (qrels order)."""
    if limit_queries is not None and limit_queries < 1:
        raise InvalidInput("limit_queries must be at least 1")
    root = Path(directory)
    _check_dir(root)
    qrels = read_qrels(root, split)
    all_queries = read_queries(root)
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        raise InvalidInput(
            f"qrels/{split}.tsv names {len(missing)} queries absent from queries.jsonl, e.g. {missing[0]!r}"
        )
    query_ids = list(qrels)
    if limit_queries is not None:
        query_ids = query_ids[:limit_queries]
    corpus = {doc.id: doc for doc in iter_corpus(root)}
    return BeirDataset(
        name=root.name,
        split=split,
        corpus=corpus,
        queries={qid: all_queries[qid] for qid in query_ids},
        qrels={qid: dict(qrels[qid]) for qid in query_ids},
        source=str(root),
    )


def build_slice(dataset: BeirDataset, *, queries: int = 50, distractors: int = 500, seed: int = 13) -> BeirDataset:
    """A small, fixed subset for fast gates.

    The first ``queries`` judged queries, every document judged for them (that exists in the corpus), and
    ``distractors`` other documents sampled with ``random.Random(seed)`` from the sorted remaining ids, so
    the same inputs always give the same slice.
    """
    if queries < 1:
        raise InvalidInput("a slice needs at least one query")
    if distractors < 0:
        raise InvalidInput("distractors must not be negative")
    query_ids = list(dataset.qrels)[:queries]
    judged = {doc_id for qid in query_ids for doc_id in dataset.qrels[qid] if doc_id in dataset.corpus}
    others = sorted(doc_id for doc_id in dataset.corpus if doc_id not in judged)
    sampled = set(random.Random(seed).sample(others, min(distractors, len(others))))
    keep = judged | sampled
    corpus = {doc_id: doc for doc_id, doc in dataset.corpus.items() if doc_id in keep}
    return BeirDataset(
        name=f"{dataset.name}-slice",
        split=dataset.split,
        corpus=corpus,
        queries={qid: dataset.queries[qid] for qid in query_ids},
        qrels={qid: dict(dataset.qrels[qid]) for qid in query_ids},
        source=dataset.source,
        notes={
            "slice": {
                "queries": len(query_ids),
                "judged_documents": len(judged),
                "distractors": len(sampled),
                "seed": seed,
            }
        },
    )
