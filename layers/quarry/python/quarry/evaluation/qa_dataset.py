"""Question/answer datasets for answer evaluation, and passage corpora to answer them from.

A Q&A file is CSV (header row) or JSONL (one object a line) with:

* ``question`` (or ``query``): required;
* ``answer`` (or ``reference``, ``reference_answer``, ``ground_truth``): the reference answer;
* ``passages`` (or ``contexts``, ``context``): optional supporting passages, a JSON list or one string
  (in CSV, a cell holding a JSON list is read as a list);
* ``id`` (or ``_id``, ``qid``): optional, the 1-based row number otherwise;
* ``answerable``: optional boolean; false marks a question the corpus cannot answer.

A passage file is CSV or JSONL with ``id`` and ``passage`` (or ``text``, ``content``). Text scraped from the
web often carries mojibake (UTF-8 read as Windows-1252, "RÃ­o" for "Río"); ``repair_mojibake`` undoes it.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quarry.errors import InvalidInput, NotFound

__all__ = ["Passage", "QAItem", "load_passages", "load_qa", "repair_mojibake"]

_QUESTION_KEYS = ("question", "query")
_REFERENCE_KEYS = ("answer", "reference", "reference_answer", "ground_truth")
_PASSAGE_LIST_KEYS = ("passages", "contexts", "context")
_ID_KEYS = ("id", "_id", "qid")
_PASSAGE_TEXT_KEYS = ("passage", "text", "content")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


@dataclass(frozen=True, slots=True)
class QAItem:
    id: str
    question: str
    reference: str
    passages: tuple[str, ...] = ()
    answerable: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    text: str


# --------------------------------------------------------------------------- mojibake


def _byte_of(char: str) -> int | None:
    """The single byte a character came from when UTF-8 bytes were read as Windows-1252 (or Latin-1)."""
    try:
        return char.encode("cp1252")[0]
    except UnicodeEncodeError:
        code = ord(char)
        return code if code < 256 else None


_CONTINUATION = "".join(
    sorted(
        {bytes([b]).decode("latin-1") for b in range(0x80, 0xC0)}
        | {bytes([b]).decode("cp1252") for b in range(0x80, 0xC0) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
    )
)
_CLASS = "[" + re.escape(_CONTINUATION) + "]"
_MOJIBAKE = re.compile(f"[\u00c2-\u00df]{_CLASS}|[\u00e0-\u00ef]{_CLASS}{{2}}|[\u00f0-\u00f4]{_CLASS}{{3}}")


def _repair(match: re.Match[str]) -> str:
    raw = [_byte_of(char) for char in match.group(0)]
    if any(byte is None for byte in raw):
        return match.group(0)
    try:
        return bytes(b for b in raw if b is not None).decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text decoded as Windows-1252/Latin-1, sequence by sequence; other text is left alone."""
    return _MOJIBAKE.sub(_repair, text)


# --------------------------------------------------------------------------- readers


def _rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(line or row number, record) from a CSV or JSONL file."""
    if not path.is_file():
        raise NotFound(f"dataset file not found: {path}")
    suffix = path.suffix.lower()
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if suffix == ".csv":
                reader = csv.DictReader(handle)
                for number, row in enumerate(reader, start=2):
                    yield number, row
            elif suffix in (".jsonl", ".ndjson"):
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield number, _json_object(path, number, line)
            else:
                raise InvalidInput(f"{path.name}: unsupported dataset format {suffix!r} (use .csv or .jsonl)")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise InvalidInput(f"{path.name}: malformed CSV ({exc})") from exc


def _json_object(path: Path, number: int, line: str) -> Mapping[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path.name} line {number}: not valid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise InvalidInput(f"{path.name} line {number}: expected a JSON object")
    return record


def _first(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = record.get(key)
        if value is not None:
            return value
    return None


def _as_passages(where: str, value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return (value,)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidInput(f"{where}: passages must be a string or a list of strings")


def _as_bool(where: str, value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{where}: answerable must be true or false, got {value!r}")


def _item(path: Path, number: int, index: int, record: Mapping[str, Any], require_reference: bool) -> QAItem:
    where = f"{path.name} line {number}"
    question = str(_first(record, _QUESTION_KEYS) or "").strip()
    if not question:
        raise InvalidInput(f"{where}: the question is missing or empty")
    reference = str(_first(record, _REFERENCE_KEYS) or "").strip()
    answerable = _as_bool(where, record.get("answerable"))
    if require_reference and not reference and answerable is not False:
        raise InvalidInput(f"{where}: the reference answer is empty (label it, or load with require_reference=False)")
    known = {*_QUESTION_KEYS, *_REFERENCE_KEYS, *_PASSAGE_LIST_KEYS, *_ID_KEYS, "answerable"}
    return QAItem(
        id=str(_first(record, _ID_KEYS) or index),
        question=question,
        reference=reference,
        passages=_as_passages(where, _first(record, _PASSAGE_LIST_KEYS)),
        answerable=answerable,
        metadata={key: value for key, value in record.items() if key not in known and key is not None},
    )


def load_qa(path: str | Path, *, limit: int | None = None, require_reference: bool = True) -> list[QAItem]:
    """Items in file order; ``limit`` keeps the first N (a deterministic slice for gates)."""
    if limit is not None and limit < 1:
        raise InvalidInput("limit must be at least 1")
    source = Path(path)
    items: list[QAItem] = []
    for number, record in _rows(source):
        items.append(_item(source, number, len(items) + 1, record, require_reference))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise InvalidInput(f"{source.name} holds no questions")
    return items


def load_passages(path: str | Path, *, repair: bool = True) -> list[Passage]:
    """Passages in file order, mojibake repaired unless ``repair`` is False."""
    source = Path(path)
    passages: list[Passage] = []
    for number, record in _rows(source):
        text = str(_first(record, _PASSAGE_TEXT_KEYS) or "")
        if not text.strip():
            raise InvalidInput(f"{source.name} line {number}: the passage text is missing or empty")
        passage_id = str(_first(record, _ID_KEYS) or len(passages))
        passages.append(Passage(id=passage_id, text=repair_mojibake(text) if repair else text))
    if not passages:
        raise InvalidInput(f"{source.name} holds no passages")
    return passages
