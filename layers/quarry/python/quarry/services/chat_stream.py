"""Streaming chat over a connection: accept a request (WebSocket side), run it (worker side).

``submit`` validates ownership, opens the session and publishes a ``ChatJob`` on
the bus (direction IN). ``run`` answers it and streams ``token`` events straight
to the connection through the Notifier (no bus hop per token), then ``final``.
A connection that has gone away stops the stream quietly; both turns are kept.

Before the first token the worker says what it is doing with ``progress`` events (condensing, searching,
reading N sources, writing): they come before any token of the message, in the order of the phases, and carry
no ``sequence``, so the tokens' own numbering (0, 1, 2, ... per message) is untouched. A stopped answer's
``final`` says ``stopped``.

Delivery is at least once: the job's ``message_id`` (assigned once by ``submit``) names both turns, and
only the delivery that stores the question answers; a redelivered job sends and stores nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from quarry.errors import QuarryError
from quarry.filters import Filter
from quarry.models import Answer, new_id, utcnow
from quarry.ports import Bus, Cancellations, Connections, Notifier
from quarry.protocol import ChatAction, ChatJob, ErrorEvent, FinalEvent, ProgressEvent, ProgressPhase, TokenEvent
from quarry.services.chat import AlreadyAnswered, ChatRequest, ChatService

__all__ = ["CHAT_FILTER", "CHAT_TOPIC", "ChatStreamService"]

CHAT_TOPIC = "chat.in"
_CHAT_ATTRIBUTES = {"topic": CHAT_TOPIC, "direction": "in"}
# The chat queue's subscription filter, on AWS (stacks/messaging.py) and on the local bus alike.
CHAT_FILTER: dict[str, list[str]] = {name: [value] for name, value in _CHAT_ATTRIBUTES.items()}
CANCEL_POLL_SECONDS = 0.25


class ChatStreamService:
    def __init__(
        self,
        *,
        chat: ChatService,
        bus: Bus,
        notifier: Notifier,
        cancellations: Cancellations,
        connections: Connections | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._chat = chat
        self._bus = bus
        self._notifier = notifier
        self._cancellations = cancellations
        self._connections = connections
        self._clock = clock

    def submit(self, connection_id: str, user: str, action: ChatAction) -> ChatJob:
        """Accept a chat: refuse a filter that does not parse (422 naming the field) and a user past the daily
        token allowance here already (nothing is opened or published; ``ws_message`` turns the error into an
        ``error`` event), else open the session and publish (the job carries the filter in canonical form)."""
        filters = Filter.parse(action.filters, where="filters")
        self._chat.ensure_allowance(user)
        session = self._chat.open_session(user, action.session_id, action.workspace_id, action.text)
        job = ChatJob(
            connection_id=connection_id,
            user=user,
            session_id=session.id,
            message_id=new_id(),
            request=action.model_copy(update={"session_id": session.id}),
            received_at=utcnow(),
            filters=filters.to_json(),
        )
        self._cancellations.clear(session.id)
        self._bus.publish(CHAT_TOPIC, job.model_dump(mode="json"), attributes=_CHAT_ATTRIBUTES)
        return job

    def cancel(self, user: str, session_id: str) -> None:
        """Stop the answer streaming in the user's own session; another user's session is ``NotFound``."""
        self._chat.owned_session(user, session_id)
        self._cancellations.cancel(session_id)

    def send(self, connection_id: str, event: Mapping[str, Any]) -> bool:
        return self._notifier.send(connection_id, event)

    def token_expired(self, connection_id: str) -> bool:
        """True once the token the connection was opened with has expired (its ``exp``, kept at ``$connect``)."""
        if self._connections is None:
            return False
        connection = self._connections.get(connection_id)
        expires = connection.token_expires_at if connection else None
        return expires is not None and expires <= self._clock()

    def close(self, connection_id: str, *, code: int, reason: str) -> None:
        self._notifier.close(connection_id, code=code, reason=reason)

    def run(self, job: ChatJob) -> Answer | None:
        """Answer one job, streaming to its connection. Domain errors become an ``error`` event: among them
        ``budget_exhausted`` for a job queued before its user's daily allowance ran out (nothing is stored)."""
        state = {"sequence": 0, "connected": True}

        def on_token(text: str) -> None:
            if not state["connected"]:
                return
            event = TokenEvent(
                session_id=job.session_id, message_id=job.message_id, sequence=state["sequence"], text=text
            )
            state["sequence"] += 1
            state["connected"] = self._notifier.send(job.connection_id, event.model_dump(mode="json"))

        def on_progress(phase: ProgressPhase, sources: int | None) -> None:
            if not state["connected"] or state["sequence"]:  # gone, or tokens have started: too late to matter
                return
            event = ProgressEvent(session_id=job.session_id, message_id=job.message_id, phase=phase, sources=sources)
            state["connected"] = self._notifier.send(job.connection_id, event.model_dump(mode="json"))

        last_check = [0.0]

        def cancel_check() -> bool:
            """The flag may live in another process's store: look at most every CANCEL_POLL_SECONDS."""
            now = time.monotonic()
            if now - last_check[0] < CANCEL_POLL_SECONDS:
                return False
            last_check[0] = now
            return self._cancellations.take(job.session_id)

        try:
            filters = Filter.parse(job.filters or job.request.filters, where="filters")
            request = ChatRequest.of(job.user, job.request, session_id=job.session_id, filters=filters)
            outcome = self._chat.answer(
                request,
                message_id=job.message_id,
                on_token=on_token,
                cancelled=lambda: not state["connected"] or cancel_check(),
                on_progress=on_progress,
            )
        except AlreadyAnswered:  # a redelivered job: the first delivery streams and stores the answer
            return None
        except QuarryError as exc:
            error = ErrorEvent(code=exc.code, message=exc.message, session_id=job.session_id)
            self._notifier.send(job.connection_id, error.model_dump(mode="json"))
            return None
        except Exception:  # the question is stored, so a redelivery will not answer: say so now, then fail
            error = ErrorEvent(code="internal_error", message="the answer failed: ask again", session_id=job.session_id)
            with contextlib.suppress(Exception):
                self._notifier.send(job.connection_id, error.model_dump(mode="json"))
            raise
        if state["connected"]:
            final = FinalEvent.of(session_id=job.session_id, message_id=job.message_id, answer=outcome.answer)
            final.stopped = outcome.cancelled
            self._notifier.send(job.connection_id, final.model_dump(mode="json"))
        return outcome.answer
