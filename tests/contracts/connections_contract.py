"""What every ``Connections`` registry must do. Supply a fixture ``connections``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from quarry.errors import InvalidInput
from quarry.models import new_id
from quarry.ports import ConnectionInfo, Connections


class ConnectionsContract:
    def test_is_a_connections_registry(self, connections: Connections) -> None:
        assert isinstance(connections, Connections)

    def test_add_then_look_up_both_ways(self, connections: Connections) -> None:
        user, other = f"alice-{new_id()}", f"bob-{new_id()}"
        first, second, theirs = new_id(), new_id(), new_id()
        connections.add(first, user)
        connections.add(second, user)
        connections.add(theirs, other)

        assert connections.user_of(first) == user
        assert connections.user_of(theirs) == other
        assert sorted(connections.of_user(user)) == sorted([first, second])
        assert connections.of_user(other) == [theirs]

    def test_unknown_connection(self, connections: Connections) -> None:
        assert connections.user_of(new_id()) is None
        assert connections.of_user(f"nobody-{new_id()}") == []

    def test_remove_is_idempotent(self, connections: Connections) -> None:
        user = f"alice-{new_id()}"
        kept, gone = new_id(), new_id()
        connections.add(kept, user)
        connections.add(gone, user)

        connections.remove(gone)
        connections.remove(gone)
        connections.remove(new_id())

        assert connections.user_of(gone) is None
        assert connections.of_user(user) == [kept]

    def test_adding_again_moves_the_connection(self, connections: Connections) -> None:
        alice, bob = f"alice-{new_id()}", f"bob-{new_id()}"
        connection = new_id()
        connections.add(connection, alice)
        connections.add(connection, bob)
        assert connections.user_of(connection) == bob
        assert connections.of_user(alice) == []
        assert connections.of_user(bob) == [connection]

    def test_expired_connections_are_gone(self, connections: Connections) -> None:
        user = f"alice-{new_id()}"
        short, long = new_id(), new_id()
        connections.add(short, user, ttl_seconds=1)
        connections.add(long, user, ttl_seconds=3600)
        assert connections.user_of(short) == user
        time.sleep(1.3)
        assert connections.user_of(short) is None
        assert connections.of_user(user) == [long]

    def test_ttl_must_be_positive(self, connections: Connections) -> None:
        with pytest.raises(InvalidInput):
            connections.add(new_id(), "alice", ttl_seconds=0)

    def test_the_tokens_expiry_is_kept_with_the_connection(self, connections: Connections) -> None:
        user = f"alice-{new_id()}"
        with_token, without = new_id(), new_id()
        expires = datetime(2031, 5, 4, 3, 2, 1, 123000, tzinfo=UTC)
        connections.add(with_token, user, token_expires_at=expires)
        connections.add(without, user)

        assert connections.get(with_token) == ConnectionInfo(id=with_token, user=user, token_expires_at=expires)
        assert connections.get(without) == ConnectionInfo(id=without, user=user, token_expires_at=None)
        assert connections.get(new_id()) is None

        renewed = expires + timedelta(hours=1)
        connections.add(with_token, user, token_expires_at=renewed)
        info = connections.get(with_token)
        assert info is not None and info.token_expires_at == renewed
        assert info.token_expires_at.utcoffset() == timedelta(0)

    def test_an_expired_connection_has_no_info(self, connections: Connections) -> None:
        connection = new_id()
        connections.add(connection, f"alice-{new_id()}", ttl_seconds=1, token_expires_at=datetime.now(UTC))
        time.sleep(1.3)
        assert connections.get(connection) is None
