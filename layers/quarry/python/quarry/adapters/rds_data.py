"""``SqlDatabase`` over the RDS Data API: SQL over HTTPS to Aurora, so Lambdas need no VPC (and no NAT).

Statements are written once in ``quarry.adapters.pg_sql``'s dialect, which is the Data API's own
(``:name`` parameters). What this module adds:

- **Parameters**: scalars become typed ``SqlParameter`` values (``stringValue``, ``longValue``...).
- **Results**: ``includeResultMetadata`` gives the column names; typed ``Field`` values are decoded.
- **Transactions**: ``BeginTransaction`` / ``CommitTransaction``, and ``RollbackTransaction`` when the
  block raises (a transaction the Data API does not hear from for 3 minutes is rolled back anyway).
- **Bulk loads**: one ``INSERT ... SELECT FROM jsonb_to_recordset(:rows::jsonb)`` per batch of rows,
  batches kept well under the 4 MiB request limit.
- **A paused cluster**: Aurora Serverless v2 at 0 ACU answers ``DatabaseResumingException`` while it
  wakes (15-30 s); calls that are not inside a transaction are retried meanwhile, polling every 0.5-4 s,
  for at most ``resume_wait_seconds`` (the setting ``pg_resume_wait_seconds``). When that budget runs out
  (or the pause is met inside a transaction) the call raises ``DatabaseWaking`` (503, ``Retry-After``):
  the REST function's budget must end well before API Gateway's 29 s integration timeout, so the caller
  hears "retry in N s" instead of a gateway timeout. Other transient failures are retried up to the
  ``RetryPolicy``'s attempts, never past the same budget.
- **Errors**: a statement the database rejects arrives as ``DatabaseErrorException`` (or
  ``BadRequestException``) whose message ends ``; SQLState: 42P01``; it becomes ``SqlError`` with that
  code. Everything else (access, secret, endpoint not enabled, timeouts, the 1 MiB response limit)
  becomes ``UpstreamError`` with AWS's message.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import Failure, classify, client_config, error_code
from quarry.adapters.pg_sql import Column, Params, Scalar, SqlError, quote_ident, vector_literal
from quarry.adapters.retry import RetryPolicy
from quarry.errors import DatabaseWaking, UpstreamError

__all__ = ["DEFAULT_RESUME_WAIT_SECONDS", "DataApiDatabase", "decode_field", "encode_parameter"]

# The database rejected the statement: the message carries PostgreSQL's text and SQLSTATE.
_STATEMENT_ERRORS = frozenset({"DatabaseErrorException", "BadRequestException"})
# The cluster is waking from 0 ACU, or briefly unreachable: worth waiting for.
_WAKING = frozenset({"DatabaseResumingException", "DatabaseUnavailableException", "ServiceUnavailableError"})
_SQLSTATE = re.compile(r"SQLState:\s*([0-9A-Z]{5})")
_RESPONSE_TOO_LARGE = re.compile(r"response size", re.IGNORECASE)  # "...more than the allowed response size limit"

MAX_LOAD_BYTES = 2 * 1024 * 1024  # per INSERT; the Data API refuses requests over 4 MiB

# How long one call waits for a resuming cluster; well under API Gateway's 29 s integration timeout.
DEFAULT_RESUME_WAIT_SECONDS = 20.0
_RESUMING = "DatabaseResumingException"
_RESUME_POLL = (0.5, 4.0)  # seconds between calls while the cluster resumes: backoff, clamped to this range
_RESUME_TYPICAL_SECONDS = 30  # Serverless v2 resumes from 0 ACU in 15-30 s; Retry-After is what is left of it
_MIN_RETRY_AFTER = 2


def encode_parameter(name: str, value: Scalar) -> dict[str, Any]:
    """One ``SqlParameter``. ``bool`` before ``int``: ``True`` is an ``int`` in Python."""
    if value is None:
        field: dict[str, Any] = {"isNull": True}
    elif isinstance(value, bool):
        field = {"booleanValue": value}
    elif isinstance(value, int):
        field = {"longValue": value}
    elif isinstance(value, float):
        field = {"doubleValue": value}
    elif isinstance(value, str):
        field = {"stringValue": value}
    else:
        raise TypeError(f"parameter {name!r}: the Data API takes scalars only, not {type(value).__name__}")
    return {"name": name, "value": field}


def decode_field(field: dict[str, Any]) -> Any:
    """A ``Field`` of a result record as a Python value."""
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue", "blobValue"):
        if key in field:
            return field[key]
    if "arrayValue" in field:
        return _decode_array(field["arrayValue"])
    raise UpstreamError(f"the Data API returned a value of an unknown kind: {sorted(field)}")


def _decode_array(array: dict[str, Any]) -> list[Any]:
    if "arrayValues" in array:
        return [_decode_array(item) for item in array["arrayValues"]]
    for key in ("stringValues", "longValues", "doubleValues", "booleanValues"):
        if key in array:
            return list(array[key])
    return []


class _Session:
    def __init__(self, database: DataApiDatabase, transaction_id: str | None) -> None:
        self._database = database
        self._transaction_id = transaction_id

    def query(self, statement: str, params: Params | None = None) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "sql": statement,
            "parameters": [encode_parameter(name, value) for name, value in (params or {}).items()],
            "includeResultMetadata": True,
        }
        if self._transaction_id is not None:
            request["transactionId"] = self._transaction_id
        response = self._database.call("execute_statement", retry=self._transaction_id is None, **request)
        columns = [column.get("label") or column.get("name") for column in response.get("columnMetadata", [])]
        return [
            dict(zip(columns, (decode_field(field) for field in record), strict=True))
            for record in response.get("records", [])
        ]

    def load(self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
        names = ", ".join(quote_ident(column.name) for column in columns)
        record_type = ", ".join(f"{quote_ident(column.name)} {column.type}" for column in columns)
        statement = (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM jsonb_to_recordset(:rows::jsonb) AS r({record_type})"
        )
        for batch in _batches([_record(columns, row) for row in rows], self._database.max_load_bytes):
            self.query(statement, {"rows": "[" + ",".join(batch) + "]"})


def _record(columns: Sequence[Column], row: Sequence[Any]) -> str:
    values = {
        column.name: vector_literal(value) if column.type == "vector" else value
        for column, value in zip(columns, row, strict=True)
    }
    return json.dumps(values, allow_nan=False, separators=(",", ":"))


def _batches(records: list[str], max_bytes: int) -> Iterator[list[str]]:
    """Records for JSON arrays of at most ``max_bytes`` as sent: the array travels as a JSON string in the
    request, so a record counts with its quotes and backslashes escaped once more (up to twice its length)."""
    batch: list[str] = []
    size = 1  # the closing bracket
    for record in records:
        cost = len(json.dumps(record)) - 1  # escaped, without its quotes, plus the comma or opening bracket
        if batch and size + cost > max_bytes:
            yield batch
            batch, size = [], 1
        batch.append(record)
        size += cost
    if batch:
        yield batch


class DataApiDatabase:
    """Aurora PostgreSQL through ``rds-data``: ``resource_arn`` (the cluster), ``secret_arn``, ``database``."""

    def __init__(
        self,
        *,
        resource_arn: str,
        secret_arn: str,
        database: str,
        client: Any | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
        max_load_bytes: int = MAX_LOAD_BYTES,
        resume_wait_seconds: float = DEFAULT_RESUME_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``resume_wait_seconds`` bounds the waiting of one call (for a resuming cluster and for retries);
        ``clock`` measures it (seconds, monotonic) and ``retry.sleep`` waits: tests pass both."""
        if not resource_arn or not secret_arn or not database:
            raise UpstreamError("the RDS Data API needs the cluster ARN, the secret ARN and the database name")
        if not math.isfinite(resume_wait_seconds) or resume_wait_seconds < 0:
            raise ValueError("resume_wait_seconds must be a finite number of seconds, at least 0")
        self.resource_arn = resource_arn
        self.secret_arn = secret_arn
        self.database = database
        self.max_load_bytes = max_load_bytes
        self.resume_wait_seconds = resume_wait_seconds
        self._clock = clock
        self._client = LazyClient("rds-data", client=client, region=region, config=client_config(read_timeout=70))
        # Transient failures (throttling, connections): 8 attempts, never past resume_wait_seconds.
        self._retry = retry or RetryPolicy(attempts=8, base_delay=1.0, max_delay=8.0)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Session]:
        transaction_id = self.call("begin_transaction", retry=True, database=self.database)["transactionId"]
        try:
            yield _Session(self, transaction_id)
        except BaseException:
            with contextlib.suppress(Exception):  # the original error matters more than a failed rollback
                self.call("rollback_transaction", retry=False, transactionId=transaction_id)
            raise
        self.call("commit_transaction", retry=False, transactionId=transaction_id)

    @contextlib.contextmanager
    def session(self) -> Iterator[_Session]:
        yield _Session(self, None)

    def call(self, operation: str, *, retry: bool, **request: Any) -> dict[str, Any]:
        """One Data API call with the cluster and secret filled in; errors as ``SqlError``/``UpstreamError``.

        With ``retry``, a resuming cluster is polled until it answers or ``resume_wait_seconds`` have passed
        (then ``DatabaseWaking``); other transient failures are retried up to the policy's attempts within
        the same time. Without ``retry`` (inside a transaction) a failure is final at once.
        """
        if operation == "execute_statement":
            request.setdefault("database", self.database)
        started = self._clock()
        deadline = started + self.resume_wait_seconds
        max_attempts = self._retry.attempts if self._retry.attempts is not None else math.inf
        attempt = 0
        while True:
            attempt += 1
            try:
                method = getattr(self._client(), operation)
                response: dict[str, Any] = method(resourceArn=self.resource_arn, secretArn=self.secret_arn, **request)
                return response
            except ClientError as exc:
                code = error_code(exc)
                message = str(exc.response.get("Error", {}).get("Message") or code)
                if code in _STATEMENT_ERRORS and (sqlstate := _SQLSTATE.search(message)):
                    raise SqlError(message, sqlstate.group(1)) from exc
                waking = code in _WAKING
                if not (waking or classify(exc).retryable):
                    raise _upstream(code, message, attempt) from exc
                remaining = deadline - self._clock()
                if not retry or remaining <= 0 or (not waking and attempt >= max_attempts):
                    if code == _RESUMING:
                        raise DatabaseWaking(_retry_after(self._clock() - started)) from exc
                    raise _upstream(code, message, attempt) from exc
            except BotoCoreError as exc:
                waking = False
                remaining = deadline - self._clock()
                if classify(exc) is not Failure.TRANSIENT or not retry or remaining <= 0 or attempt >= max_attempts:
                    raise UpstreamError(f"the RDS Data API cannot be reached: {exc}") from exc
            delay = self._retry.delay(attempt - 1)
            if waking:
                delay = min(max(delay, _RESUME_POLL[0]), _RESUME_POLL[1])
            self._retry.sleep(min(delay, remaining))


def _retry_after(waited: float) -> int:
    """Whole seconds until a cluster that has been resuming for ``waited`` seconds is likely up."""
    return max(_MIN_RETRY_AFTER, math.ceil(_RESUME_TYPICAL_SECONDS - waited))


def _upstream(code: str, message: str, attempts: int) -> UpstreamError:
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    if code in _STATEMENT_ERRORS and _RESPONSE_TOO_LARGE.search(message):
        return UpstreamError(
            f"the result exceeds the RDS Data API's 1 MiB response limit; ask for fewer results ({message})"
        )
    return UpstreamError(f"the RDS Data API failed{tried} ({code}: {message})")
