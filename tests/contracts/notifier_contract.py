"""What every ``Notifier`` must do. Supply a fixture ``notifier_wiring`` (a ``NotifierWiring``).

The wiring plays the clients and the gateway around the notifier: a client connects (and is listed
in ``Connections``, as ``$connect`` does), reads what was pushed to it, goes away without a word, or
sees the server close its connection. A gone connection must answer ``False`` and end up no longer
listed, whoever cleans it up (the local gateway's ``$disconnect``; in AWS the notifier itself, since
API Gateway runs ``$disconnect`` only on a best-effort basis).
"""

from __future__ import annotations

from typing import Any, Protocol

from quarry.models import new_id
from quarry.ports import Notifier


class NotifierWiring(Protocol):
    notifier: Notifier

    def connect(self) -> str:
        """A client connects; its connection id."""
        ...

    def received(self, connection_id: str, count: int) -> list[dict[str, Any]]:
        """The first ``count`` payloads the client got (waits for them)."""
        ...

    def drop(self, connection_id: str) -> None:
        """The client goes away without the server closing the connection."""
        ...

    def close_seen(self, connection_id: str) -> tuple[int | None, str | None]:
        """Waits until the client saw the server close it; the close code and reason where the transport
        lets the server choose them, else ``(None, None)``."""
        ...

    def listed(self, connection_id: str) -> bool:
        """Whether ``Connections`` still lists the connection."""
        ...


def token(sequence: int, text: str) -> dict[str, Any]:
    return {"type": "token", "session_id": "s1", "message_id": "m1", "sequence": sequence, "text": text}


class NotifierContract:
    def test_is_a_notifier(self, notifier_wiring: NotifierWiring) -> None:
        assert isinstance(notifier_wiring.notifier, Notifier)

    def test_send_to_a_live_connection_arrives_in_order(self, notifier_wiring: NotifierWiring) -> None:
        connection = notifier_wiring.connect()
        payloads = [token(0, "Grüße"), token(1, " ✓ [1]"), {"type": "final", "answer": "Grüße ✓ [1]", "n": None}]

        sent = [notifier_wiring.notifier.send(connection, payload) for payload in payloads]

        assert sent == [True, True, True]
        assert notifier_wiring.received(connection, 3) == payloads
        assert notifier_wiring.listed(connection)

    def test_a_payload_reaches_only_its_connection(self, notifier_wiring: NotifierWiring) -> None:
        alice, bob = notifier_wiring.connect(), notifier_wiring.connect()

        assert notifier_wiring.notifier.send(alice, token(0, "for alice"))
        assert notifier_wiring.notifier.send(bob, token(0, "for bob"))

        assert notifier_wiring.received(alice, 1) == [token(0, "for alice")]
        assert notifier_wiring.received(bob, 1) == [token(0, "for bob")]  # bob's first payload is his own

    def test_send_to_an_unknown_connection_is_false(self, notifier_wiring: NotifierWiring) -> None:
        assert notifier_wiring.notifier.send(f"never-{new_id()[:12]}", token(0, "x")) is False

    def test_send_to_a_gone_connection_is_false_and_it_is_forgotten(self, notifier_wiring: NotifierWiring) -> None:
        gone, kept = notifier_wiring.connect(), notifier_wiring.connect()
        notifier_wiring.drop(gone)

        assert notifier_wiring.notifier.send(gone, token(0, "anyone there?")) is False
        assert notifier_wiring.notifier.send(gone, token(1, "still?")) is False

        assert not notifier_wiring.listed(gone)
        assert notifier_wiring.notifier.send(kept, token(0, "fine")) is True
        assert notifier_wiring.received(kept, 1) == [token(0, "fine")]
        assert notifier_wiring.listed(kept)

    def test_close_ends_the_connection(self, notifier_wiring: NotifierWiring) -> None:
        connection = notifier_wiring.connect()
        assert notifier_wiring.notifier.send(connection, {"type": "error", "code": "token_expired", "message": "bye"})

        notifier_wiring.notifier.close(connection, code=4401, reason="token expired")

        assert notifier_wiring.received(connection, 1)[0]["code"] == "token_expired"  # sent before the close
        code, reason = notifier_wiring.close_seen(connection)
        assert (code, reason) in ((4401, "token expired"), (None, None))
        assert notifier_wiring.notifier.send(connection, token(0, "after close")) is False
        assert not notifier_wiring.listed(connection)

    def test_close_is_idempotent_and_fine_on_gone_connections(self, notifier_wiring: NotifierWiring) -> None:
        closed, gone = notifier_wiring.connect(), notifier_wiring.connect()
        notifier_wiring.notifier.close(closed, code=1000, reason="done")
        notifier_wiring.close_seen(closed)
        notifier_wiring.drop(gone)

        notifier_wiring.notifier.close(closed, code=1000, reason="done")
        notifier_wiring.notifier.close(gone, code=1000, reason="done")
        notifier_wiring.notifier.close(f"never-{new_id()[:12]}", code=1000, reason="done")

        assert not notifier_wiring.listed(closed)
        assert not notifier_wiring.listed(gone)
