"""Pushes to WebSocket connections held by this process (the local API Gateway management API)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LocalNotifier"]

Sender = Callable[[Mapping[str, Any]], bool]
Closer = Callable[[int, str], None]


class LocalNotifier:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}
        self._closers: dict[str, Closer] = {}
        self._lock = threading.Lock()

    def attach(self, connection_id: str, sender: Sender, closer: Closer | None = None) -> None:
        with self._lock:
            self._senders[connection_id] = sender
            if closer is not None:
                self._closers[connection_id] = closer

    def detach(self, connection_id: str) -> None:
        with self._lock:
            self._senders.pop(connection_id, None)
            self._closers.pop(connection_id, None)

    def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
        with self._lock:
            sender = self._senders.get(connection_id)
        return sender(payload) if sender is not None else False

    def close(self, connection_id: str, *, code: int, reason: str) -> None:
        """What DeleteConnection does in AWS: the gateway closes the socket after what was already sent."""
        with self._lock:
            closer = self._closers.get(connection_id)
        if closer is not None:
            closer(code, reason)
