"""Thumbs-down answers exported as an unannotated evaluation file that the Q&A loader reads back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.feedback_export import ExportResult, export_feedback, parse_since, to_jsonl, write_jsonl
from quarry.evaluation.qa_dataset import load_qa
from quarry.models import Citation, Feedback, Message, Role
from quarry.ports import Catalog, ChatHistory, Page

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


class MemoryFeedback:
    """The slice of the Catalog port the export reads: ``list_feedback``."""

    def __init__(self, items: list[Feedback]) -> None:
        self.items = items

    def list_feedback(self, *, since: datetime | None = None) -> list[Feedback]:
        return [f for f in self.items if since is None or f.created_at >= since]


class MemoryHistory:
    """The slice of the ChatHistory port the export reads, paging two messages at a time."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def get_message(self, session_id: str, message_id: str) -> Message | None:
        return next((m for m in self.messages if (m.session_id, m.id) == (session_id, message_id)), None)

    def list_messages(self, session_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        mine = [m for m in self.messages if m.session_id == session_id]
        start = int(cursor or 0)
        end = start + 2
        return Page(items=mine[start:end], cursor=str(end) if end < len(mine) else None)


CITATION = Citation(
    n=1, chunk_id="doc1:0", document_id="doc1", title="Lincoln", text="Born 1809.", start=0, end=10, score=0.8
)
MESSAGES = [
    Message(session_id="s1", id="m1", role=Role.USER, content="Who was Lincoln?"),
    Message(session_id="s1", id="m2", role=Role.ASSISTANT, content="A president [1].", citations=(CITATION,)),
    Message(session_id="s1", id="m3", role=Role.USER, content="When was he born?"),
    Message(session_id="s1", id="m4", role=Role.ASSISTANT, content="In 1810 [1].", citations=(CITATION,)),
    Message(
        session_id="s2",
        id="m5",
        role=Role.ASSISTANT,
        content="I don't know.",
        metadata={"standalone_question": "What did Lincoln eat?"},
    ),
]


def _feedback(
    message_id: str, rating: int, *, session: str = "s1", comment: str | None = None, age_days: int = 1
) -> Feedback:
    return Feedback(
        session_id=session,
        message_id=message_id,
        user="ann",
        rating=rating,
        comment=comment,
        created_at=NOW - timedelta(days=age_days),
    )


def _export(feedback: list[Feedback], since: datetime | None = None) -> ExportResult:
    return export_feedback(
        cast(Catalog, MemoryFeedback(feedback)), cast(ChatHistory, MemoryHistory(MESSAGES)), since=since
    )


def test_thumbs_down_answers_become_unannotated_rows() -> None:
    result = _export(
        [
            _feedback("m2", 1),  # thumbs up: not exported
            _feedback("m4", -1, comment="Wrong year", age_days=2),
            _feedback("m4", -1, comment="wrong year!", age_days=1),
            _feedback("m5", -1, session="s2"),
        ]
    )
    assert result.skipped == []
    first, second = result.rows
    assert first == {
        "id": "s1:m4",
        "session_id": "s1",
        "message_id": "m4",
        "question": "When was he born?",  # the user turn before the answer, found across pages
        "answer_given": "In 1810 [1].",
        "citations": [{"n": 1, "document_id": "doc1", "chunk_id": "doc1:0", "title": "Lincoln", "text": "Born 1809."}],
        "comment": "Wrong year\nwrong year!",
        "rating": -1,
        "feedback_at": (NOW - timedelta(days=1)).isoformat(),
        "reference_answer": "",
    }
    assert second["question"] == "What did Lincoln eat?"  # stored with the answer
    assert second["comment"] == ""


def test_since_and_missing_or_wrong_messages() -> None:
    feedback = [_feedback("m4", -1, age_days=10), _feedback("gone", -1), _feedback("m3", -1)]
    result = _export(feedback, since=NOW - timedelta(days=7))
    assert result.rows == []
    assert result.skipped == [
        "s1:gone: message no longer exists",
        "s1:m3: feedback is on a user message, not an answer",
    ]


def test_the_file_loads_back_once_labelled(tmp_path: Path) -> None:
    rows = _export([_feedback("m4", -1, comment="ü")]).rows
    path = write_jsonl(rows, tmp_path / "nested" / "feedback.jsonl")
    assert path.read_text(encoding="utf-8") == to_jsonl(rows) and "ü" in to_jsonl(rows)
    with pytest.raises(InvalidInput, match="reference answer is empty"):
        load_qa(path)
    (item,) = load_qa(path, require_reference=False)
    assert item.question == "When was he born?" and item.id == "s1:m4"
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(to_jsonl([{**rows[0], "reference_answer": "1809"}]), encoding="utf-8")
    assert load_qa(labelled)[0].reference == "1809"


def test_parse_since() -> None:
    assert parse_since("7d", now=NOW) == NOW - timedelta(days=7)
    assert parse_since("12h", now=NOW) == NOW - timedelta(hours=12)
    assert parse_since("2w", now=NOW) == NOW - timedelta(weeks=2)
    assert parse_since("30m", now=NOW) == NOW - timedelta(minutes=30)
    assert parse_since("2025-03-01", now=NOW) == datetime(2025, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="--since"):
        parse_since("last week", now=NOW)
