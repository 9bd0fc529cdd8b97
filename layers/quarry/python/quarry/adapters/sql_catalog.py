"""``Catalog``, ``ChatHistory`` and ``Connections`` on PostgreSQL tables (embedded locally, any Postgres).

Tables live in one schema (``quarry`` by default; DDL in ``quarry/sql/pg_catalog.sql``, applied
idempotently by ``ensure_schema``). Timestamps are ``timestamptz`` and come back as UTC datetimes.
Listings page with keyset cursors, handed out as opaque strings (``quarry.adapters.paging``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from quarry.adapters.paging import INVALID_CURSOR, check_limit, decode_cursor, encode_cursor
from quarry.adapters.pg import ddl
from quarry.errors import Conflict, InvalidInput
from quarry.models import (
    ChunkingConfig,
    Citation,
    Document,
    DocumentSource,
    DocumentStatus,
    Feedback,
    Message,
    Role,
    Session,
    Workspace,
    utcnow,
)
from quarry.ports import UPLOAD_SEQUENCER, ConnectionInfo, Page

__all__ = ["SqlCatalog", "SqlChatHistory", "SqlConnections"]

_IN_BATCH = 500  # ids per generated IN (...) list

Pool = ConnectionPool[psycopg.Connection[Any]]
T = TypeVar("T")


# --------------------------------------------------------------------------- cursors


def _cursor_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(INVALID_CURSOR) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------- base


class _Tables:
    """Shared plumbing: the pool, the schema, and idempotent creation of all catalog tables."""

    def __init__(self, pool: Pool, *, schema: str = "quarry", create: bool = True) -> None:
        self.pool = pool
        self.schema = schema
        if create:
            self.ensure_schema()

    def ensure_schema(self) -> None:
        with self.pool.connection() as conn:
            # CREATE ... IF NOT EXISTS is not safe against a concurrent twin: serialise the creators.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"quarry-ddl/{self.schema}",))
            conn.execute(ddl("pg_catalog", schema=sql.Identifier(self.schema)))

    def _q(self, query: str) -> sql.Composed:
        """``query`` with ``{t}`` standing for the schema (``{t}.documents``)."""
        return sql.SQL(query).format(t=sql.Identifier(self.schema))

    def _one(self, query: str, params: Sequence[Any] | dict[str, Any]) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            return conn.cursor(row_factory=dict_row).execute(self._q(query), params).fetchone()

    def _all(self, query: str, params: Sequence[Any] | dict[str, Any]) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            return conn.cursor(row_factory=dict_row).execute(self._q(query), params).fetchall()

    def _keyset_page(
        self,
        query: str,
        params: dict[str, Any],
        *,
        listing: str,
        cursor: str | None,
        key_kind: type[str] | type[int],
        limit: int,
        order: tuple[str, str],
        item: Callable[[dict[str, Any]], T],
    ) -> Page[T]:
        """One page of a keyset-paginated query ordered by ``order`` (a time column, a key column), either way.

        ``query`` compares its ordering columns with ``%(cursor_time)s`` and ``%(cursor_key)s`` (NULL on the
        first page) and ends with ``LIMIT %(limit)s``; the cursor, tagged ``listing``, is the last row's time
        and key.
        """
        check_limit(limit)
        moment: datetime | None = None
        key: Any = None
        if cursor is not None:
            text, key = decode_cursor(cursor, listing, (str, key_kind))
            moment = _cursor_time(text)
        rows = self._all(query, {**params, "cursor_time": moment, "cursor_key": key, "limit": limit + 1})
        page = rows[:limit]
        more = len(rows) > limit
        time_column, key_column = order
        last = page[-1] if page else None
        next_cursor = (
            encode_cursor(listing, last[time_column].astimezone(UTC).isoformat(), last[key_column])
            if more and last
            else None
        )
        return Page([item(row) for row in page], next_cursor)

    def _run(self, *statements: tuple[str, Sequence[Any] | dict[str, Any]]) -> int:
        """Execute statements in one transaction; returns the last one's row count."""
        rowcount = 0
        with self.pool.connection() as conn:
            for query, params in statements:
                rowcount = conn.execute(self._q(query), params).rowcount
        return rowcount


# --------------------------------------------------------------------------- catalog

_DOCUMENT_FIELDS = (
    "workspace_id",
    "id",
    "name",
    "source",
    "status",
    "status_reason",
    "blob_key",
    "content_type",
    "size_bytes",
    "content_hash",
    "metadata",
    "parent_id",
    "chunk_count",
    "created_at",
    "updated_at",
)
_DOCUMENT_COLUMNS = ", ".join(_DOCUMENT_FIELDS)
_DOCUMENT_VALUES = ", ".join(f"%({name})s" for name in _DOCUMENT_FIELDS)
_DOCUMENT_UPDATES = ", ".join(f"{name} = EXCLUDED.{name}" for name in _DOCUMENT_FIELDS[2:])
_DOCUMENT_SETS = ", ".join(f"{name} = %({name})s" for name in _DOCUMENT_FIELDS[2:])


def _document_params(document: Document) -> dict[str, Any]:
    params = asdict(document)
    params |= {
        "source": document.source.value,
        "status": document.status.value,
        "metadata": Jsonb(document.metadata),
        "created_at": _utc(document.created_at),
        "updated_at": _utc(document.updated_at),
    }
    return params


def _document(row: dict[str, Any]) -> Document:
    return Document(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        source=DocumentSource(row["source"]),
        status=DocumentStatus(row["status"]),
        status_reason=row["status_reason"],
        blob_key=row["blob_key"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        content_hash=row["content_hash"],
        metadata=row["metadata"],
        parent_id=row["parent_id"],
        chunk_count=row["chunk_count"],
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
    )


def _workspace(row: dict[str, Any]) -> Workspace:
    return Workspace(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        embedding_model=row["embedding_model"],
        dimensions=row["dimensions"],
        chunking=ChunkingConfig(size=row["chunk_size"], overlap=row["chunk_overlap"]),
        hybrid=row["hybrid"],
        reranker=row["reranker"],
        shared_with=tuple(row["shared_with"]),
        created_at=row["created_at"].astimezone(UTC),
    )


def _feedback(row: dict[str, Any]) -> Feedback:
    return Feedback(
        session_id=row["session_id"],
        message_id=row["message_id"],
        user=row["user"],
        rating=row["rating"],
        comment=row["comment"],
        created_at=row["created_at"].astimezone(UTC),
    )


class SqlCatalog(_Tables):
    """Workspaces, documents and feedback."""

    # ------------------------------------------------------------------ workspaces

    def put_workspace(self, workspace: Workspace) -> None:
        params = {
            "id": workspace.id,
            "name": workspace.name,
            "owner": workspace.owner,
            "embedding_model": workspace.embedding_model,
            "dimensions": workspace.dimensions,
            "chunk_size": workspace.chunking.size,
            "chunk_overlap": workspace.chunking.overlap,
            "hybrid": workspace.hybrid,
            "reranker": workspace.reranker,
            "shared_with": list(workspace.shared_with),
            "created_at": _utc(workspace.created_at),
        }
        columns = ", ".join(params)
        values = ", ".join(f"%({name})s" for name in params)
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in params if name != "id")
        self._run(
            (
                f"INSERT INTO {{t}}.workspaces ({columns}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {updates}",
                params,
            )
        )

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        row = self._one("SELECT * FROM {t}.workspaces WHERE id = %s", (workspace_id,))
        return _workspace(row) if row else None

    def list_workspaces(self, user: str) -> list[Workspace]:
        rows = self._all(
            "SELECT * FROM {t}.workspaces WHERE owner = %(user)s OR %(user)s = ANY (shared_with)"
            " ORDER BY created_at, id",
            {"user": user},
        )
        return [_workspace(row) for row in rows]

    def delete_workspace(self, workspace_id: str) -> None:
        self._run(
            ("DELETE FROM {t}.documents WHERE workspace_id = %s", (workspace_id,)),
            ("DELETE FROM {t}.workspaces WHERE id = %s", (workspace_id,)),
        )

    # ------------------------------------------------------------------ documents

    def register_document(self, document: Document, *, idempotency_key: str | None = None) -> tuple[Document, bool]:
        """Insert unless the key (or, without a key, the document id) is taken in the workspace."""
        params = _document_params(document) | {"idempotency_key": idempotency_key}
        for _ in range(3):  # a conflicting row may vanish between the insert and the read
            inserted = self._one(
                f"INSERT INTO {{t}}.documents ({_DOCUMENT_COLUMNS}, idempotency_key)"
                f" VALUES ({_DOCUMENT_VALUES}, %(idempotency_key)s) ON CONFLICT DO NOTHING RETURNING *",
                params,
            )
            if inserted:
                return _document(inserted), True
            existing = self._one(
                "SELECT * FROM {t}.documents WHERE workspace_id = %(workspace_id)s"
                " AND (idempotency_key = %(idempotency_key)s OR id = %(id)s)"
                " ORDER BY idempotency_key = %(idempotency_key)s DESC NULLS LAST LIMIT 1",
                params,
            )
            if existing:
                return _document(existing), False
        raise Conflict(f"document {document.id} could not be registered: its key keeps changing hands")

    def put_document(self, document: Document) -> None:
        self._run(
            (
                f"INSERT INTO {{t}}.documents ({_DOCUMENT_COLUMNS}) VALUES ({_DOCUMENT_VALUES})"
                f" ON CONFLICT (workspace_id, id) DO UPDATE SET {_DOCUMENT_UPDATES}",
                _document_params(document),
            )
        )

    def put_document_if(
        self, document: Document, *, expected_sequencer: str | None, expected_status: DocumentStatus | None = None
    ) -> bool:
        """One ``UPDATE ... WHERE`` on the stored sequencer (and status): Postgres re-checks the condition on the
        row it locked, so of two concurrent writers that read the same version only the first matches."""
        stored = f"(metadata ->> '{UPLOAD_SEQUENCER}')"  # the row before the update
        condition = f"{stored} IS NULL" if expected_sequencer is None else f"{stored} = %(expected_sequencer)s"
        if expected_status is not None:
            condition += " AND status = %(expected_status)s"
        expected = {
            "expected_sequencer": expected_sequencer,
            "expected_status": None if expected_status is None else DocumentStatus(expected_status).value,
        }
        row = self._one(
            f"UPDATE {{t}}.documents SET {_DOCUMENT_SETS}"
            f" WHERE workspace_id = %(workspace_id)s AND id = %(id)s AND {condition} RETURNING id",
            _document_params(document) | expected,
        )
        return row is not None

    def get_document(self, workspace_id: str, document_id: str) -> Document | None:
        row = self._one("SELECT * FROM {t}.documents WHERE workspace_id = %s AND id = %s", (workspace_id, document_id))
        return _document(row) if row else None

    def list_documents(
        self,
        workspace_id: str,
        *,
        status: DocumentStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Document]:
        return self._keyset_page(
            "SELECT * FROM {t}.documents WHERE workspace_id = %(workspace_id)s"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " AND (%(cursor_time)s::timestamptz IS NULL OR (created_at, id) > (%(cursor_time)s, %(cursor_key)s))"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"workspace_id": workspace_id, "status": DocumentStatus(status).value if status is not None else None},
            listing="documents",
            cursor=cursor,
            key_kind=str,
            limit=limit,
            order=("created_at", "id"),
            item=_document,
        )

    def set_document_status(
        self,
        workspace_id: str,
        document_id: str,
        status: DocumentStatus,
        *,
        reason: str | None = None,
        chunk_count: int | None = None,
    ) -> Document | None:
        row = self._one(
            "UPDATE {t}.documents SET status = %(status)s, status_reason = %(reason)s,"
            " chunk_count = coalesce(%(chunk_count)s, chunk_count), updated_at = %(now)s"
            " WHERE workspace_id = %(workspace_id)s AND id = %(id)s RETURNING *",
            {
                "status": DocumentStatus(status).value,
                "reason": reason,
                "chunk_count": chunk_count,
                "now": utcnow(),
                "workspace_id": workspace_id,
                "id": document_id,
            },
        )
        return _document(row) if row else None

    def delete_document(self, workspace_id: str, document_id: str) -> None:
        self._run(("DELETE FROM {t}.documents WHERE workspace_id = %s AND id = %s", (workspace_id, document_id)))

    def existing_document_ids(self, workspace_id: str, document_ids: Iterable[str]) -> set[str]:
        """One ``IN (...)`` query per 500 ids, with generated placeholders: no array parameter (the RDS Data
        API carries none), and ``id = ANY`` would not be planned better for a few dozen ids."""
        wanted = sorted(set(document_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _IN_BATCH):
            batch = wanted[start : start + _IN_BATCH]
            placeholders = ", ".join(["%s"] * len(batch))
            rows = self._all(
                f"SELECT id FROM {{t}}.documents WHERE workspace_id = %s AND id IN ({placeholders})",
                (workspace_id, *batch),
            )
            found.update(row["id"] for row in rows)
        return found

    def stale_documents(self, status: DocumentStatus, older_than: datetime) -> list[Document]:
        rows = self._all(
            "SELECT * FROM {t}.documents WHERE status = %s AND updated_at < %s ORDER BY updated_at, workspace_id, id",
            (DocumentStatus(status).value, _utc(older_than)),
        )
        return [_document(row) for row in rows]

    # ------------------------------------------------------------------ feedback

    def put_feedback(self, feedback: Feedback) -> None:
        self._run(
            (
                'INSERT INTO {t}.feedback (session_id, message_id, "user", rating, comment, created_at)'
                ' VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (session_id, message_id, "user")'
                " DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, created_at = EXCLUDED.created_at",
                (
                    feedback.session_id,
                    feedback.message_id,
                    feedback.user,
                    feedback.rating,
                    feedback.comment,
                    _utc(feedback.created_at),
                ),
            )
        )

    def list_feedback(self, *, since: datetime | None = None) -> list[Feedback]:
        rows = self._all(
            "SELECT * FROM {t}.feedback WHERE %(since)s::timestamptz IS NULL OR created_at >= %(since)s"
            ' ORDER BY created_at, session_id, message_id, "user"',
            {"since": _utc(since) if since is not None else None},
        )
        return [_feedback(row) for row in rows]


# --------------------------------------------------------------------------- chat history


def _session(row: dict[str, Any]) -> Session:
    return Session(
        id=row["id"],
        owner=row["owner"],
        workspace_id=row["workspace_id"],
        title=row["title"],
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
    )


def _message(row: dict[str, Any]) -> Message:
    return Message(
        session_id=row["session_id"],
        id=row["id"],
        role=Role(row["role"]),
        content=row["content"],
        citations=tuple(Citation(**citation) for citation in row["citations"]),
        created_at=row["created_at"].astimezone(UTC),
        metadata=row["metadata"],
    )


class SqlChatHistory(_Tables):
    """Sessions, and their messages one row each."""

    def put_session(self, session: Session) -> None:
        self._run(
            (
                "INSERT INTO {t}.sessions (id, owner, workspace_id, title, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner,"
                " workspace_id = EXCLUDED.workspace_id, title = EXCLUDED.title,"
                " created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at",
                (
                    session.id,
                    session.owner,
                    session.workspace_id,
                    session.title,
                    _utc(session.created_at),
                    _utc(session.updated_at),
                ),
            )
        )

    def get_session(self, session_id: str) -> Session | None:
        row = self._one("SELECT * FROM {t}.sessions WHERE id = %s", (session_id,))
        return _session(row) if row else None

    def list_sessions(self, owner: str, *, limit: int = 20, cursor: str | None = None) -> Page[Session]:
        """Most recently updated first."""
        return self._keyset_page(
            "SELECT * FROM {t}.sessions WHERE owner = %(owner)s"
            " AND (%(cursor_time)s::timestamptz IS NULL OR (updated_at, id) < (%(cursor_time)s, %(cursor_key)s))"
            " ORDER BY updated_at DESC, id DESC LIMIT %(limit)s",
            {"owner": owner},
            listing="sessions",
            cursor=cursor,
            key_kind=str,
            limit=limit,
            order=("updated_at", "id"),
            item=_session,
        )

    def delete_session(self, session_id: str) -> None:
        self._run(
            ("DELETE FROM {t}.messages WHERE session_id = %s", (session_id,)),
            ("DELETE FROM {t}.sessions WHERE id = %s", (session_id,)),
        )

    def add_message(self, message: Message) -> None:
        """Insert, or replace the content of a message with the same id (redelivered work never duplicates)."""
        try:
            citations = Jsonb([asdict(citation) for citation in message.citations])
            self._run(
                (
                    "INSERT INTO {t}.messages (session_id, id, role, content, citations, metadata, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (session_id, id) DO UPDATE SET"
                    " role = EXCLUDED.role, content = EXCLUDED.content, citations = EXCLUDED.citations,"
                    " metadata = EXCLUDED.metadata",
                    (
                        message.session_id,
                        message.id,
                        Role(message.role).value,
                        message.content,
                        citations,
                        Jsonb(message.metadata),
                        _utc(message.created_at),
                    ),
                )
            )
        except (TypeError, ValueError) as exc:  # metadata that JSON cannot hold
            raise InvalidInput(f"message {message.id} cannot be stored: {exc}") from exc

    def add_message_if_new(self, message: Message) -> bool:
        """Insert unless (session, id) is taken: the primary key makes it one conditional write."""
        try:
            inserted = self._run(
                (
                    "INSERT INTO {t}.messages (session_id, id, role, content, citations, metadata, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (session_id, id) DO NOTHING",
                    (
                        message.session_id,
                        message.id,
                        Role(message.role).value,
                        message.content,
                        Jsonb([asdict(citation) for citation in message.citations]),
                        Jsonb(message.metadata),
                        _utc(message.created_at),
                    ),
                )
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"message {message.id} cannot be stored: {exc}") from exc
        return inserted == 1

    def get_message(self, session_id: str, message_id: str) -> Message | None:
        row = self._one("SELECT * FROM {t}.messages WHERE session_id = %s AND id = %s", (session_id, message_id))
        return _message(row) if row else None

    def list_messages(self, session_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        return self._keyset_page(
            "SELECT * FROM {t}.messages WHERE session_id = %(session_id)s"
            " AND (%(cursor_time)s::timestamptz IS NULL OR (created_at, seq) > (%(cursor_time)s, %(cursor_key)s))"
            " ORDER BY created_at, seq LIMIT %(limit)s",
            {"session_id": session_id},
            listing="messages",
            cursor=cursor,
            key_kind=int,
            limit=limit,
            order=("created_at", "seq"),
            item=_message,
        )

    def recent_messages(self, session_id: str, *, limit: int) -> list[Message]:
        check_limit(limit)
        rows = self._all(
            "SELECT * FROM {t}.messages WHERE session_id = %s ORDER BY created_at DESC, seq DESC LIMIT %s",
            (session_id, limit),
        )
        return [_message(row) for row in reversed(rows)]


# --------------------------------------------------------------------------- connections


class SqlConnections(_Tables):
    """Live WebSocket connections; expired rows are invisible and swept on ``add``."""

    def add(
        self, connection_id: str, user: str, *, ttl_seconds: int = 7200, token_expires_at: datetime | None = None
    ) -> None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise InvalidInput("ttl_seconds must be a positive integer")
        now = utcnow()
        token_expiry = None if token_expires_at is None else _utc(token_expires_at)
        self._run(
            ("DELETE FROM {t}.connections WHERE expires_at <= %s", (now,)),
            (
                'INSERT INTO {t}.connections (id, "user", expires_at, token_expires_at) VALUES (%s, %s, %s, %s)'
                ' ON CONFLICT (id) DO UPDATE SET "user" = EXCLUDED."user", expires_at = EXCLUDED.expires_at,'
                " token_expires_at = EXCLUDED.token_expires_at",
                (connection_id, user, now + timedelta(seconds=ttl_seconds), token_expiry),
            ),
        )

    def get(self, connection_id: str) -> ConnectionInfo | None:
        row = self._one(
            'SELECT id, "user", token_expires_at FROM {t}.connections WHERE id = %s AND expires_at > %s',
            (connection_id, utcnow()),
        )
        if row is None:
            return None
        token_expiry = row["token_expires_at"]
        return ConnectionInfo(
            id=row["id"], user=row["user"], token_expires_at=token_expiry.astimezone(UTC) if token_expiry else None
        )

    def remove(self, connection_id: str) -> None:
        self._run(("DELETE FROM {t}.connections WHERE id = %s", (connection_id,)))

    def user_of(self, connection_id: str) -> str | None:
        row = self._one(
            'SELECT "user" FROM {t}.connections WHERE id = %s AND expires_at > %s', (connection_id, utcnow())
        )
        return row["user"] if row else None

    def of_user(self, user: str) -> list[str]:
        rows = self._all(
            'SELECT id FROM {t}.connections WHERE "user" = %s AND expires_at > %s ORDER BY id', (user, utcnow())
        )
        return [row["id"] for row in rows]
