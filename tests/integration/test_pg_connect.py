"""Connections: backoff while the server wakes up, pgvector on every connection, Secrets Manager credentials."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import psycopg
import pytest
from botocore.stub import Stubber
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from quarry.adapters.embedded_pg import EmbeddedPostgres
from quarry.adapters.pg import SecretCredentials, connect, create_pool, pool_from_settings, with_retry
from quarry.adapters.retry import RetryPolicy, no_jitter
from quarry.errors import UpstreamError
from quarry.settings import Settings
from tests.conftest import pg_data_dir

pytestmark = pytest.mark.integration

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:quarry-db-AbCdEf"


# --------------------------------------------------------------------------- backoff


def test_with_retry_backs_off_exponentially_then_succeeds() -> None:
    slept: list[float] = []
    failures = iter([psycopg.OperationalError("starting up"), psycopg.OperationalError("still resuming")])

    def flaky() -> str:
        error = next(failures, None)
        if error:
            raise error
        return "connected"

    policy = RetryPolicy(
        attempts=5, base_delay=0.5, multiplier=2.0, max_delay=8.0, jitter=no_jitter, sleep=slept.append
    )
    assert with_retry(flaky, policy=policy) == "connected"
    assert slept == [0.5, 1.0]


def test_with_retry_gives_up_with_the_last_error_and_caps_delays() -> None:
    slept: list[float] = []
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise psycopg.OperationalError(f"attempt {calls}")

    with pytest.raises(psycopg.OperationalError, match="attempt 5"):
        policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=3.0, jitter=no_jitter, sleep=slept.append)
        with_retry(down, policy=policy)
    assert slept == [1.0, 2.0, 3.0, 3.0]


def test_with_retry_does_not_retry_other_errors() -> None:
    slept: list[float] = []

    def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        with_retry(broken, policy=RetryPolicy(sleep=slept.append))
    assert slept == []


@pytest.fixture
def sleeping_server() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A cluster that exists but is stopped, like a paused Aurora Serverless v2 cluster; and its DSN."""
    with pg_data_dir() as data_dir:
        server = EmbeddedPostgres(data_dir)
        dsn = server.start()
        server.stop()
        try:
            yield server, dsn
        finally:
            server.stop(force=True)


def test_connect_waits_for_a_server_that_is_waking_up(sleeping_server: tuple[EmbeddedPostgres, str]) -> None:
    server, dsn = sleeping_server
    waker = threading.Timer(1.0, server.start)
    waker.start()
    started = time.monotonic()
    try:
        conn = connect(dsn, retry=RetryPolicy(attempts=40, base_delay=0.1, max_delay=0.5), connect_timeout=2)
    finally:
        waker.join()
    with conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert time.monotonic() - started >= 0.9


def test_connect_to_a_server_that_stays_down_fails_clearly(sleeping_server: tuple[EmbeddedPostgres, str]) -> None:
    _, dsn = sleeping_server
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="cannot connect"):
        connect(dsn, retry=RetryPolicy(attempts=3, base_delay=0.2, max_delay=0.2, jitter=no_jitter))
    assert time.monotonic() - started >= 0.4  # two waits between three attempts


# --------------------------------------------------------------------------- pgvector on connections


def test_pool_connections_speak_vector(pg_dsn: str) -> None:
    pool = create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT '[1,2,3]'::vector, %s::vector <=> '[1,0,0]'", (np.array([0.0, 1.0, 0.0]),)
            ).fetchone()
        assert row is not None
        assert list(row[0].to_list()) == [1.0, 2.0, 3.0]
        assert row[1] == pytest.approx(1.0)
    finally:
        pool.close()


def test_connect_creates_the_extension_where_missing(embedded_pg: EmbeddedPostgres) -> None:
    name = "t_no_vector_yet"
    with psycopg.connect(embedded_pg.dsn_for("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with connect(embedded_pg.dsn_for(name)) as conn:
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (1,)
    finally:
        embedded_pg.drop_database(name)


def test_pool_from_settings(pg_dsn: str, tmp_path: Path) -> None:
    pool = pool_from_settings(Settings(pg_dsn=pg_dsn, data_dir=tmp_path))
    try:
        with pool.connection() as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("quarry",)
    finally:
        pool.close()
    with pytest.raises(UpstreamError, match="no PostgreSQL DSN"):
        pool_from_settings(Settings(pg_dsn="", data_dir=tmp_path))


# --------------------------------------------------------------------------- Secrets Manager


def _secrets_client() -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _secret_response(secret: dict[str, Any]) -> dict[str, Any]:
    return {"ARN": SECRET_ARN, "Name": "quarry-db", "SecretString": json.dumps(secret)}


def test_pool_takes_credentials_from_the_secret(pg_dsn: str, tmp_path: Path) -> None:
    # The DSN names no user: without the secret's username libpq would log in as the OS user and fail.
    without_user = make_conninfo("", **{k: v for k, v in conninfo_to_dict(pg_dsn).items() if k != "user"})
    client = _secrets_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_secret_value",
            _secret_response(
                {"username": "postgres", "password": "rotated-secret", "engine": "postgres", "port": 5432}
            ),
            {"SecretId": SECRET_ARN},
        )
        settings = Settings(pg_dsn=without_user, pg_secret_arn=SECRET_ARN, data_dir=tmp_path)
        pool = pool_from_settings(settings, secrets_client=client)
        try:
            with pool.connection() as conn:
                assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        finally:
            pool.close()
        stubber.assert_no_pending_responses()  # read once, cached for the pool's other connections


def test_secret_fills_only_what_the_dsn_lacks() -> None:
    client = _secrets_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_secret_value",
            _secret_response({"username": "app", "password": "pw", "host": "db.internal", "port": 6543, "dbname": "x"}),
        )
        credentials = SecretCredentials(SECRET_ARN, client=client, ttl_seconds=60)
        assert credentials() == {"user": "app", "password": "pw", "host": "db.internal", "port": 6543, "dbname": "x"}
        assert credentials()["password"] == "pw"  # cached: one call only
        stubber.assert_no_pending_responses()


def test_secret_is_read_again_after_its_ttl() -> None:
    client = _secrets_client()
    with Stubber(client) as stubber:
        stubber.add_response("get_secret_value", _secret_response({"username": "app", "password": "old"}))
        stubber.add_response("get_secret_value", _secret_response({"username": "app", "password": "new"}))
        credentials = SecretCredentials(SECRET_ARN, client=client, ttl_seconds=0.0)
        assert credentials()["password"] == "old"
        assert credentials()["password"] == "new"


@pytest.mark.parametrize(
    "secret_string",
    ["not json", json.dumps({"username": "app"}), json.dumps(["a", "list"])],
)
def test_malformed_secrets_fail_clearly(secret_string: str) -> None:
    client = _secrets_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_secret_value", {"ARN": SECRET_ARN, "Name": "quarry-db", "SecretString": secret_string}
        )
        with pytest.raises(UpstreamError, match="secret"):
            SecretCredentials(SECRET_ARN, client=client)()


def test_unreadable_secret_fails_clearly() -> None:
    client = _secrets_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("get_secret_value", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(UpstreamError, match="cannot read database credentials"):
            SecretCredentials(SECRET_ARN, client=client)()
