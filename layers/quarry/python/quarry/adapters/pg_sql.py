"""SQL as plain text, for any way of reaching PostgreSQL: psycopg over the wire or the RDS Data API over HTTPS.

The pgvector adapter writes each statement once, in the Data API's own dialect, and runs it through a
:class:`SqlDatabase`: ``quarry.adapters.psycopg_database`` (embedded Postgres, Aurora inside the VPC,
the Batch worker) or ``quarry.adapters.rds_data`` (Lambdas outside any VPC). What both can carry:

- **Named parameters** ``:name``; values are scalars only (``str``, ``int``, ``float``, ``bool``, ``None``)
  because the Data API has no array or vector parameters. Lists and objects travel as JSON text
  (``:ids::jsonb``), vectors as pgvector's text form (``:vector::vector``, see :func:`vector_literal`).
- **One statement per call** (the Data API refuses multi-statement strings): scripts are split first
  (:func:`script_statements`).
- **Plain result columns**: text, integers, ``float8``, booleans; ``jsonb`` is selected as ``::text``.
- **Bulk loads** go through :meth:`SqlSession.load`: ``COPY`` with psycopg, ``jsonb_to_recordset`` with
  the Data API.

Errors: a driver raises :class:`SqlError` (with the SQLSTATE when the server gave one) for a statement the
server rejected, and ``quarry.errors.UpstreamError`` when the database cannot be reached at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

__all__ = [
    "Column",
    "Params",
    "Scalar",
    "SqlDatabase",
    "SqlError",
    "SqlSession",
    "quote_ident",
    "read_script",
    "script_statements",
    "to_pyformat",
    "vector_literal",
]

Scalar = str | int | float | bool | None
Params = Mapping[str, Scalar]

# A quoted string or identifier, a `::` cast, a `:name` parameter, or a `%` (which pyformat must double).
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|::|:([A-Za-z_][A-Za-z0-9_]*)|%""")


class SqlError(Exception):
    """The server rejected a statement; ``sqlstate`` is its five-character code when known."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a bulk load: its name and PostgreSQL type (``text``, ``int4``, ``jsonb``, ``vector``)."""

    name: str
    type: str


class SqlSession(Protocol):
    """Statements on one connection: inside a transaction, or each on its own (autocommit)."""

    def query(self, statement: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Run one statement; its rows as dicts keyed by column name (empty when it returns none)."""
        ...

    def load(self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows. Values: ``str``/``int``/``float``/``None``, a JSON-able object for ``jsonb``,
        a 1-d float array for ``vector``."""
        ...


class SqlDatabase(Protocol):
    def transaction(self) -> AbstractContextManager[SqlSession]:
        """All statements of the block commit together, or none does (an exception rolls back)."""
        ...

    def session(self) -> AbstractContextManager[SqlSession]:
        """Each statement commits on its own (single reads, ``VACUUM``)."""
        ...


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (doubled inner quotes), safe for any text."""
    if not name or "\x00" in name:
        raise ValueError("an SQL identifier must be non-empty and without NUL")
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=1024)
def to_pyformat(statement: str) -> str:
    """``:name`` placeholders as psycopg's ``%(name)s`` (and ``%`` doubled); casts and quoted text untouched."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if match.group(1):
            return f"%({match.group(1)})s"
        return "%%" if token == "%" else token

    return _TOKENS.sub(replace, statement)


def vector_literal(values: Sequence[float] | Any) -> str:
    """pgvector's text form ``[x,y,...]``; 9 significant digits round-trip every float32."""
    return "[" + ",".join(format(float(x), ".9g") for x in values) + "]"


def read_script(name: str) -> str:
    """A DDL script of ``quarry/sql`` (the one place schemas are written)."""
    return resources.files("quarry").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def script_statements(name: str, **parts: str) -> list[str]:
    """The script's statements, one per item, with ``{placeholders}`` filled (quote identifiers first!).

    Scripts are ours: statements end with ``;`` at the end of a line, comments are whole ``--`` lines.
    """
    lines = [line for line in read_script(name).splitlines() if not line.lstrip().startswith("--")]
    text = "\n".join(lines).format(**parts)
    return [statement.strip() for statement in re.split(r";\s*$", text, flags=re.MULTILINE) if statement.strip()]
