"""What every ``ChatHistory`` must do. Supply a fixture ``chat_history``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from quarry.errors import InvalidInput
from quarry.models import Citation, Message, Role, Session, new_id, utcnow
from quarry.ports import ChatHistory, Page


def make_session(owner: str | None = None, **overrides: object) -> Session:
    session = Session(id=new_id(), owner=owner or f"user-{new_id()[:8]}", workspace_id=new_id(), title="Chat")
    return replace(session, **overrides)  # type: ignore[arg-type]


def make_message(session: Session, content: str, *, at: datetime, role: Role = Role.USER) -> Message:
    return Message(session_id=session.id, id=new_id(), role=role, content=content, created_at=at)


def _walk(fetch: object, limit: int) -> list[list[object]]:
    pages: list[list[object]] = []
    cursor: str | None = None
    while True:
        page: Page[object] = fetch(limit=limit, cursor=cursor)  # type: ignore[operator]
        pages.append(page.items)
        cursor = page.cursor
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not terminate"


class ChatHistoryContract:
    def test_is_a_chat_history(self, chat_history: ChatHistory) -> None:
        assert isinstance(chat_history, ChatHistory)

    # ------------------------------------------------------------------ sessions

    def test_session_round_trips(self, chat_history: ChatHistory) -> None:
        session = make_session(
            title="Kinases", created_at=datetime(2024, 3, 1, 9, 0, 0, 1, tzinfo=UTC), updated_at=utcnow()
        )
        chat_history.put_session(session)
        loaded = chat_history.get_session(session.id)
        assert loaded == session
        assert loaded is not None and loaded.updated_at.utcoffset() == timedelta(0)

    def test_session_without_workspace(self, chat_history: ChatHistory) -> None:
        session = make_session(workspace_id=None)
        chat_history.put_session(session)
        assert chat_history.get_session(session.id) == session

    def test_missing_session_is_none(self, chat_history: ChatHistory) -> None:
        assert chat_history.get_session(new_id()) is None

    def test_put_session_overwrites(self, chat_history: ChatHistory) -> None:
        session = make_session()
        chat_history.put_session(session)
        renamed = replace(session, title="Renamed", updated_at=session.updated_at + timedelta(seconds=1))
        chat_history.put_session(renamed)
        assert chat_history.get_session(session.id) == renamed

    def test_list_sessions_newest_first_across_pages(self, chat_history: ChatHistory) -> None:
        owner = f"owner-{new_id()}"
        start = utcnow() - timedelta(hours=1)
        sessions = [make_session(owner, updated_at=start + timedelta(minutes=i)) for i in range(5)]
        for session in sessions:
            chat_history.put_session(session)
        chat_history.put_session(make_session())  # someone else's

        pages = _walk(lambda **kw: chat_history.list_sessions(owner, **kw), limit=2)

        assert [len(page) for page in pages] == [2, 2, 1]
        listed = [s for page in pages for s in page]
        assert listed == list(reversed(sessions))

    def test_list_sessions_of_nobody_is_empty(self, chat_history: ChatHistory) -> None:
        page = chat_history.list_sessions(f"nobody-{new_id()}")
        assert page.items == [] and page.cursor is None

    def test_forged_cursor_is_invalid_input(self, chat_history: ChatHistory) -> None:
        with pytest.raises(InvalidInput):
            chat_history.list_sessions("someone", cursor="###")
        with pytest.raises(InvalidInput):
            chat_history.list_messages(new_id(), cursor="###")

    def test_delete_session_deletes_its_messages(self, chat_history: ChatHistory) -> None:
        doomed, kept = make_session(), make_session()
        chat_history.put_session(doomed)
        chat_history.put_session(kept)
        now = utcnow()
        gone = make_message(doomed, "hello", at=now)
        stays = make_message(kept, "hi", at=now)
        chat_history.add_message(gone)
        chat_history.add_message(stays)

        chat_history.delete_session(doomed.id)

        assert chat_history.get_session(doomed.id) is None
        assert chat_history.get_message(doomed.id, gone.id) is None
        assert chat_history.list_messages(doomed.id).items == []
        assert chat_history.recent_messages(doomed.id, limit=5) == []
        assert chat_history.get_message(kept.id, stays.id) == stays
        chat_history.delete_session(doomed.id)  # idempotent

    # ------------------------------------------------------------------ messages

    def test_message_round_trips_with_citations(self, chat_history: ChatHistory) -> None:
        session = make_session()
        chat_history.put_session(session)
        citation = Citation(
            n=1,
            chunk_id="doc1:0",
            document_id="doc1",
            title="Paper",
            text="Kinase X binds.",
            start=0,
            end=15,
            score=0.87,
        )
        message = Message(
            session_id=session.id,
            id=new_id(),
            role=Role.ASSISTANT,
            content="Kinase X binds Y [1].",
            citations=(citation, replace(citation, n=2, chunk_id="doc2:3", document_id="doc2", score=0.5)),
            created_at=datetime(2024, 3, 1, 9, 0, 0, 999999, tzinfo=UTC),
            metadata={"usage": {"prompt_tokens": 120, "completion_tokens": 30}, "grounded": True},
        )
        chat_history.add_message(message)
        loaded = chat_history.get_message(session.id, message.id)
        assert loaded == message
        assert loaded is not None and all(isinstance(c, Citation) for c in loaded.citations)
        assert loaded.role is Role.ASSISTANT

    def test_missing_message_is_none(self, chat_history: ChatHistory) -> None:
        assert chat_history.get_message(new_id(), new_id()) is None

    def test_messages_list_oldest_first_across_pages(self, chat_history: ChatHistory) -> None:
        session = make_session()
        chat_history.put_session(session)
        start = utcnow() - timedelta(minutes=10)
        messages = [
            make_message(session, f"turn {i}", at=start + timedelta(seconds=i), role=(Role.USER, Role.ASSISTANT)[i % 2])
            for i in range(5)
        ]
        for message in reversed(messages):  # stored out of order
            chat_history.add_message(message)

        pages = _walk(lambda **kw: chat_history.list_messages(session.id, **kw), limit=2)

        assert [len(page) for page in pages] == [2, 2, 1]
        assert [m for page in pages for m in page] == messages

    def test_messages_are_per_session(self, chat_history: ChatHistory) -> None:
        one, two = make_session(), make_session()
        message = make_message(one, "mine", at=utcnow())
        chat_history.add_message(message)
        assert chat_history.list_messages(two.id).items == []
        assert chat_history.get_message(two.id, message.id) is None
        assert chat_history.list_messages(one.id).items == [message]

    def test_recent_messages_are_the_last_ones_oldest_first(self, chat_history: ChatHistory) -> None:
        session = make_session()
        start = utcnow() - timedelta(minutes=10)
        messages = [make_message(session, f"turn {i}", at=start + timedelta(seconds=i)) for i in range(6)]
        for message in messages:
            chat_history.add_message(message)
        assert chat_history.recent_messages(session.id, limit=4) == messages[2:]
        assert chat_history.recent_messages(session.id, limit=50) == messages

    def test_adding_a_message_again_does_not_duplicate(self, chat_history: ChatHistory) -> None:
        session = make_session()
        start = utcnow() - timedelta(minutes=1)
        first = make_message(session, "partial answ", at=start, role=Role.ASSISTANT)
        later = make_message(session, "next question", at=start + timedelta(seconds=1))
        chat_history.add_message(first)
        chat_history.add_message(later)
        final = replace(first, content="partial answer, now complete")
        chat_history.add_message(final)  # a redelivered / completed turn

        assert chat_history.list_messages(session.id).items == [final, later]
        assert chat_history.get_message(session.id, first.id) == final

    # ------------------------------------------------------------------ one write per id (redelivered jobs)

    def test_add_message_if_new_writes_an_id_once_whatever_its_time(self, chat_history: ChatHistory) -> None:
        session = make_session()
        start = utcnow() - timedelta(minutes=1)
        question = make_message(session, "how long is leave?", at=start)
        assert chat_history.add_message_if_new(question) is True
        redelivered = replace(question, content="how long is leave?", created_at=start + timedelta(seconds=30))
        assert chat_history.add_message_if_new(redelivered) is False
        assert chat_history.add_message_if_new(replace(question, content="changed")) is False

        assert chat_history.list_messages(session.id).items == [question]
        assert chat_history.recent_messages(session.id, limit=5) == [question]
        assert chat_history.get_message(session.id, question.id) == question

    def test_add_message_if_new_sees_messages_added_plainly(self, chat_history: ChatHistory) -> None:
        session = make_session()
        answer = make_message(session, "27 days", at=utcnow() - timedelta(seconds=5), role=Role.ASSISTANT)
        chat_history.add_message(answer)
        assert chat_history.add_message_if_new(replace(answer, created_at=utcnow())) is False
        other = make_message(session, "and in 2027?", at=utcnow())
        assert chat_history.add_message_if_new(replace(other, session_id=new_id())) is True  # ids are per session
        assert chat_history.add_message_if_new(other) is True
        assert chat_history.list_messages(session.id).items == [answer, other]

    def test_deleting_a_session_frees_its_message_ids(self, chat_history: ChatHistory) -> None:
        session = make_session()
        chat_history.put_session(session)
        message = make_message(session, "hello", at=utcnow())
        assert chat_history.add_message_if_new(message) is True
        chat_history.delete_session(session.id)
        assert chat_history.list_messages(session.id).items == []
        assert chat_history.add_message_if_new(message) is True
