"""An in-process bus with SQS semantics, standing in for SNS topics and SQS queues.

At-least-once delivery; a message being handled is invisible for its queue's
visibility timeout (longer than the handler may run, as on SQS, or a second
consumer would take it again); a failed message (exception, or reported in
``batchItemFailures``) comes back after ``retry_delay`` (locally shorter than the
rest of the visibility timeout SQS would wait); after ``max_receives`` attempts
it goes to the dead-letter folder as JSON (``LocalBus.dead_letters``).

Messages are encoded and checked as ``SnsBus`` does (``adapters.bus_messages``), and a queue
subscribes to topics with an optional SNS-style filter policy on the message attributes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quarry.adapters.bus_messages import encode_message, matches_filter
from quarry.local.events import sns_envelope, sqs_event

__all__ = ["LocalBus", "SqsHandler", "read_dead_letters"]

log = logging.getLogger(__name__)

SqsHandler = Callable[[dict[str, Any]], Any]


@dataclass
class _Message:
    id: str
    body: str
    receives: int = 0
    visible_at: float = 0.0


@dataclass
class _Queue:
    name: str
    handler: SqsHandler
    topics: frozenset[str]
    filter_policy: dict[str, frozenset[str]]
    visibility_timeout: float
    max_receives: int
    messages: list[_Message] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)


def read_dead_letters(folder: Path) -> list[dict[str, Any]]:
    """Dead-lettered messages (one JSON file each, per queue), oldest first."""
    if not folder.is_dir():
        return []
    letters = [json.loads(p.read_text()) for p in folder.glob("*/*.json")]
    return sorted(letters, key=lambda letter: letter["dead_lettered_at"])


class LocalBus:
    def __init__(
        self,
        *,
        dead_letter_dir: Path,
        visibility_timeout: float = 900.0,
        retry_delay: float = 1.0,
        max_receives: int = 3,
    ) -> None:
        self._dead_letter_dir = dead_letter_dir
        self._visibility = visibility_timeout
        self._retry_delay = retry_delay
        self._max_receives = max_receives
        self._queues: dict[str, _Queue] = {}
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    # ------------------------------------------------------------------ wiring
    def subscribe(
        self,
        queue: str,
        handler: SqsHandler,
        *,
        topics: tuple[str, ...] = (),
        filter_policy: Mapping[str, Sequence[str]] | None = None,
        workers: int = 1,
    ) -> None:
        """Create a queue fed by ``topics`` (SNS-style envelope) and/or direct ``send``s, consumed by ``handler``.

        ``filter_policy`` (e.g. ``{"direction": ["in"]}``) keeps only the published messages whose attributes
        match, as an SNS subscription's filter policy does (exact string values).
        """
        for name, values in (filter_policy or {}).items():
            if isinstance(values, str) or not values or not all(isinstance(value, str) for value in values):
                raise ValueError(f"filter policy {name!r}: the local bus matches lists of exact strings only")
        policy = {name: frozenset(values) for name, values in (filter_policy or {}).items()}
        q = _Queue(queue, handler, frozenset(topics), policy, self._visibility, self._max_receives)
        self._queues[queue] = q
        for n in range(workers):
            t = threading.Thread(target=self._consume, args=(q,), name=f"bus-{queue}-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    # ------------------------------------------------------------------ Bus port
    def publish(self, topic: str, message: Mapping[str, Any], *, attributes: Mapping[str, str] | None = None) -> None:
        encoded = encode_message(topic, message, attributes)
        body = json.loads(encoded.body)  # what the consumer will see: plain JSON values
        delivered = False
        for q in self._queues.values():
            if topic in q.topics and matches_filter(q.filter_policy, encoded.attributes):
                self._enqueue(q, sns_envelope(body, encoded.attributes, topic))
                delivered = True
        if not delivered:
            log.warning("no queue takes %s with attributes %s; message dropped", topic, encoded.attributes)

    def send(self, queue: str, body: str) -> str:
        """SQS SendMessage to one queue (e.g. S3 event notifications)."""
        return self._enqueue(self._queues[queue], body)

    def _enqueue(self, q: _Queue, body: str) -> str:
        message = _Message(id=str(uuid.uuid4()), body=body)
        with q.cond:
            q.messages.append(message)
            q.cond.notify()
        return message.id

    # ------------------------------------------------------------------ consuming
    def _next(self, q: _Queue) -> _Message | None:
        with q.cond:
            while not self._closed.is_set():
                now = time.monotonic()
                ready = next((m for m in q.messages if m.visible_at <= now), None)
                if ready is not None:
                    ready.receives += 1
                    ready.visible_at = now + q.visibility_timeout
                    return ready
                waits = [m.visible_at - now for m in q.messages]
                q.cond.wait(timeout=min(waits) if waits else 0.5)
        return None

    def _consume(self, q: _Queue) -> None:
        while (message := self._next(q)) is not None:
            failed = self._deliver(q, message)
            with q.cond:
                if message not in q.messages:  # already settled by another consumer (at-least-once)
                    continue
                if not failed:
                    q.messages.remove(message)
                elif message.receives >= q.max_receives:
                    q.messages.remove(message)
                    self._dead_letter(q, message)
                else:
                    message.visible_at = time.monotonic() + self._retry_delay
                q.cond.notify()

    def _deliver(self, q: _Queue, message: _Message) -> bool:
        try:
            result = q.handler(sqs_event([(message.id, message.body, message.receives)], q.name))
        except Exception:
            log.exception("handler of queue %s failed", q.name)
            return True
        failures = (result or {}).get("batchItemFailures") or [] if isinstance(result, dict) else []
        return any(f.get("itemIdentifier") == message.id for f in failures)

    def _dead_letter(self, q: _Queue, message: _Message) -> None:
        folder = self._dead_letter_dir / q.name
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "queue": q.name,
            "message_id": message.id,
            "receives": message.receives,
            "body": message.body,
            "dead_lettered_at": time.time(),
        }
        # Written aside, then renamed: a reader listing the folder never sees a half-written letter.
        partial = folder / f"{message.id}.json.partial"
        partial.write_text(json.dumps(record))
        os.replace(partial, folder / f"{message.id}.json")
        log.error("message %s on %s dead-lettered after %d receives", message.id, q.name, message.receives)

    def dead_letters(self) -> list[dict[str, Any]]:
        return read_dead_letters(self._dead_letter_dir)

    def pending(self, queue: str) -> int:
        q = self._queues[queue]
        with q.cond:
            return len(q.messages)

    def close(self) -> None:
        self._closed.set()
        for q in self._queues.values():
            with q.cond:
                q.cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)
