"""The embedded PostgreSQL lifecycle: start, reuse, reference counting, races, clear failures.

Each test runs its own cluster in its own directory (the session server is left alone).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from quarry.adapters.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from quarry.settings import Settings
from tests.conftest import pg_data_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with pg_data_dir() as path:
        yield path


def _query(dsn: str, query: str) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]


def test_start_creates_a_cluster_with_pgvector_and_stop_shuts_it_down(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir / "pg")
    with server:
        assert server.is_running()
        assert _query(server.dsn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'") >= "0.8"  # type: ignore[operator]
        assert str(_query(server.dsn, "SHOW server_version")).startswith("18")
        assert _query(server.dsn, "SELECT current_database()") == "quarry"
        # Unicode-aware analysis whatever the host locale is
        assert _query(server.dsn, "SELECT to_tsvector('english', 'ÜBER Café')::text") == "'café':2 'über':1"
    assert not server.is_running()
    assert not server.started


def test_restart_reuses_the_cluster_and_its_data(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir / "pg") as first, psycopg.connect(first.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    with EmbeddedPostgres(data_dir / "pg") as second:
        assert _query(second.dsn, "SELECT v FROM kept") == "still here"


def test_a_second_start_on_a_running_server_joins_it(data_dir: Path) -> None:
    first = EmbeddedPostgres(data_dir / "pg")
    second = EmbeddedPostgres(data_dir / "pg")
    first.start()
    try:
        pid = _query(first.dsn, "SELECT pg_backend_pid()")
        assert second.start() == first.dsn
        assert pid != _query(second.dsn, "SELECT pg_backend_pid()")  # same server, new backend

        assert first.stop() is False  # the other handle still uses it
        assert second.is_running()
        assert _query(second.dsn, "SELECT 1") == 1
    finally:
        assert second.stop() is True
        first.stop()  # already released: a no-op
    assert not second.is_running()


def test_start_twice_on_one_object_is_harmless(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir / "pg")
    try:
        assert server.start() == server.start()
    finally:
        assert server.stop() is True
        assert server.stop() is False


def test_handles_of_dead_processes_do_not_keep_the_server_up(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir / "pg")
    server.start()
    handles = data_dir / "pg" / "handles.json"
    live = json.loads(handles.read_text())
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    handles.write_text(json.dumps([*live, {"pid": int(dead_pid.stdout), "token": "crashed-cli"}]))
    assert server.stop() is True
    assert not server.is_running()


RACER = textwrap.dedent(
    """
    import sys, time, psycopg
    from quarry.adapters.embedded_pg import EmbeddedPostgres
    server = EmbeddedPostgres(sys.argv[1])
    with psycopg.connect(server.start()) as conn:
        print(conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0], flush=True)
    time.sleep(3)  # hold the handle while the other racer joins
    server.stop()
    """
)


def test_two_processes_racing_to_start_share_one_server(data_dir: Path) -> None:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(data_dir / "pg")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [racer.communicate(timeout=120) for racer in racers]

    assert [racer.returncode for racer in racers] == [0, 0], [err for _, err in outputs]
    started = [out.strip() for out, _ in outputs]
    assert started[0] == started[1]  # the very same postmaster
    assert not EmbeddedPostgres(data_dir / "pg").is_running()  # the last one out stopped it


def test_tcp_listening_on_a_free_local_port(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir / "pg", listen="tcp") as server:
        assert "host=127.0.0.1" in server.dsn
        assert _query(server.dsn, "SELECT 1") == 1


def test_extra_databases_get_pgvector_and_can_be_dropped(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir / "pg") as server:
        dsn = server.create_database("tenant_two")
        assert server.create_database("tenant_two") == dsn  # idempotent
        assert _query(dsn, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1
        server.drop_database("tenant_two")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn).close()
        with pytest.raises(EmbeddedPostgresError):
            server.drop_database("postgres")


def test_a_directory_that_is_not_a_cluster_fails_clearly(data_dir: Path) -> None:
    pgdata = data_dir / "pg" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedPostgresError, match="not a PostgreSQL cluster"):
        EmbeddedPostgres(data_dir / "pg").start()


def test_a_cluster_of_another_major_version_fails_clearly(data_dir: Path) -> None:
    pgdata = data_dir / "pg" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("16\n")
    with pytest.raises(EmbeddedPostgresError, match="PostgreSQL 16 cluster"):
        EmbeddedPostgres(data_dir / "pg").start()


def test_dsn_before_start_fails_clearly(data_dir: Path) -> None:
    with pytest.raises(EmbeddedPostgresError, match="not started"):
        _ = EmbeddedPostgres(data_dir / "pg").dsn


def test_built_from_settings(data_dir: Path) -> None:
    server = EmbeddedPostgres.from_settings(Settings(data_dir=data_dir))
    assert server.root == (data_dir / "postgres").resolve()
