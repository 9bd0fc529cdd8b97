"""Fixtures shared by every test tier.

PostgreSQL: ONE embedded server (PostgreSQL 18 + pgvector) for the whole test session, started on
first use under a temporary directory and stopped at the end:

- ``embedded_pg``: the ``EmbeddedPostgres`` handle (create/drop databases with it);
- ``pg_dsn``: DSN of its ``quarry`` database, which has the ``vector`` extension;
- ``pg_database``: a fresh database for the requesting test module, dropped afterwards;
- ``pg_pool``: a psycopg pool on that module database (pgvector types registered).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from quarry.adapters.embedded_pg import EmbeddedPostgres
from quarry.adapters.pg import create_pool
from quarry.models import new_id


@contextlib.contextmanager
def pg_data_dir() -> Iterator[Path]:
    """A scratch directory for a cluster, outside pytest's ``tmp_path``.

    Run as root, the server runs as an unprivileged user that must traverse the path's parents;
    every new pytest session resets ``/tmp/pytest-of-root`` to 0700, which would lock it out.
    """
    path = Path(tempfile.mkdtemp(prefix="quarry-pg-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[EmbeddedPostgres]:
    with pg_data_dir() as data_dir:
        server = EmbeddedPostgres(data_dir)
        server.start()
        try:
            yield server
        finally:
            server.stop(force=True)


@pytest.fixture(scope="session")
def pg_dsn(embedded_pg: EmbeddedPostgres) -> str:
    return embedded_pg.dsn


@pytest.fixture(scope="module")
def pg_database(embedded_pg: EmbeddedPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a database of the module's own (with pgvector), dropped when the module is done."""
    stem = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.rsplit(".", 1)[-1].lower())[:40]
    name = f"t_{stem}_{new_id()[:8]}"
    dsn = embedded_pg.create_database(name)
    try:
        yield dsn
    finally:
        embedded_pg.drop_database(name)


@pytest.fixture(scope="module")
def pg_pool(pg_database: str) -> Iterator[ConnectionPool[psycopg.Connection[Any]]]:
    pool = create_pool(pg_database, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        pool.close()
