"""Streaming chat over a connection: accept a request (WebSocket side), run it (worker side).

``submit`` validates ownership, opens the session and publishes a ``ChatJob`` on
the bus (direction IN). ``run`` answers it and streams ``token`` events straight
to the connection through the Notifier (no bus hop per token), then ``final``.
A connection that has gone away stops the stream quietly; both turns are kept.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from quarry.errors import QuarryError
from quarry.models import Answer, new_id, utcnow
from quarry.ports import Bus, Cancellations, Notifier
from quarry.protocol import ChatAction, ChatJob, ErrorEvent, FinalEvent, TokenEvent
from quarry.services.chat import ChatRequest, ChatService

__all__ = ["CHAT_TOPIC", "ChatStreamService"]

CHAT_TOPIC = "chat.in"
CANCEL_POLL_SECONDS = 0.25


class ChatStreamService:
    def __init__(self, *, chat: ChatService, bus: Bus, notifier: Notifier, cancellations: Cancellations) -> None:
        self._chat = chat
        self._bus = bus
        self._notifier = notifier
        self._cancellations = cancellations

    def submit(self, connection_id: str, user: str, action: ChatAction) -> ChatJob:
        session = self._chat.open_session(user, action.session_id, action.workspace_id, action.text)
        job = ChatJob(
            connection_id=connection_id,
            user=user,
            session_id=session.id,
            message_id=new_id(),
            request=action.model_copy(update={"session_id": session.id}),
            received_at=utcnow(),
        )
        self._cancellations.clear(session.id)
        self._bus.publish(CHAT_TOPIC, job.model_dump(mode="json"), attributes={"topic": CHAT_TOPIC, "direction": "in"})
        return job

    def cancel(self, session_id: str) -> None:
        self._cancellations.cancel(session_id)

    def send(self, connection_id: str, event: Mapping[str, Any]) -> bool:
        return self._notifier.send(connection_id, event)

    def run(self, job: ChatJob) -> Answer | None:
        """Answer one job, streaming to its connection. Domain errors become an ``error`` event."""
        state = {"sequence": 0, "connected": True}

        def on_token(text: str) -> None:
            if not state["connected"]:
                return
            event = TokenEvent(
                session_id=job.session_id, message_id=job.message_id, sequence=state["sequence"], text=text
            )
            state["sequence"] += 1
            state["connected"] = self._notifier.send(job.connection_id, event.model_dump(mode="json"))

        request = ChatRequest.of(job.user, job.request, session_id=job.session_id)
        last_check = [0.0]

        def cancel_check() -> bool:
            """The flag may live in another process's store: look at most every CANCEL_POLL_SECONDS."""
            now = time.monotonic()
            if now - last_check[0] < CANCEL_POLL_SECONDS:
                return False
            last_check[0] = now
            return self._cancellations.take(job.session_id)

        try:
            outcome = self._chat.answer(
                request,
                message_id=job.message_id,
                on_token=on_token,
                cancelled=lambda: not state["connected"] or cancel_check(),
            )
        except QuarryError as exc:
            error = ErrorEvent(code=exc.code, message=exc.message, session_id=job.session_id)
            self._notifier.send(job.connection_id, error.model_dump(mode="json"))
            return None
        if state["connected"]:
            final = FinalEvent.of(session_id=job.session_id, message_id=job.message_id, answer=outcome.answer)
            self._notifier.send(job.connection_id, final.model_dump(mode="json"))
        return outcome.answer
