"""Thumbs-down answers turned into an unannotated evaluation file, for later labelling.

Each exported row holds the question, the answer given, its citations, the users' comments and an empty
``reference_answer`` to be filled in. Once labelled, the file loads with ``qa_dataset.load_qa`` (the
``reference_answer`` column is one of its reference names; ``answer_given`` is kept as metadata).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from quarry.errors import InvalidInput
from quarry.models import Feedback, Message, Role, utcnow
from quarry.ports import Catalog, ChatHistory

__all__ = ["ExportResult", "export_feedback", "parse_since", "to_jsonl", "write_jsonl"]

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_QUESTION_KEYS = ("question", "standalone_question")


@dataclass(frozen=True, slots=True)
class ExportResult:
    rows: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w`` (ago) or an ISO date/time (UTC when no zone is given)."""
    reference = now or utcnow()
    match = _DURATION.match(text)
    if match:
        return reference - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--since must look like 7d, 12h, 30m, 2w or an ISO date, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=reference.tzinfo)


def _question_before(history: ChatHistory, message: Message) -> str:
    """The question the answer replied to: stored with it, or the last user turn before it."""
    for key in _QUESTION_KEYS:
        value = message.metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value
    last_user = ""
    cursor: str | None = None
    while True:
        page = history.list_messages(message.session_id, cursor=cursor)
        for turn in page.items:
            if turn.id == message.id:
                return last_user
            if turn.role == Role.USER:
                last_user = turn.content
        if page.cursor is None:
            return last_user
        cursor = page.cursor


def _row(message: Message, question: str, feedback: Sequence[Feedback]) -> dict[str, Any]:
    comments = list(dict.fromkeys(f.comment.strip() for f in feedback if f.comment and f.comment.strip()))
    return {
        "id": f"{message.session_id}:{message.id}",
        "session_id": message.session_id,
        "message_id": message.id,
        "question": question,
        "answer_given": message.content,
        "citations": [
            {"n": c.n, "document_id": c.document_id, "chunk_id": c.chunk_id, "title": c.title, "text": c.text}
            for c in message.citations
        ],
        "comment": "\n".join(comments),
        "rating": min(f.rating for f in feedback),
        "feedback_at": max(f.created_at for f in feedback).isoformat(),
        "reference_answer": "",
    }


def _group(feedback: Iterable[Feedback], max_rating: int) -> dict[tuple[str, str], list[Feedback]]:
    groups: dict[tuple[str, str], list[Feedback]] = {}
    for item in sorted(feedback, key=lambda f: f.created_at):
        if item.rating <= max_rating:
            groups.setdefault((item.session_id, item.message_id), []).append(item)
    return groups


def export_feedback(
    catalog: Catalog, history: ChatHistory, *, since: datetime | None = None, max_rating: int = -1
) -> ExportResult:
    """One row per answer rated ``max_rating`` or lower since ``since``, oldest feedback first."""
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for (session_id, message_id), items in _group(catalog.list_feedback(since=since), max_rating).items():
        message = history.get_message(session_id, message_id)
        if message is None:
            skipped.append(f"{session_id}:{message_id}: message no longer exists")
            continue
        if message.role != Role.ASSISTANT:
            skipped.append(f"{session_id}:{message_id}: feedback is on a {message.role.value} message, not an answer")
            continue
        rows.append(_row(message, _question_before(history, message), items))
    return ExportResult(rows=rows, skipped=skipped)


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_jsonl(rows), encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target
