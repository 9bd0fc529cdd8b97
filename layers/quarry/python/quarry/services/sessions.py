"""Chat sessions as the user sees them: list, read with messages, rename, delete; and their automatic titles."""

from __future__ import annotations

from dataclasses import replace

from quarry.errors import InvalidInput, NotFound
from quarry.models import Message, Session
from quarry.ports import ChatHistory, Page

__all__ = ["MAX_TITLE_CHARS", "SessionService", "title_from_question"]

MAX_TITLE_CHARS = 80
AUTO_TITLE_CHARS = 60


def title_from_question(text: str, *, limit: int = AUTO_TITLE_CHARS) -> str:
    """A short conversation title from its first question: whitespace collapsed, cut at a word boundary
    with an ellipsis when longer than ``limit``; a question of only spaces is "New conversation"."""
    words = " ".join(text.split())
    if not words:
        return "New conversation"
    if len(words) <= limit:
        return words
    cut = words[: limit - 1]
    if " " in cut and words[limit - 1] != " ":
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


class SessionService:
    def __init__(self, *, history: ChatHistory) -> None:
        self._history = history

    def list_sessions(self, user: str, *, limit: int = 20, cursor: str | None = None) -> Page[Session]:
        return self._history.list_sessions(user, limit=limit, cursor=cursor)

    def get(self, user: str, session_id: str) -> Session:
        session = self._history.get_session(session_id)
        if session is None or session.owner != user:
            raise NotFound(f"session {session_id} not found")
        return session

    def messages(self, user: str, session_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        self.get(user, session_id)
        return self._history.list_messages(session_id, limit=limit, cursor=cursor)

    def rename(self, user: str, session_id: str, title: str) -> Session:
        """Give the user's own conversation a new title (whitespace collapsed); someone else's is ``NotFound``.
        The conversation keeps its place in the list: ``updated_at`` is the time of its last message."""
        session = self.get(user, session_id)
        clean = " ".join(title.split())
        if not clean:
            raise InvalidInput("the title must not be empty")
        if len(clean) > MAX_TITLE_CHARS:
            raise InvalidInput(f"the title must be at most {MAX_TITLE_CHARS} characters")
        renamed = replace(session, title=clean)
        self._history.put_session(renamed)
        return renamed

    def delete(self, user: str, session_id: str) -> None:
        self.get(user, session_id)
        self._history.delete_session(session_id)
