"""``DataApiDatabase`` against botocore's Stubber: how scalars become ``SqlParameter``s and ``Field``s
become values, how transactions end, which failures are retried and what each becomes.

The same driver runs on real PostgreSQL behind a Data API emulator in
``tests/integration/test_pg_data_api.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber

from quarry.adapters.aws_errors import client_config
from quarry.adapters.pg_sql import Column, SqlError
from quarry.adapters.rds_data import DataApiDatabase, decode_field, encode_parameter
from quarry.adapters.retry import RetryPolicy
from quarry.errors import DatabaseWaking, UpstreamError

from .conftest import REGION, Sleeps

pytestmark = pytest.mark.aws

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:quarry-aurora"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:quarry-aurora-AbCdEf"
DATABASE = "quarry"
TRANSACTION = "AQoDYXdzEJr1K2FyZ2V0X3RyYW5zYWN0aW9u"
TARGET = {"resourceArn": CLUSTER, "secretArn": SECRET}


@pytest.fixture
def client() -> Any:
    return boto3.client("rds-data", region_name=REGION, config=client_config(read_timeout=70))


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


class Clock:
    """Monotonic seconds that move only when the driver sleeps; records the sleeps."""

    def __init__(self, sleeps: Sleeps) -> None:
        self.now = 1000.0
        self.sleeps = sleeps

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps(seconds)
        self.now += seconds


@pytest.fixture
def clock(sleeps: Sleeps) -> Clock:
    return Clock(sleeps)


@pytest.fixture
def database(client: Any, clock: Clock) -> DataApiDatabase:
    return DataApiDatabase(
        resource_arn=CLUSTER,
        secret_arn=SECRET,
        database=DATABASE,
        client=client,
        retry=RetryPolicy(attempts=3, base_delay=0, sleep=clock.sleep),
        resume_wait_seconds=3.0,
        clock=clock,
    )


def resuming(stub: Stubber, operation: str = "execute_statement", times: int = 1) -> None:
    for _ in range(times):
        stub.add_client_error(
            operation,
            "DatabaseResumingException",
            "The Aurora DB instance db-ABC is resuming after being auto-paused. Please wait a few seconds and retry.",
            http_status_code=400,
        )


def execute(sql: Any = ANY, parameters: Any = ANY, *, transaction: str | None = None) -> dict[str, Any]:
    """The ExecuteStatement request the driver must send."""
    request = {
        **TARGET,
        "database": DATABASE,
        "sql": sql,
        "parameters": parameters,
        "includeResultMetadata": True,
    }
    if transaction is not None:
        request["transactionId"] = transaction
    return request


def rows(columns: list[str], *records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "columnMetadata": [{"name": name, "label": name, "typeName": "text"} for name in columns],
        "records": list(records),
        "numberOfRecordsUpdated": 0,
    }


def begin(stub: Stubber) -> None:
    stub.add_response("begin_transaction", {"transactionId": TRANSACTION}, {**TARGET, "database": DATABASE})


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("resource_arn", "secret_arn", "database_name"),
    [("", SECRET, DATABASE), (CLUSTER, "", DATABASE), (CLUSTER, SECRET, "")],
)
def test_the_cluster_secret_and_database_are_required(resource_arn: str, secret_arn: str, database_name: str) -> None:
    with pytest.raises(UpstreamError, match="cluster ARN"):
        DataApiDatabase(resource_arn=resource_arn, secret_arn=secret_arn, database=database_name)


def test_no_client_is_made_until_the_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a boto3 client was made at construction")

    monkeypatch.setattr(boto3.Session, "client", forbidden)
    DataApiDatabase(resource_arn=CLUSTER, secret_arn=SECRET, database=DATABASE)


# --------------------------------------------------------------------------- parameters and fields


def test_parameters_are_typed_bool_before_int(database: DataApiDatabase, stub: Stubber) -> None:
    parameters = [
        {"name": "flag", "value": {"booleanValue": True}},
        {"name": "n", "value": {"longValue": 3}},
        {"name": "big", "value": {"longValue": 2**40}},
        {"name": "x", "value": {"doubleValue": 1.5}},
        {"name": "s", "value": {"stringValue": "a ' quote"}},
        {"name": "none", "value": {"isNull": True}},
    ]
    statement = "SELECT :flag AS flag, :n + :big AS n, :x AS x, :s AS s, :none::text AS none"
    stub.add_response(
        "execute_statement",
        rows(
            ["flag", "n", "x", "s", "none"],
            [
                {"booleanValue": True},
                {"longValue": 2**40 + 3},
                {"doubleValue": 1.5},
                {"stringValue": "a ' quote"},
                {"isNull": True},
            ],
        ),
        execute(statement, parameters),
    )
    with database.session() as session:
        result = session.query(
            statement, {"flag": True, "n": 3, "big": 2**40, "x": 1.5, "s": "a ' quote", "none": None}
        )
    assert result == [{"flag": True, "n": 2**40 + 3, "x": 1.5, "s": "a ' quote", "none": None}]


def test_a_statement_without_parameters_sends_an_empty_list(database: DataApiDatabase, stub: Stubber) -> None:
    stub.add_response("execute_statement", {"numberOfRecordsUpdated": 0}, execute("VACUUM t", []))
    with database.session() as session:
        assert session.query("VACUUM t") == []


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, b"bytes", (1.0, 2.0)])
def test_only_scalars_can_be_parameters(value: Any) -> None:
    with pytest.raises(TypeError, match="scalars only"):
        encode_parameter("v", value)


def test_encode_parameter_shapes() -> None:
    assert encode_parameter("b", False) == {"name": "b", "value": {"booleanValue": False}}
    assert encode_parameter("i", 0) == {"name": "i", "value": {"longValue": 0}}
    assert encode_parameter("f", 0.0) == {"name": "f", "value": {"doubleValue": 0.0}}
    assert encode_parameter("s", "") == {"name": "s", "value": {"stringValue": ""}}
    assert encode_parameter("n", None) == {"name": "n", "value": {"isNull": True}}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ({"isNull": True}, None),
        ({"booleanValue": False}, False),
        ({"longValue": -7}, -7),
        ({"doubleValue": 0.25}, 0.25),
        ({"stringValue": "2.50"}, "2.50"),
        ({"blobValue": b"\x00\x01"}, b"\x00\x01"),
        ({"arrayValue": {"longValues": [1, 2]}}, [1, 2]),
        ({"arrayValue": {"stringValues": ["a", "b"]}}, ["a", "b"]),
        ({"arrayValue": {"doubleValues": [0.5]}}, [0.5]),
        ({"arrayValue": {"booleanValues": [True, False]}}, [True, False]),
        ({"arrayValue": {"arrayValues": [{"longValues": [1]}, {"longValues": [2, 3]}]}}, [[1], [2, 3]]),
    ],
)
def test_fields_are_decoded(field: dict[str, Any], value: Any) -> None:
    assert decode_field(field) == value


def test_an_unknown_field_kind_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="unknown kind"):
        decode_field({"someFutureValue": 1})


def test_result_columns_are_named_by_label_then_name(database: DataApiDatabase, stub: Stubber) -> None:
    response = {
        "columnMetadata": [{"name": "ordinal", "label": "position"}, {"name": "title"}, {"name": "tags", "label": ""}],
        "records": [
            [{"longValue": 1}, {"stringValue": "One"}, {"arrayValue": {"stringValues": ["a"]}}],
            [{"longValue": 2}, {"isNull": True}, {"arrayValue": {"stringValues": []}}],
        ],
    }
    stub.add_response("execute_statement", response, execute())
    with database.session() as session:
        assert session.query("SELECT ordinal AS position, title, tags FROM t") == [
            {"position": 1, "title": "One", "tags": ["a"]},
            {"position": 2, "title": None, "tags": []},
        ]


# --------------------------------------------------------------------------- transactions


def test_a_transaction_commits_when_its_block_succeeds(database: DataApiDatabase, stub: Stubber) -> None:
    begin(stub)
    stub.add_response(
        "execute_statement", {"numberOfRecordsUpdated": 1}, execute("DELETE FROM t", [], transaction=TRANSACTION)
    )
    stub.add_response(
        "commit_transaction", {"transactionStatus": "Transaction Committed"}, {**TARGET, "transactionId": TRANSACTION}
    )
    with database.transaction() as session:
        session.query("DELETE FROM t")


def test_a_transaction_rolls_back_when_its_block_raises(database: DataApiDatabase, stub: Stubber) -> None:
    begin(stub)
    stub.add_response("execute_statement", {"numberOfRecordsUpdated": 1}, execute(transaction=TRANSACTION))
    stub.add_response(
        "rollback_transaction", {"transactionStatus": "Rollback Complete"}, {**TARGET, "transactionId": TRANSACTION}
    )
    with pytest.raises(ValueError, match="changed my mind"), database.transaction() as session:
        session.query("DELETE FROM t")
        raise ValueError("changed my mind")


def test_the_original_error_wins_over_a_failed_rollback(database: DataApiDatabase, stub: Stubber) -> None:
    begin(stub)
    stub.add_client_error(
        "rollback_transaction", "InternalServerErrorException", "the rollback failed too", http_status_code=500
    )
    with pytest.raises(ValueError, match="the real problem"), database.transaction():
        raise ValueError("the real problem")


def test_a_failed_statement_rolls_the_transaction_back(database: DataApiDatabase, stub: Stubber) -> None:
    begin(stub)
    stub.add_client_error(
        "execute_statement",
        "DatabaseErrorException",
        'ERROR: duplicate key value violates unique constraint "chunks_pkey"; SQLState: 23505',
        http_status_code=400,
    )
    stub.add_response("rollback_transaction", {"transactionStatus": "Rollback Complete"})
    with pytest.raises(SqlError) as raised, database.transaction() as session:
        session.query("INSERT INTO t VALUES (1)")
    assert raised.value.sqlstate == "23505"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("code", ["DatabaseErrorException", "BadRequestException"])
def test_a_rejected_statement_is_an_sql_error_with_its_sqlstate(
    database: DataApiDatabase, stub: Stubber, sleeps: Sleeps, code: str
) -> None:
    message = 'ERROR: relation "ws_x.chunks" does not exist\n  Position: 15; SQLState: 42P01'
    stub.add_client_error("execute_statement", code, message, http_status_code=400)
    with pytest.raises(SqlError) as raised, database.session() as session:
        session.query("SELECT * FROM ws_x.chunks")
    assert raised.value.sqlstate == "42P01"
    assert "does not exist" in str(raised.value)
    assert sleeps == []


def test_a_resuming_cluster_is_polled_until_it_answers(
    database: DataApiDatabase, stub: Stubber, sleeps: Sleeps
) -> None:
    resuming(stub, times=2)
    stub.add_response("execute_statement", rows(["one"], [{"longValue": 1}]), execute("SELECT 1 AS one"))
    with database.session() as session:
        assert session.query("SELECT 1 AS one") == [{"one": 1}]
    assert sleeps == [0.5, 0.5]  # the policy's delay (0 here), but never under half a second while it wakes


def test_a_cluster_still_resuming_when_the_budget_runs_out_is_database_waking(
    database: DataApiDatabase, stub: Stubber, clock: Clock, sleeps: Sleeps
) -> None:
    """3 s of budget, polled every 0.5 s: calls at 0, 0.5 ... 3.0 s, then 503 with a Retry-After. The policy's
    3 attempts bound other failures, not the wait for a resume: the clock does."""
    resuming(stub, times=7)
    started = clock.now
    with pytest.raises(DatabaseWaking) as raised, database.session() as session:
        session.query("SELECT 1 AS one")
    assert clock.now - started == 3.0 and sleeps == [0.5] * 6
    error = raised.value
    assert (error.status, error.code, error.retry_after) == (503, "database_waking", 27)  # ~30 s to resume
    assert error.message == "the database is waking up; retry in 27 s"
    assert isinstance(error, UpstreamError)  # whoever handled upstream failures still does


def test_the_wait_never_passes_the_budget(client: Any, stub: Stubber, clock: Clock, sleeps: Sleeps) -> None:
    """Backoff 1, 2, 4 s (polls are capped at 4 s); the last sleep is cut to end exactly at the budget."""
    database = DataApiDatabase(
        resource_arn=CLUSTER,
        secret_arn=SECRET,
        database=DATABASE,
        client=client,
        retry=RetryPolicy(attempts=2, base_delay=1.0, max_delay=8.0, sleep=clock.sleep, jitter=lambda: 1.0),
        resume_wait_seconds=10.0,
        clock=clock,
    )
    resuming(stub, times=5)
    with pytest.raises(DatabaseWaking, match="retry in 20 s"), database.session() as session:
        session.query("SELECT 1 AS one")
    assert sleeps == [1.0, 2.0, 4.0, 3.0]


def test_a_budget_of_zero_answers_at_once(client: Any, stub: Stubber, clock: Clock, sleeps: Sleeps) -> None:
    database = DataApiDatabase(
        resource_arn=CLUSTER,
        secret_arn=SECRET,
        database=DATABASE,
        client=client,
        resume_wait_seconds=0,
        clock=clock,
        retry=RetryPolicy(sleep=clock.sleep),
    )
    resuming(stub)
    with pytest.raises(DatabaseWaking, match="retry in 30 s"), database.session() as session:
        session.query("SELECT 1 AS one")
    assert sleeps == []


@pytest.mark.parametrize("budget", [-1.0, float("nan"), float("inf")])
def test_the_budget_must_be_a_finite_number_of_seconds(budget: float) -> None:
    with pytest.raises(ValueError, match="resume_wait_seconds"):
        DataApiDatabase(resource_arn=CLUSTER, secret_arn=SECRET, database=DATABASE, resume_wait_seconds=budget)


def test_an_unavailable_writer_is_waited_for_within_the_budget_then_an_upstream_error(
    database: DataApiDatabase, stub: Stubber, sleeps: Sleeps
) -> None:
    """Not a pause (a failover, say): waited for like one, but it is a 502 naming AWS's error."""
    for _ in range(7):
        stub.add_client_error(
            "execute_statement", "DatabaseUnavailableException", "The writer is not available", http_status_code=504
        )
    with pytest.raises(UpstreamError) as raised, database.session() as session:
        session.query("SELECT 1 AS one")
    assert not isinstance(raised.value, DatabaseWaking)
    assert "DatabaseUnavailableException" in raised.value.message and "after 7 attempts" in raised.value.message
    assert sum(sleeps) == 3.0


def test_throttling_is_retried_up_to_the_policy_attempts(
    database: DataApiDatabase, stub: Stubber, sleeps: Sleeps
) -> None:
    for _ in range(3):
        stub.add_client_error("execute_statement", "ThrottlingException", "Rate exceeded", http_status_code=400)
    with pytest.raises(UpstreamError, match="after 3 attempts"), database.session() as session:
        session.query("SELECT 1 AS one")
    assert sleeps == [0, 0]


def test_begin_transaction_waits_for_a_resuming_cluster(
    database: DataApiDatabase, stub: Stubber, sleeps: Sleeps
) -> None:
    resuming(stub, "begin_transaction")
    begin(stub)
    stub.add_response("commit_transaction", {"transactionStatus": "Transaction Committed"})
    with database.transaction():
        pass
    assert sleeps == [0.5]


def test_no_retry_inside_a_transaction(database: DataApiDatabase, stub: Stubber, sleeps: Sleeps) -> None:
    """A statement inside a transaction is never repeated: the transaction may have moved on. The pause
    is still a waking database to the caller (nothing ran; the transaction is rolled back)."""
    begin(stub)
    resuming(stub)
    stub.add_response("rollback_transaction", {"transactionStatus": "Rollback Complete"})
    with pytest.raises(DatabaseWaking), database.transaction() as session:
        session.query("DELETE FROM t")
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("AccessDeniedException", "User: arn:aws:sts::1:assumed-role/fn is not authorized to perform", 403),
        ("HttpEndpointNotEnabledException", "HttpEndpoint is not enabled for cluster quarry-aurora", 400),
        ("ForbiddenException", "Forbidden", 403),
    ],
)
def test_access_and_setup_failures_are_upstream_errors_with_aws_message(
    database: DataApiDatabase, stub: Stubber, sleeps: Sleeps, code: str, message: str, status: int
) -> None:
    stub.add_client_error("execute_statement", code, message, http_status_code=status)
    with pytest.raises(UpstreamError) as raised, database.session() as session:
        session.query("SELECT 1 AS one")
    assert code in str(raised.value) and message in str(raised.value)
    assert sleeps == []


def test_a_response_over_the_limit_says_to_ask_for_less(database: DataApiDatabase, stub: Stubber) -> None:
    stub.add_client_error(
        "execute_statement",
        "BadRequestException",
        "Database returned more than the allowed response size limit",
        http_status_code=400,
    )
    with pytest.raises(UpstreamError, match="1 MiB response limit"), database.session() as session:
        session.query("SELECT * FROM t")


def test_an_unreachable_endpoint_is_retried_then_an_upstream_error(
    database: DataApiDatabase, client: Any, sleeps: Sleeps
) -> None:
    attempts: list[str] = []

    def unreachable(request: Any, **kwargs: Any) -> None:
        attempts.append(request.url)
        raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register("before-send.rds-data", unreachable)
    with pytest.raises(UpstreamError, match="cannot be reached"), database.session() as session:
        session.query("SELECT 1 AS one")
    assert len(attempts) == 3 and len(sleeps) == 2


# --------------------------------------------------------------------------- bulk loads


COLUMNS = (Column("document_id", "text"), Column("ordinal", "int4"), Column("metadata", "jsonb"))
VECTOR_COLUMNS = (*COLUMNS, Column("embedding", "vector"))


class Recorder:
    """Answers every ``rds-data`` call of a client with a success and records its parameters (as sent,
    after botocore validated them): for loads, whose number of INSERTs is the thing under test."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("before-call.rds-data", self._answer)

    def _answer(self, model: Any, params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls.append((model.name, json.loads(params["body"])))  # the serialised request
        parsed = {"transactionId": TRANSACTION} if model.name == "BeginTransaction" else {}
        return AWSResponse("https://rds-data.us-east-1.amazonaws.com", 200, cast(Any, {}), None), parsed

    def executed(self) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == "ExecuteStatement"]


def _rows_parameter(request: dict[str, Any]) -> str:
    (parameter,) = request["parameters"]
    assert parameter["name"] == "rows"
    return str(parameter["value"]["stringValue"])


@pytest.mark.parametrize("max_load_bytes", [333, 500, 1_000])
def test_a_load_is_split_into_inserts_under_the_size_limit(client: Any, max_load_bytes: int) -> None:
    database = DataApiDatabase(
        resource_arn=CLUSTER, secret_arn=SECRET, database=DATABASE, client=client, max_load_bytes=max_load_bytes
    )
    recorder = Recorder(client)
    source = [
        (f"doc-{i}", i, {"page": i, "note": "x" * (i % 7) + '"quoted"'}, [0.5, -1.0, float(i)]) for i in range(12)
    ]

    with database.transaction() as session:
        session.load('"ws_x".chunks', VECTOR_COLUMNS, source)

    assert [name for name, _ in recorder.calls][0 :: len(recorder.calls) - 1] == [
        "BeginTransaction",
        "CommitTransaction",
    ]
    sent = recorder.executed()
    assert 2 <= len(sent) < 12
    loaded = []
    for request in sent:
        assert request["sql"] == (
            'INSERT INTO "ws_x".chunks ("document_id", "ordinal", "metadata", "embedding") '
            'SELECT "document_id", "ordinal", "metadata", "embedding" FROM jsonb_to_recordset(:rows::jsonb) '
            'AS r("document_id" text, "ordinal" int4, "metadata" jsonb, "embedding" vector)'
        )
        assert request["transactionId"] == TRANSACTION
        batch = _rows_parameter(request)
        as_sent = len(json.dumps(batch)) - 2  # inside the request's JSON: quotes and backslashes escaped again
        assert len(batch) <= as_sent <= max_load_bytes
        loaded.extend(json.loads(batch))
    assert loaded == [
        {"document_id": d, "ordinal": o, "metadata": m, "embedding": "[" + ",".join(format(x, ".9g") for x in e) + "]"}
        for d, o, m, e in source
    ]


def test_no_batch_is_over_the_limit_whatever_the_limit(client: Any) -> None:
    """Rows of one size, and every limit from one row to four: the brackets and commas count too."""
    recorder = Recorder(client)
    source = [(f"doc-{i:02}", i % 10, {"page": i % 10}) for i in range(20)]
    record = json.dumps({"document_id": "doc-00", "ordinal": 0, "metadata": {"page": 0}}, separators=(",", ":"))
    row_size = len(json.dumps(record)) - 2  # as it travels: inside the request's JSON
    for max_load_bytes in range(row_size + 2, 4 * row_size + 6):
        recorder.calls.clear()
        database = DataApiDatabase(
            resource_arn=CLUSTER, secret_arn=SECRET, database=DATABASE, client=client, max_load_bytes=max_load_bytes
        )
        with database.session() as session:
            session.load("t", COLUMNS, source)
        batches = [_rows_parameter(request) for request in recorder.executed()]
        assert sum(len(json.loads(batch)) for batch in batches) == len(source)
        sizes = [len(json.dumps(batch)) - 2 for batch in batches]
        assert max(sizes) <= max_load_bytes, f"limit {max_load_bytes}: batches of {sizes} bytes"
        # and tightly packed: one more record would not have fitted
        assert all(size + row_size + 1 > max_load_bytes for size in sizes[:-1])


def test_a_load_of_nothing_sends_nothing(database: DataApiDatabase, client: Any) -> None:
    recorder = Recorder(client)
    with database.session() as session:
        session.load("t", COLUMNS, [])
    assert recorder.calls == []


def test_a_load_refuses_values_json_cannot_carry(database: DataApiDatabase, client: Any) -> None:
    recorder = Recorder(client)
    with pytest.raises(ValueError), database.session() as session:
        session.load("t", COLUMNS, [("d", 0, {"score": float("nan")})])
    assert recorder.calls == []
