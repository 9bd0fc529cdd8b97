"""What only the SQL catalog promises beyond the contracts: schemas, time zones, ordering ties."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from quarry.adapters.sql_catalog import SqlCatalog, SqlChatHistory, SqlConnections
from quarry.errors import InvalidInput
from quarry.models import Feedback, Message, Role, new_id
from tests.contracts.catalog_contract import make_document, make_workspace
from tests.contracts.chat_history_contract import make_session

pytestmark = pytest.mark.integration

Pool = ConnectionPool[psycopg.Connection[Any]]


def test_schema_creation_is_idempotent_and_safe_to_race(pg_pool: Pool) -> None:
    schema = f"race_{new_id()[:8]}"
    errors: list[BaseException] = []

    def create() -> None:
        try:
            SqlCatalog(pg_pool, schema=schema)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pg_pool.connection() as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,)
        ).fetchall()
    assert [t[0] for t in tables] == ["connections", "documents", "feedback", "messages", "sessions", "workspaces"]


def test_schemas_are_separate_catalogs(pg_pool: Pool) -> None:
    one = SqlCatalog(pg_pool, schema=f"one_{new_id()[:8]}")
    two = SqlCatalog(pg_pool, schema=f"two_{new_id()[:8]}")
    workspace = make_workspace("alice")
    one.put_workspace(workspace)
    assert two.get_workspace(workspace.id) is None
    assert [w.id for w in one.list_workspaces("alice")] == [workspace.id]


def test_times_come_back_in_utc_whatever_zone_went_in(pg_pool: Pool) -> None:
    catalog = SqlCatalog(pg_pool)
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2024, 6, 1, 14, 0, tzinfo=plus_two)
    workspace = make_workspace(created_at=created)
    catalog.put_workspace(workspace)
    loaded = catalog.get_workspace(workspace.id)
    assert loaded is not None
    assert loaded.created_at == created
    assert loaded.created_at.tzinfo == UTC and loaded.created_at.hour == 12


def test_naive_datetimes_are_rejected(pg_pool: Pool) -> None:
    catalog = SqlCatalog(pg_pool)
    workspace = make_workspace()
    with pytest.raises(InvalidInput):
        catalog.put_document(make_document(workspace, created_at=datetime(2024, 1, 1)))
    with pytest.raises(InvalidInput):
        catalog.stale_documents(make_document(workspace).status, datetime(2024, 1, 1))
    with pytest.raises(InvalidInput):
        catalog.put_feedback(Feedback("s", "m", "u", 1, created_at=datetime(2024, 1, 1)))


def test_messages_of_the_same_instant_keep_their_insertion_order(pg_pool: Pool) -> None:
    history = SqlChatHistory(pg_pool)
    session = make_session()
    now = datetime.now(UTC)
    messages = [Message(session.id, new_id(), Role.USER, f"m{i}", created_at=now) for i in range(5)]
    for message in messages:
        history.add_message(message)
    assert history.list_messages(session.id, limit=2).items == messages[:2]
    assert history.recent_messages(session.id, limit=3) == messages[2:]
    page = history.list_messages(session.id, limit=3)
    assert page.cursor is not None
    assert history.list_messages(session.id, limit=3, cursor=page.cursor).items == messages[3:]


def test_unstorable_message_metadata_is_invalid_input(pg_pool: Pool) -> None:
    history = SqlChatHistory(pg_pool)
    with pytest.raises(InvalidInput):
        history.add_message(Message("s", new_id(), Role.USER, "x", metadata={"bad": object()}))


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_page_limits_are_checked(pg_pool: Pool, limit: int) -> None:
    with pytest.raises(InvalidInput):
        SqlCatalog(pg_pool).list_documents(new_id(), limit=limit)
    with pytest.raises(InvalidInput):
        SqlChatHistory(pg_pool).list_sessions("someone", limit=limit)


def test_expired_connections_are_swept(pg_pool: Pool) -> None:
    connections = SqlConnections(pg_pool)
    with pg_pool.connection() as conn:
        conn.execute(
            "INSERT INTO quarry.connections (id, \"user\", expires_at) VALUES (%s, %s, now() - interval '1 hour')",
            ("stale-conn", "ghost"),
        )
    connections.add(new_id(), "alice")
    with pg_pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM quarry.connections WHERE id = 'stale-conn'").fetchone() == (0,)
