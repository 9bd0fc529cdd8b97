"""Chat sessions as the user sees them: list, read with messages, delete."""

from __future__ import annotations

from quarry.errors import NotFound
from quarry.models import Message, Session
from quarry.ports import ChatHistory, Page

__all__ = ["SessionService"]


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

    def delete(self, user: str, session_id: str) -> None:
        self.get(user, session_id)
        self._history.delete_session(session_id)
