"""The storage contracts, run against the PostgreSQL adapters on the embedded server."""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from quarry.adapters.pgvector import PgVectorIndex
from quarry.adapters.psycopg_database import PsycopgDatabase
from quarry.adapters.sql_catalog import SqlCatalog, SqlChatHistory, SqlConnections
from tests.contracts import CatalogContract, ChatHistoryContract, ConnectionsContract, VectorIndexContract

pytestmark = pytest.mark.integration

Pool = ConnectionPool[psycopg.Connection[Any]]


class TestSqlCatalog(CatalogContract):
    @pytest.fixture
    def catalog(self, pg_pool: Pool) -> SqlCatalog:
        return SqlCatalog(pg_pool)


class TestSqlChatHistory(ChatHistoryContract):
    @pytest.fixture
    def chat_history(self, pg_pool: Pool) -> SqlChatHistory:
        return SqlChatHistory(pg_pool)


class TestSqlConnections(ConnectionsContract):
    @pytest.fixture
    def connections(self, pg_pool: Pool) -> SqlConnections:
        return SqlConnections(pg_pool)


class TestPgVectorIndex(VectorIndexContract):
    exact_bm25: ClassVar[bool] = True

    @pytest.fixture
    def index(self, pg_pool: Pool) -> PgVectorIndex:
        return PgVectorIndex(PsycopgDatabase(pg_pool))
