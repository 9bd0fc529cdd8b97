"""Cancellation flags for one process (the local runtime: the WebSocket and the chat worker share it)."""

from __future__ import annotations

import threading

__all__ = ["InMemoryCancellations"]


class InMemoryCancellations:
    def __init__(self) -> None:
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def cancel(self, session_id: str) -> None:
        with self._lock:
            self._cancelled.add(session_id)

    def take(self, session_id: str) -> bool:
        with self._lock:
            if session_id in self._cancelled:
                self._cancelled.discard(session_id)
                return True
            return False

    def clear(self, session_id: str) -> None:
        with self._lock:
            self._cancelled.discard(session_id)
