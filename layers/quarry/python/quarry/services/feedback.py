"""Feedback on answers: only on the user's own sessions."""

from __future__ import annotations

from quarry.errors import InvalidInput, NotFound
from quarry.models import Feedback, Role
from quarry.ports import Catalog, ChatHistory

__all__ = ["FeedbackService"]


class FeedbackService:
    def __init__(self, *, catalog: Catalog, history: ChatHistory) -> None:
        self._catalog = catalog
        self._history = history

    def give(self, user: str, session_id: str, message_id: str, rating: int, comment: str | None) -> Feedback:
        if rating not in (-1, 1):
            raise InvalidInput("rating must be 1 or -1")
        session = self._history.get_session(session_id)
        if session is None or session.owner != user:
            raise NotFound(f"session {session_id} not found")
        message = self._history.get_message(session_id, message_id)
        if message is None or message.role is not Role.ASSISTANT:
            raise NotFound(f"answer {message_id} not found in session {session_id}")
        feedback = Feedback(session_id=session_id, message_id=message_id, user=user, rating=rating, comment=comment)
        self._catalog.put_feedback(feedback)
        return feedback
