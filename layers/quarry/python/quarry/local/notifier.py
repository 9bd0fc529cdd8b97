"""Pushes to WebSocket connections held by this process (the local API Gateway management API)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LocalNotifier"]

Sender = Callable[[Mapping[str, Any]], bool]


class LocalNotifier:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}
        self._lock = threading.Lock()

    def attach(self, connection_id: str, sender: Sender) -> None:
        with self._lock:
            self._senders[connection_id] = sender

    def detach(self, connection_id: str) -> None:
        with self._lock:
            self._senders.pop(connection_id, None)

    def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
        with self._lock:
            sender = self._senders.get(connection_id)
        return sender(payload) if sender is not None else False
