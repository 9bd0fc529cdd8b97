"""``SqlDatabase`` over a psycopg 3 pool: the embedded server, Aurora from inside the VPC, the Batch worker.

Statements come in the Data API's ``:name`` dialect (``quarry.adapters.pg_sql``) and are rewritten to
psycopg's ``%(name)s`` once each (cached). Bulk loads use binary ``COPY``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from quarry.adapters.pg_sql import Column, Params, SqlError, quote_ident, to_pyformat
from quarry.errors import UpstreamError

__all__ = ["PsycopgDatabase"]

Pool = ConnectionPool[psycopg.Connection[Any]]


class _Session:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def query(self, statement: str, params: Params | None = None) -> list[dict[str, Any]]:
        with _translated_errors():
            cursor = self._conn.cursor(row_factory=dict_row)
            cursor.execute(to_pyformat(statement), params or {})
            return cursor.fetchall() if cursor.description else []

    def load(self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
        names = ", ".join(quote_ident(column.name) for column in columns)
        wrap = [_wrapper(column.type) for column in columns]
        statement = f"COPY {table} ({names}) FROM STDIN WITH (FORMAT BINARY)"
        with _translated_errors(), self._conn.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types([column.type for column in columns])
            for row in rows:
                copy.write_row([convert(value) for convert, value in zip(wrap, row, strict=True)])


def _wrapper(pg_type: str) -> Any:
    if pg_type == "jsonb":
        return Jsonb
    return lambda value: value  # pgvector's dumper takes numpy arrays for `vector`


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        if exc.sqlstate is None or exc.sqlstate.startswith("08"):
            raise UpstreamError(f"the database connection failed: {exc}") from exc
        raise SqlError(str(exc), exc.sqlstate) from exc
    except psycopg.Error as exc:
        raise SqlError(str(exc), exc.sqlstate) from exc


class PsycopgDatabase:
    """Sessions on pooled connections (pgvector's types registered by ``quarry.adapters.pg``)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Session]:
        with self.pool.connection() as conn:  # commits on exit, rolls back on an exception
            yield _Session(conn)

    @contextlib.contextmanager
    def session(self) -> Iterator[_Session]:
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                yield _Session(conn)
            finally:
                conn.autocommit = False
