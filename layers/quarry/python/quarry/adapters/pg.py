"""Connections to PostgreSQL: the embedded server locally, Aurora Serverless v2 (or any Postgres) in AWS.

- ``create_pool`` builds a psycopg 3 ``ConnectionPool`` whose connections know pgvector's types.
- Before the pool opens, ``connect`` reaches the server with retries and exponential backoff (the shared
  ``quarry.adapters.retry.RetryPolicy``): an Aurora Serverless v2 cluster resuming from 0 ACU refuses or
  times out connections for a while.
  That first connection also makes sure the ``vector`` extension exists.
- ``SecretCredentials`` reads user and password from a Secrets Manager secret (the RDS format),
  lazily, cached for a while and re-read once when the server rejects them (rotation).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.pg_sql import read_script
from quarry.adapters.retry import RetryPolicy, no_jitter
from quarry.errors import UpstreamError

if TYPE_CHECKING:
    from quarry.settings import Settings

__all__ = [
    "CONNECT_RETRY",
    "CONNECT_TIMEOUT",
    "NO_RETRY",
    "SecretCredentials",
    "configure_connection",
    "connect",
    "create_pool",
    "ddl",
    "pool_from_settings",
    "with_retry",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")
Credentials = Callable[[], dict[str, Any]]

AUTH_FAILED = ("28P01", "28000")


#: While the server wakes: eight attempts, 0.5, 1, 2, 4 then 8 s apart (no jitter).
CONNECT_RETRY = RetryPolicy(attempts=8, base_delay=0.5, max_delay=8.0, jitter=no_jitter)
NO_RETRY = RetryPolicy(attempts=1)
CONNECT_TIMEOUT = 10  # seconds per connection attempt


def with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    retry_on: tuple[type[Exception], ...] = (psycopg.OperationalError,),
) -> T:
    """Call ``fn`` until it succeeds or the policy is spent (then re-raise the last error), logging each wait."""
    return policy.call(fn, retry_if=lambda exc: isinstance(exc, retry_on), on_retry=_log_wait)


def _log_wait(exc: Exception, delay: float) -> None:
    _log.warning("database not reachable (%s); retrying in %.1fs", exc, delay)


class SecretCredentials:
    """Connection keywords from a Secrets Manager secret ``{"username", "password"[, "host", "port", "dbname"]}``."""

    def __init__(
        self,
        secret_arn: str,
        *,
        client: Any | None = None,
        region: str | None = None,
        ttl_seconds: float = 300.0,
    ) -> None:
        self.secret_arn = secret_arn
        self._client = LazyClient("secretsmanager", client=client, region=region)
        self._ttl = ttl_seconds
        self._cached: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._fetched_at > self._ttl:
                self._cached = self._fetch()
                self._fetched_at = time.monotonic()
            return dict(self._cached)

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _fetch(self) -> dict[str, Any]:
        try:
            response = self._client().get_secret_value(SecretId=self.secret_arn)
            secret = json.loads(response["SecretString"])
        except (KeyError, ValueError) as exc:
            raise UpstreamError(f"secret {self.secret_arn} is not a JSON database secret") from exc
        except Exception as exc:  # botocore's ClientError and friends, without importing botocore here
            raise UpstreamError(f"cannot read database credentials from {self.secret_arn}: {exc}") from exc
        if not isinstance(secret, dict) or "username" not in secret or "password" not in secret:
            raise UpstreamError(f"secret {self.secret_arn} lacks username/password")
        keywords = {"user": secret["username"], "password": secret["password"]}
        keywords |= {key: secret[key] for key in ("host", "port", "dbname") if secret.get(key)}
        return keywords


def ddl(name: str, **parts: sql.Composable) -> sql.Composed:
    """A DDL script of ``quarry/sql`` (the one place schemas are written) with its placeholders filled."""
    return sql.SQL(read_script(name)).format(**parts)  # the file is ours, never user input


def _connect_kwargs(conninfo: str, credentials: Credentials | None) -> Callable[[], dict[str, Any]]:
    """Keywords for each new connection: the secret gives user/password, and host/port/dbname the DSN lacks."""
    explicit = set(conninfo_to_dict(conninfo)) if conninfo else set()

    def kwargs() -> dict[str, Any]:
        if credentials is None:
            return {}
        secret = credentials()
        return {key: value for key, value in secret.items() if key in ("user", "password") or key not in explicit}

    return kwargs


def configure_connection(conn: psycopg.Connection[Any]) -> None:
    """Per-connection setup: pgvector's types (binary ``vector`` dumps and loads)."""
    register_vector(conn)
    if not conn.autocommit:
        conn.commit()  # the pool wants connections back idle


def _is_auth_failure(exc: psycopg.OperationalError) -> bool:
    return exc.sqlstate in AUTH_FAILED or "password authentication failed" in str(exc)


def connect(
    conninfo: str,
    *,
    credentials: Credentials | None = None,
    retry: RetryPolicy = NO_RETRY,
    connect_timeout: int = CONNECT_TIMEOUT,
    create_extension: bool = True,
    autocommit: bool = False,
) -> psycopg.Connection[Any]:
    """One connection, with backoff while the server wakes up; pgvector registered on it."""
    kwargs = _connect_kwargs(conninfo, credentials)

    def attempt() -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(conninfo, connect_timeout=connect_timeout, autocommit=True, **kwargs())
        except psycopg.OperationalError as exc:
            if not _is_auth_failure(exc):
                raise
            if isinstance(credentials, SecretCredentials):  # maybe rotated: read the secret again, once
                credentials.invalidate()
                return psycopg.connect(conninfo, connect_timeout=connect_timeout, autocommit=True, **kwargs())
            raise

    try:
        conn = with_retry(attempt, policy=retry)
    except psycopg.OperationalError as exc:
        if _is_auth_failure(exc):
            raise UpstreamError(f"the database rejected the credentials: {exc}") from exc
        raise UpstreamError(f"cannot connect to the database: {exc}") from exc
    if create_extension and conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # a racing process may win
    configure_connection(conn)
    conn.autocommit = autocommit
    return conn


def create_pool(
    conninfo: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    credentials: Credentials | None = None,
    retry: RetryPolicy = CONNECT_RETRY,
    connect_timeout: int = CONNECT_TIMEOUT,
    name: str = "quarry",
    timeout: float = 30.0,
    extra_kwargs: Mapping[str, Any] | None = None,
) -> ConnectionPool[psycopg.Connection[Any]]:
    """An open pool; waits (with backoff) until the database answers and has pgvector."""
    connect(conninfo, credentials=credentials, retry=retry, connect_timeout=connect_timeout).close()
    per_connection = _connect_kwargs(conninfo, credentials)
    extra = dict(extra_kwargs or {})

    def kwargs() -> dict[str, Any]:
        return {"connect_timeout": connect_timeout, **extra, **per_connection()}

    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        conninfo,
        kwargs=kwargs,
        min_size=min_size,
        max_size=max(max_size, min_size),
        configure=configure_connection,
        name=name,
        timeout=timeout,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except PoolTimeout as exc:
        pool.close()
        raise UpstreamError(f"database pool {name!r} could not open: {exc}") from exc
    return pool


def pool_from_settings(
    settings: Settings,
    *,
    dsn: str | None = None,
    secrets_client: Any | None = None,
    retry: RetryPolicy = CONNECT_RETRY,
) -> ConnectionPool[psycopg.Connection[Any]]:
    """The pool for ``settings.pg_dsn`` (or ``dsn``, e.g. the embedded server's), with the secret when set."""
    conninfo = dsn if dsn is not None else settings.pg_dsn
    if not conninfo:
        raise UpstreamError("no PostgreSQL DSN: set QUARRY_PG_DSN or start the embedded server")
    credentials = (
        SecretCredentials(settings.pg_secret_arn, client=secrets_client, region=settings.aws_region)
        if settings.pg_secret_arn
        else None
    )
    return create_pool(conninfo, max_size=settings.pg_pool_max, credentials=credentials, retry=retry)
