"""An emulator of the RDS Data API (``rds-data``) on a real PostgreSQL server: a test double of AWS.

moto's ``rds-data`` only answers canned results, so this double goes one level lower, like
``botocore_replay``: a ``before-send`` hook on a real boto3 client answers each HTTP request itself.
botocore still serialises and validates every request against the service model, signs it, and
parses every response and error; only the network is replaced. Behind the hook, each call runs on
PostgreSQL through psycopg, the way the Data API runs it on Aurora:

- ``BeginTransaction`` opens a connection of its own for the transaction id; ``ExecuteStatement``
  with that id runs on it; ``CommitTransaction`` / ``RollbackTransaction`` end it. Statements
  without a transaction id run on autocommit connections.
- Parameters are typed as the Data API types them: ``stringValue`` is bound as ``text`` (so a
  missing cast fails as it does on AWS: ``:x::jsonb``), ``longValue`` as ``int8``, ``doubleValue``
  as ``float8``, ``booleanValue`` as ``bool``, ``isNull`` as NULL, ``blobValue`` as ``bytea``;
  ``typeHint`` casts a string (``JSON``, ``UUID``, ``DATE``...). ``arrayValue`` is refused.
- Results are ``Field`` unions (``longValue``, ``doubleValue``, ``stringValue`` for text, numeric,
  json/jsonb and dates, ``arrayValue`` for arrays) with ``columnMetadata``; a column of any other
  type (``vector``, ``void``...) is an ``UnsupportedResultException``.
- AWS's limits are enforced: one statement per call, 4 MiB per request, 1 MiB per response,
  64 KB per row, one statement at a time per transaction.
- A statement PostgreSQL rejects is a ``DatabaseErrorException`` whose message ends
  ``; SQLState: 42P01``; an aborted transaction stays aborted (25P02) until it is rolled back.
- ``pause(calls=N)`` makes the next N calls answer ``DatabaseResumingException``, as Aurora
  Serverless v2 does while it wakes from 0 ACU.

Every call is recorded in ``calls`` (operation, request, body size, error code) so tests can count
round trips.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

import boto3
import botocore.session
import psycopg
from botocore.awsrequest import AWSResponse
from psycopg import pq
from psycopg.conninfo import make_conninfo
from psycopg.types.numeric import Int8Dumper
from psycopg.types.string import StrDumper, TextLoader

from quarry.adapters.pg_sql import to_pyformat

from .botocore_replay import RawBody

__all__ = ["Call", "DataApiEmulator", "DataApiError", "statement_count"]

MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_ROW_BYTES = 64 * 1024
REGION = "us-east-1"

# Result types the Data API carries (arrays of them too); anything else is an UnsupportedResultException.
_SUPPORTED_TYPES = frozenset(
    {
        "bool",
        "int2",
        "int4",
        "int8",
        "oid",
        "float4",
        "float8",
        "numeric",
        "text",
        "varchar",
        "bpchar",
        "char",
        "name",
        "json",
        "jsonb",
        "uuid",
        "date",
        "time",
        "timetz",
        "timestamp",
        "timestamptz",
        "bytea",
    }
)
_TYPE_HINTS = {"JSON": "json", "UUID": "uuid", "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp"}
_MISSING_DATABASE = re.compile(r'database "[^"]*" does not exist')
_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


class DataApiError(Exception):
    """An error the service answers with: its code (``BadRequestException``...), HTTP status and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _bad_request(message: str) -> DataApiError:
    return DataApiError("BadRequestException", message)


@dataclass(frozen=True, slots=True)
class Call:
    """One request the emulator answered: the operation (``ExecuteStatement``), its JSON body, the body's
    size in bytes and the error code it was answered with (None for success)."""

    operation: str
    request: dict[str, Any]
    size: int
    error: str | None = None


# --------------------------------------------------------------------------- SQL text


def statement_count(sql: str) -> int:
    """How many statements ``sql`` holds: ``;`` outside quotes, dollar quotes and comments separates them."""
    count, position, content = 0, 0, False
    while position < len(sql):
        char = sql[position]
        if char in "'\"":
            position = _end_of_quoted(sql, position)
            content = True
            continue
        if sql.startswith("--", position):
            end = sql.find("\n", position)
            position = len(sql) if end < 0 else end + 1
            continue
        if sql.startswith("/*", position):
            end = sql.find("*/", position + 2)
            position = len(sql) if end < 0 else end + 2
            continue
        dollar = _DOLLAR_QUOTE.match(sql, position) if char == "$" else None
        if dollar:
            end = sql.find(dollar.group(0), dollar.end())
            position = len(sql) if end < 0 else end + len(dollar.group(0))
            content = True
            continue
        if char == ";":
            count += content
            content = False
        elif not char.isspace():
            content = True
        position += 1
    return count + content


def _end_of_quoted(sql: str, start: int) -> int:
    """The index after the quoted literal or identifier starting at ``start`` (doubled quotes, E'' escapes)."""
    quote = sql[start]
    escapes = quote == "'" and start > 0 and sql[start - 1] in "eE"
    position = start + 1
    while position < len(sql):
        char = sql[position]
        if escapes and char == "\\":
            position += 2
            continue
        if char == quote:
            if sql.startswith(quote * 2, position):
                position += 2
                continue
            return position + 1
        position += 1
    return len(sql)


# --------------------------------------------------------------------------- parameters


class _Hinted(str):
    """A ``stringValue`` whose ``typeHint`` names its PostgreSQL type."""

    pg_type = "text"


def _hinted_class(pg_type: str) -> type[_Hinted]:
    return cast(type[_Hinted], type(f"Hinted_{pg_type}", (_Hinted,), {"pg_type": pg_type}))


_HINTED = {hint: _hinted_class(pg_type) for hint, pg_type in _TYPE_HINTS.items()}


def _parameter_value(parameter: dict[str, Any]) -> Any:
    value: dict[str, Any] = parameter.get("value", {})
    name = parameter.get("name", "")
    if "arrayValue" in value:
        raise _bad_request(f"Array parameters are not supported (parameter {name!r}).")
    if value.get("isNull"):
        return None
    if "stringValue" in value:
        hint = parameter.get("typeHint")
        if hint == "DECIMAL":
            return Decimal(value["stringValue"])
        return _HINTED[hint](value["stringValue"]) if hint in _HINTED else value["stringValue"]
    if "blobValue" in value:
        return base64.b64decode(value["blobValue"])
    for key in ("booleanValue", "longValue", "doubleValue"):
        if key in value:
            return value[key]
    raise _bad_request(f"Parameter {name!r} has no value.")


def _parameters(request: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for parameter in request.get("parameters", []):
        name = parameter.get("name")
        if not name:
            raise _bad_request("Parameter names must be set.")
        params[name] = _parameter_value(parameter)
    return params


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Bind parameters as the Data API types them, and read json/jsonb as their text."""
    adapters = conn.adapters
    adapters.register_dumper(str, StrDumper)  # text, not "unknown": casts are needed as on AWS
    adapters.register_dumper(int, Int8Dumper)  # longValue is a bigint
    for hinted in _HINTED.values():
        info = adapters.types.get(hinted.pg_type)
        assert info is not None
        dumper = type(f"{hinted.pg_type.title()}HintDumper", (StrDumper,), {"oid": info.oid})
        adapters.register_dumper(hinted, dumper)
    for name in ("json", "jsonb"):
        adapters.register_loader(name, TextLoader)


# --------------------------------------------------------------------------- results


def _field(value: Any) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, list):
        return {"arrayValue": _array(value)}
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return {"stringValue": value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()}
    if isinstance(value, (str, Decimal, uuid.UUID)):
        return {"stringValue": str(value)}
    raise DataApiError("UnsupportedResultException", f"The result contains the unsupported value {value!r}.")


def _array(values: list[Any]) -> dict[str, Any]:
    if any(isinstance(value, list) for value in values):
        return {"arrayValues": [_array(value) for value in values]}
    kinds = {type(value) for value in values if value is not None}
    if kinds <= {bool}:
        return {"booleanValues": values}
    if kinds <= {int}:
        return {"longValues": values}
    if kinds <= {float, int}:
        return {"doubleValues": [None if value is None else float(value) for value in values]}
    return {"stringValues": [None if value is None else _field(value).get("stringValue") for value in values]}


@dataclass
class _Transaction:
    conn: psycopg.Connection[Any]
    busy: threading.Lock = field(default_factory=threading.Lock)


# --------------------------------------------------------------------------- the service


class DataApiEmulator:
    """The Data API for one PostgreSQL server; ``dsn`` names the server (each call's ``database`` is used)."""

    def __init__(
        self,
        dsn: str,
        *,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_row_bytes: int = MAX_ROW_BYTES,
    ) -> None:
        self.dsn = dsn
        self.max_request_bytes = max_request_bytes
        self.max_response_bytes = max_response_bytes
        self.max_row_bytes = max_row_bytes
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._transactions: dict[str, _Transaction] = {}
        self._idle: dict[str | None, list[psycopg.Connection[Any]]] = {}
        self._type_names: dict[tuple[str | None, int], tuple[str, str | None]] = {}
        self._paused = 0
        self._pause_after = 0
        model = botocore.session.get_session().get_service_model("rds-data")
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ExecuteStatement": self._execute,
            "BeginTransaction": self._begin,
            "CommitTransaction": self._commit,
            "RollbackTransaction": self._rollback,
        }
        # The request URI of each operation (ExecuteStatement is `/Execute`) -> (operation, handler).
        self._operations = {
            model.operation_model(name).http["requestUri"]: (name, handler) for name, handler in handlers.items()
        }

    # ------------------------------------------------------------------ wiring

    def attach(self, client: Any) -> Any:
        """Answer every ``rds-data`` request of ``client`` here; returns the client."""
        client.meta.events.register("before-send.rds-data", self._send)
        return client

    def client(self, *, config: Any = None) -> Any:
        """A fresh ``rds-data`` client with dummy credentials, attached to this emulator."""
        session = boto3.session.Session(
            aws_access_key_id="AKIAQUARRYEMULATOR00", aws_secret_access_key="emulated", region_name=REGION
        )
        return self.attach(session.client("rds-data", config=config))

    def pause(self, calls: int, *, after: int = 0) -> None:
        """The cluster is resuming: ``calls`` calls, after the next ``after``, answer ``DatabaseResumingException``."""
        with self._lock:
            self._paused, self._pause_after = calls, after

    def operations(self) -> list[str]:
        """The operations called so far, in order."""
        return [call.operation for call in self.calls]

    @property
    def open_transactions(self) -> int:
        with self._lock:
            return len(self._transactions)

    def close(self) -> None:
        """Roll back the transactions left open and close every connection."""
        with self._lock:
            transactions, self._transactions = list(self._transactions.values()), {}
            idle, self._idle = [conn for conns in self._idle.values() for conn in conns], {}
        for transaction in transactions:
            transaction.conn.rollback()
            transaction.conn.close()
        for conn in idle:
            conn.close()

    def __enter__(self) -> DataApiEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP

    def _send(self, request: Any, **kwargs: Any) -> AWSResponse:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        uri = "/" + urlsplit(request.url).path.rstrip("/").rsplit("/", 1)[-1]
        if uri not in self._operations:
            raise NotImplementedError(f"the Data API emulator does not answer {request.url}")
        payload = json.loads(body) if body else {}
        operation, handler = self._operations[uri]
        try:
            self._before(len(body))
            status, answer = 200, handler(payload)
            data = json.dumps(answer).encode()
            if len(data) > self.max_response_bytes:
                raise _bad_request("Database returned more than the allowed response size limit")
            headers = {"content-type": "application/json"}
            error = None
        except DataApiError as exc:
            status, error = exc.status, exc.code
            headers = {
                "x-amzn-ErrorType": f"{exc.code}:http://internal.amazon.com/",
                "content-type": "application/json",
            }
            data = json.dumps({"message": exc.message}).encode()
        with self._lock:
            self.calls.append(Call(operation, payload, len(body), error))
        headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return AWSResponse(request.url, status, cast(Any, headers), RawBody(data, chunk_size=1 << 16))

    def _before(self, size: int) -> None:
        with self._lock:
            if self._paused and self._pause_after:
                self._pause_after -= 1
            elif self._paused:
                self._paused -= 1
                raise DataApiError(
                    "DatabaseResumingException",
                    "The Aurora DB instance db-emulated is resuming after being auto-paused. "
                    "Please wait a few seconds and try again.",
                )
        if size > self.max_request_bytes:
            raise _bad_request(f"Request size {size} bytes is over the limit of {self.max_request_bytes} bytes.")

    # ------------------------------------------------------------------ connections

    def _connect(self, database: str | None, *, autocommit: bool) -> psycopg.Connection[Any]:
        conninfo = make_conninfo(self.dsn, dbname=database) if database else self.dsn
        try:
            conn = psycopg.connect(conninfo, autocommit=autocommit)
        except psycopg.Error as exc:
            missing = _MISSING_DATABASE.search(str(exc))
            if missing:  # libpq's connection errors carry no SQLSTATE; the Data API's driver reports 3D000
                raise DataApiError("DatabaseErrorException", f"FATAL: {missing.group(0)}; SQLState: 3D000") from exc
            raise DataApiError("DatabaseUnavailableException", "The database is unavailable.", 504) from exc
        _configure(conn)
        return conn

    def _borrow(self, database: str | None) -> psycopg.Connection[Any]:
        with self._lock:
            idle = self._idle.get(database, [])
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    return conn
        return self._connect(database, autocommit=True)

    def _give_back(self, database: str | None, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.close()
            return
        with self._lock:
            self._idle.setdefault(database, []).append(conn)

    def _transaction(self, transaction_id: str) -> _Transaction:
        with self._lock:
            transaction = self._transactions.get(transaction_id)
        if transaction is None:
            raise DataApiError("TransactionNotFoundException", f"Transaction {transaction_id} is not found", 404)
        return transaction

    @contextlib.contextmanager
    def _on(self, request: dict[str, Any]) -> Iterator[psycopg.Connection[Any]]:
        """The connection the request runs on: its transaction's (held exclusively) or an autocommit one."""
        transaction_id = request.get("transactionId")
        if transaction_id is None:
            database = request.get("database")
            conn = self._borrow(database)
            try:
                yield conn
            finally:
                self._give_back(database, conn)
            return
        transaction = self._transaction(transaction_id)
        if not transaction.busy.acquire(blocking=False):
            raise _bad_request(f"Transaction {transaction_id} is already running a statement.")
        try:
            yield transaction.conn
        finally:
            transaction.busy.release()

    # ------------------------------------------------------------------ operations

    def _begin(self, request: dict[str, Any]) -> dict[str, Any]:
        conn = self._connect(request.get("database"), autocommit=False)  # psycopg sends BEGIN with the first statement
        transaction_id = base64.b64encode(secrets.token_bytes(48)).decode()
        with self._lock:
            self._transactions[transaction_id] = _Transaction(conn)
        return {"transactionId": transaction_id}

    def _end(self, request: dict[str, Any]) -> psycopg.Connection[Any]:
        transaction_id = request["transactionId"]
        transaction = self._transaction(transaction_id)
        if not transaction.busy.acquire(blocking=False):
            raise _bad_request(f"Transaction {transaction_id} is already running a statement.")
        with self._lock:
            self._transactions.pop(transaction_id, None)
        return transaction.conn

    def _commit(self, request: dict[str, Any]) -> dict[str, Any]:
        conn = self._end(request)
        try:
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                # PostgreSQL answers COMMIT of a failed transaction with ROLLBACK; the Data API's driver
                # reports that as an error, and the transaction is gone either way.
                conn.rollback()
                raise DataApiError(
                    "DatabaseErrorException",
                    "ERROR: The database returned ROLLBACK, so the transaction cannot be committed; SQLState: 25P02",
                )
            conn.commit()
        except psycopg.Error as exc:
            raise _database_error(exc) from exc
        finally:
            conn.close()
        return {"transactionStatus": "Transaction Committed"}

    def _rollback(self, request: dict[str, Any]) -> dict[str, Any]:
        conn = self._end(request)
        try:
            conn.rollback()
        finally:
            conn.close()
        return {"transactionStatus": "Rollback Complete"}

    def _execute(self, request: dict[str, Any]) -> dict[str, Any]:
        sql = request["sql"]
        if statement_count(sql) > 1:
            raise _bad_request("Multistatements aren't supported.")
        params = _parameters(request)
        with self._on(request) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute(to_pyformat(sql), params)
                rows = cursor.fetchall() if cursor.description else None
            except psycopg.OperationalError as exc:
                raise _database_error(exc) from exc
            except psycopg.Error as exc:
                if exc.sqlstate is None:  # refused before reaching the server: a parameter missing or unbindable
                    raise _bad_request(f"The statement's parameters do not match: {exc}") from exc
                raise _database_error(exc) from exc
            response: dict[str, Any] = {"numberOfRecordsUpdated": 0 if rows is not None else max(cursor.rowcount, 0)}
            if rows is not None and cursor.description is not None:
                columns = [(column.name, column.type_code) for column in cursor.description]
                metadata = bool(request.get("includeResultMetadata"))
                response.update(self._result(request.get("database"), columns, rows, metadata=metadata))
        return response

    def _result(
        self, database: str | None, columns: list[tuple[str, int]], rows: list[Any], *, metadata: bool
    ) -> dict[str, Any]:
        type_names = [self._type_name(database, oid) for _, oid in columns]
        for type_name, element in type_names:
            if (element or type_name) not in _SUPPORTED_TYPES:
                raise DataApiError(
                    "UnsupportedResultException", f"The result contains the unsupported data type {type_name}."
                )
        records = []
        for row in rows:
            record = [_field(value) for value in row]
            if len(json.dumps(record)) > self.max_row_bytes:
                raise _bad_request(f"Database returned a row larger than the {self.max_row_bytes // 1024} KB limit")
            records.append(record)
        result: dict[str, Any] = {"records": records}
        if metadata:
            result["columnMetadata"] = [
                {"name": name, "label": name, "typeName": type_name, "arrayBaseColumnType": 0}
                for (name, _), (type_name, _) in zip(columns, type_names, strict=True)
            ]
        return result

    def _type_name(self, database: str | None, oid: int) -> tuple[str, str | None]:
        """A result type's name, and its element type's name when it is an array (extension types have
        per-database oids)."""
        with self._lock:
            known = self._type_names.get((database, oid))
        if known is not None:
            return known
        conn = self._borrow(database)
        try:
            row = conn.execute(
                "SELECT t.typname, e.typname FROM pg_type t LEFT JOIN pg_type e"
                " ON e.oid = t.typelem AND t.typcategory = 'A' WHERE t.oid = %s",
                [oid],
            ).fetchone()
        finally:
            self._give_back(database, conn)
        name: tuple[str, str | None] = (str(row[0]), row[1]) if row else (f"oid {oid}", None)
        with self._lock:
            self._type_names[database, oid] = name
        return name


def _database_error(exc: psycopg.Error) -> DataApiError:
    """PostgreSQL's error as the Data API words it: ``ERROR: <message>; SQLState: <code>``."""
    if exc.sqlstate is None:
        return DataApiError("DatabaseUnavailableException", f"The database connection failed: {exc}", 504)
    message = exc.diag.message_primary or str(exc)
    position = f"\n  Position: {exc.diag.statement_position}" if exc.diag.statement_position else ""
    severity = exc.diag.severity or "ERROR"
    return DataApiError("DatabaseErrorException", f"{severity}: {message}{position}; SQLState: {exc.sqlstate}")
