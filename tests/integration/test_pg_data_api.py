"""The pgvector index through the RDS Data API driver, on the embedded server behind a Data API emulator.

``tests/aws/rds_data_emulator.py`` answers a real boto3 ``rds-data`` client from PostgreSQL with AWS's
typing, limits and errors, so this is the Lambda's path end to end except for the network: the whole
``VectorIndex`` contract, the round trips each operation costs, the 4 MiB request limit on bulk loads,
rollback on failure, a paused cluster, and identical results to the psycopg driver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import psycopg
import pytest
from botocore.exceptions import ClientError
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from quarry.adapters.aws_errors import RetryPolicy, client_config
from quarry.adapters.pg_sql import SqlError
from quarry.adapters.pgvector import PgVectorIndex
from quarry.adapters.psycopg_database import PsycopgDatabase
from quarry.adapters.rds_data import DataApiDatabase
from quarry.errors import DatabaseWaking, InvalidInput, NotFound, UpstreamError
from quarry.filters import Filter
from quarry.models import Chunk, new_id
from quarry.ports import ScoredChunk
from tests.aws.rds_data_emulator import MAX_REQUEST_BYTES, Call, DataApiEmulator
from tests.contracts.vector_index_contract import FRUIT, VectorIndexContract, ids, make_chunk

pytestmark = pytest.mark.integration

Pool = ConnectionPool[psycopg.Connection[Any]]

CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:quarry-aurora"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:quarry-aurora-AbCdEf"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def emulator(pg_database: str) -> Iterator[DataApiEmulator]:
    with DataApiEmulator(pg_database) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def rds_data_client(emulator: DataApiEmulator) -> Any:
    """One real boto3 client for the module (making one costs ~0.1 s), configured as production's."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_RDS_DATA"):
            env.delenv(name, raising=False)
        return emulator.client(config=client_config(read_timeout=70))


@pytest.fixture(scope="module")
def database_name(pg_database: str) -> str:
    return str(conninfo_to_dict(pg_database)["dbname"])


RESUME_WAIT = 5.0  # the driver's budget for a resuming cluster in these tests (production: 20 s for REST)


class Clock(list[float]):
    """The driver's clock and sleep: records each sleep and moves time by it, without waiting."""

    now = 0.0

    def __call__(self) -> float:
        return self.now

    def append(self, seconds: float) -> None:
        super().append(seconds)
        self.now += seconds


@pytest.fixture
def sleeps() -> Clock:
    return Clock()


@pytest.fixture
def data_api(rds_data_client: Any, database_name: str, sleeps: Clock) -> DataApiDatabase:
    return _data_api(rds_data_client, database_name, sleeps)


def _data_api(client: Any, database_name: str, sleeps: list[float], **options: Any) -> DataApiDatabase:
    clock = sleeps if isinstance(sleeps, Clock) else Clock()
    return DataApiDatabase(
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        database=database_name,
        client=client,
        retry=RetryPolicy(attempts=4, base_delay=0.5, sleep=clock.append),
        resume_wait_seconds=RESUME_WAIT,
        clock=clock,
        **options,
    )


@pytest.fixture
def calls(emulator: DataApiEmulator) -> Iterator[DataApiEmulator]:
    """The emulator with its call log emptied; no transaction may be left open afterwards."""
    emulator.calls.clear()
    emulator.pause(0)
    yield emulator
    emulator.pause(0)
    assert emulator.open_transactions == 0, "a Data API transaction was left open"


@pytest.fixture
def index(data_api: DataApiDatabase, calls: DataApiEmulator) -> PgVectorIndex:
    return PgVectorIndex(data_api)


@pytest.fixture
def workspace(index: PgVectorIndex) -> Iterator[str]:
    workspace_id = f"da{new_id()[:16]}"
    index.ensure_workspace(workspace_id, dimensions=3)
    yield workspace_id
    index.drop_workspace(workspace_id)


@contextlib.contextmanager
def _workspace(index: PgVectorIndex, dimensions: int) -> Iterator[str]:
    workspace_id = f"da{new_id()[:16]}"
    index.ensure_workspace(workspace_id, dimensions=dimensions)
    try:
        yield workspace_id
    finally:
        index.drop_workspace(workspace_id)


def _load_fruit(index: PgVectorIndex, workspace_id: str) -> None:
    for document_id, text in FRUIT.items():
        chunk = make_chunk(workspace_id, document_id, 0, text, metadata={"fields": {"lang": "en"}})
        index.replace_document(workspace_id, document_id, [chunk])


def _executes(calls: Sequence[Call]) -> list[Call]:
    return [call for call in calls if call.operation == "ExecuteStatement"]


def _loads(calls: Sequence[Call]) -> list[Call]:
    return [call for call in _executes(calls) if "jsonb_to_recordset" in call.request["sql"]]


def _one_transaction(calls: Sequence[Call]) -> str:
    """The calls are one transaction, begun and committed; returns its id."""
    operations = [call.operation for call in calls]
    assert operations[0] == "BeginTransaction" and operations[-1] == "CommitTransaction", operations
    assert set(operations[1:-1]) == {"ExecuteStatement"}, operations
    transaction_ids = {call.request.get("transactionId") for call in calls[1:]}
    assert len(transaction_ids) == 1 and None not in transaction_ids
    return str(transaction_ids.pop())


# --------------------------------------------------------------------------- the whole contract


class TestDataApiVectorIndex(VectorIndexContract):
    exact_bm25: ClassVar[bool] = True

    @pytest.fixture
    def index(self, data_api: DataApiDatabase, calls: DataApiEmulator) -> PgVectorIndex:
        return PgVectorIndex(data_api)


# --------------------------------------------------------------------------- round trips


def test_searches_are_one_statement_each_outside_any_transaction(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator
) -> None:
    _load_fruit(index, workspace)

    for search in (
        lambda: index.dense(workspace, [1.0, 0.0, 0.0], k=3),
        lambda: index.dense(workspace, [1.0, 0.0, 0.0], k=3, filters=Filter.parse({"document_id": "d2", "lang": "en"})),
        lambda: index.keyword(workspace, "apple date", k=3),
        lambda: index.keyword(workspace, "apple", k=3, filters=Filter.parse({"document_id": "d2"})),
        lambda: index.count(workspace),
    ):
        calls.calls.clear()
        assert search()  # every one finds something, the filtered ones included
        assert calls.operations() == ["ExecuteStatement"]
        request = calls.calls[0].request
        assert "transactionId" not in request
        assert request["includeResultMetadata"] is True
        assert (request["resourceArn"], request["secretArn"]) == (CLUSTER_ARN, SECRET_ARN)
        assert calls.calls[0].error is None


def test_replace_document_is_one_transaction(index: PgVectorIndex, workspace: str, calls: DataApiEmulator) -> None:
    calls.calls.clear()
    index.replace_document(workspace, "d", [make_chunk(workspace, "d", i, f"apple {i}") for i in range(3)])

    _one_transaction(calls.calls)
    assert len(_loads(calls.calls)) == 1
    assert all(call.error is None for call in calls.calls)
    assert index.count(workspace) == 3


def test_a_large_document_loads_in_several_inserts_under_the_request_limit(
    index: PgVectorIndex, calls: DataApiEmulator
) -> None:
    rng = np.random.default_rng(11)
    embeddings = rng.standard_normal((400, 1024)).astype(np.float32)
    with _workspace(index, 1024) as workspace_id:
        chunks = [
            make_chunk(
                workspace_id,
                "big",
                i,
                f"section {i} of the manual: torque {i * 7} newton metres",
                tuple(float(x) for x in embeddings[i]),
                title="Manual",
                metadata={"page": i // 4},
            )
            for i in range(400)
        ]
        calls.calls.clear()

        index.replace_documents(workspace_id, {"big": chunks})

        _one_transaction(calls.calls)
        loads = _loads(calls.calls)
        assert len(loads) >= 2, "5 MB of rows must be split into several INSERTs"
        assert all(call.size < MAX_REQUEST_BYTES for call in calls.calls)
        assert index.count(workspace_id) == 400
        assert index.count(workspace_id, document_id="big") == 400
        hit = index.dense(workspace_id, embeddings[123].tolist(), k=1)[0]
        assert hit.chunk.id == "big:123"
        assert hit.score == pytest.approx(1.0, abs=1e-6)
        assert hit.chunk.metadata == {"page": 30}
        assert ids(index.keyword(workspace_id, "torque 861", k=1)) == ["big:123"]


@pytest.mark.parametrize(("chunks", "length"), [(40, 130_000), (2, 524_200)])
def test_quote_heavy_text_still_fits_the_request_limit(
    index: PgVectorIndex, calls: DataApiEmulator, chunks: int, length: int
) -> None:
    """A quote or backslash is escaped twice on the way (in the rows' JSON, then in the request's JSON),
    so its bytes double between the batch the driver measures and the request AWS measures."""
    with _workspace(index, 3) as workspace_id:
        text = ('"\\' * length)[:length]
        calls.calls.clear()

        index.replace_documents(
            workspace_id, {"code": [make_chunk(workspace_id, "code", i, text) for i in range(chunks)]}
        )

        assert [call.error for call in calls.calls if call.error] == []
        assert max(call.size for call in calls.calls) < MAX_REQUEST_BYTES
        assert index.count(workspace_id) == chunks


# --------------------------------------------------------------------------- failures roll back


def test_a_database_error_mid_transaction_rolls_everything_back(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator
) -> None:
    index.replace_document(workspace, "a", [make_chunk(workspace, "a", i, "apple") for i in range(2)])
    good = [make_chunk(workspace, "a", 0, "cherry")]
    bad = [make_chunk(workspace, "b", 0, "a NUL \x00 byte PostgreSQL text cannot hold")]
    calls.calls.clear()

    with pytest.raises(InvalidInput, match="rejected the data"):
        index.replace_documents(workspace, {"a": good, "b": bad})

    operations = calls.operations()
    assert operations[0] == "BeginTransaction" and operations[-1] == "RollbackTransaction"
    assert "CommitTransaction" not in operations
    assert [call.error for call in calls.calls if call.error] == ["DatabaseErrorException"]
    assert index.count(workspace) == 2  # the delete of "a" was undone too
    assert sorted(ids(index.keyword(workspace, "apple", k=5))) == ["a:0", "a:1"]
    assert index.keyword(workspace, "cherry", k=5) == []


def test_a_failure_in_a_later_insert_undoes_the_earlier_ones(
    rds_data_client: Any, database_name: str, calls: DataApiEmulator
) -> None:
    index = PgVectorIndex(_data_api(rds_data_client, database_name, [], max_load_bytes=150))  # a row per INSERT
    with _workspace(index, 3) as workspace_id:
        chunks = [make_chunk(workspace_id, "d", i, f"banana {i}") for i in range(5)]
        chunks[3] = Chunk(workspace_id, "d", 3, "span too large", 2**40, 2**40 + 14, embedding=(1.0, 0.0, 0.0))
        calls.calls.clear()

        with pytest.raises(InvalidInput):
            index.replace_document(workspace_id, "d", chunks)

        loads = _loads(calls.calls)
        assert [call.error for call in loads] == [None, None, None, "DatabaseErrorException"]
        assert calls.operations()[-1] == "RollbackTransaction"
        assert index.count(workspace_id) == 0
        assert index.keyword(workspace_id, "banana", k=5) == []


def test_chunks_rejected_before_loading_still_end_the_transaction(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator
) -> None:
    index.replace_document(workspace, "doc", [make_chunk(workspace, "doc", 0, "apple")])
    for chunks in (
        [make_chunk(workspace, "doc", 0, "nan metadata", metadata={"score": math.nan})],
        [make_chunk(workspace, "doc", 0, "wrong size", (1.0, 0.0, 0.0, 0.0))],
    ):
        calls.calls.clear()
        with pytest.raises(InvalidInput):
            index.replace_document(workspace, "doc", chunks)
        assert calls.operations() == ["BeginTransaction", "ExecuteStatement", "RollbackTransaction"]
    assert ids(index.keyword(workspace, "apple", k=5)) == ["doc:0"]


def test_an_aborted_transaction_refuses_further_statements(data_api: DataApiDatabase, calls: DataApiEmulator) -> None:
    errors: list[SqlError] = []
    with pytest.raises(SqlError) as aborted, data_api.transaction() as session:
        try:
            session.query("SELECT * FROM no_such_table_here")
        except SqlError as exc:
            errors.append(exc)
        session.query("SELECT 1 AS one")
    assert errors[0].sqlstate == "42P01"
    assert aborted.value.sqlstate == "25P02"
    assert calls.operations()[-1] == "RollbackTransaction"


def test_a_search_on_a_workspace_never_created_is_not_found(index: PgVectorIndex, calls: DataApiEmulator) -> None:
    missing = f"nx{new_id()[:16]}"
    calls.calls.clear()
    with pytest.raises(NotFound):
        index.dense(missing, [1.0, 0.0, 0.0], k=3)
    with pytest.raises(NotFound):
        index.keyword(missing, "apple", k=3)
    assert calls.operations() == ["ExecuteStatement", "ExecuteStatement"]
    assert [call.error for call in calls.calls] == ["DatabaseErrorException"] * 2


# --------------------------------------------------------------------------- a paused cluster


def test_a_paused_cluster_is_waited_out_on_a_search(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator, sleeps: list[float]
) -> None:
    _load_fruit(index, workspace)
    calls.calls.clear()
    calls.pause(calls=2)

    hits = index.keyword(workspace, "apple", k=5)

    assert ids(hits) == ["d2:0", "d1:0"]
    assert calls.operations() == ["ExecuteStatement"] * 3
    assert [call.error for call in calls.calls] == ["DatabaseResumingException"] * 2 + [None]
    assert len(sleeps) == 2


def test_a_cluster_still_paused_at_the_end_of_the_budget_is_database_waking(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator, sleeps: Clock
) -> None:
    calls.calls.clear()
    calls.pause(calls=100)
    started = sleeps.now
    with pytest.raises(DatabaseWaking) as raised:
        index.dense(workspace, [1.0, 0.0, 0.0], k=3)
    assert sleeps.now - started == pytest.approx(RESUME_WAIT)  # waited the whole budget, not a moment more
    assert all(0.5 <= wait <= 4.0 for wait in sleeps[:-1])  # polled, the last wait cut to the budget
    assert len(calls.calls) == len(sleeps) + 1 > 4  # the budget bounds the wait, not RetryPolicy(attempts=4)
    assert {call.error for call in calls.calls} == {"DatabaseResumingException"}
    assert (raised.value.status, raised.value.code) == (503, "database_waking")
    assert raised.value.retry_after == 25  # a typical resume takes 30 s; 5 have passed
    assert raised.value.message == "the database is waking up; retry in 25 s"
    calls.pause(0)  # the cluster is awake again (for the workspace's teardown)


def test_a_paused_cluster_is_waited_out_before_a_transaction(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator, sleeps: list[float]
) -> None:
    calls.calls.clear()
    calls.pause(calls=2)
    index.replace_document(workspace, "d", [make_chunk(workspace, "d", 0, "apple")])
    assert calls.operations()[:3] == ["BeginTransaction"] * 3
    _one_transaction(calls.calls[2:])
    assert index.count(workspace) == 1


def test_a_pause_inside_a_transaction_is_not_retried(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator, sleeps: list[float]
) -> None:
    index.replace_document(workspace, "d", [make_chunk(workspace, "d", 0, "apple")])
    calls.calls.clear()
    calls.pause(calls=1, after=1)  # BeginTransaction passes, the first statement in it meets the pause

    with pytest.raises(DatabaseWaking):
        index.replace_document(workspace, "d", [make_chunk(workspace, "d", 0, "cherry")])

    assert calls.operations() == ["BeginTransaction", "ExecuteStatement", "RollbackTransaction"]
    assert sleeps == []
    assert ids(index.keyword(workspace, "apple", k=5)) == ["d:0"]


# --------------------------------------------------------------------------- AWS's limits surface clearly


def test_a_result_over_one_mebibyte_is_an_upstream_error_asking_for_fewer(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator
) -> None:
    text = "apple " * 6_000  # 36 KB a chunk, under the 64 KB row limit
    index.replace_documents(workspace, {f"d{i}": [make_chunk(workspace, f"d{i}", 0, text)] for i in range(40)})

    with pytest.raises(UpstreamError, match="1 MiB"):
        index.keyword(workspace, "apple", k=40)
    assert len(index.keyword(workspace, "apple", k=10)) == 10


def test_a_row_over_64_kb_is_an_upstream_error(index: PgVectorIndex, workspace: str) -> None:
    index.replace_document(workspace, "huge", [make_chunk(workspace, "huge", 0, "apple " * 12_000)])
    with pytest.raises(UpstreamError, match="64 KB"):
        index.keyword(workspace, "apple", k=1)


def test_a_request_over_four_mebibytes_is_an_upstream_error(data_api: DataApiDatabase) -> None:
    with pytest.raises(UpstreamError, match="BadRequestException"), data_api.session() as session:
        session.query("SELECT length(:text) AS n", {"text": "x" * MAX_REQUEST_BYTES})


def test_one_statement_per_call(data_api: DataApiDatabase, rds_data_client: Any, database_name: str) -> None:
    with pytest.raises(UpstreamError, match="Multistatements"), data_api.session() as session:
        session.query("SELECT 1 AS a; SELECT 2 AS b")
    with data_api.session() as session:  # semicolons inside literals, comments and dollar quotes are text
        rows = session.query("SELECT ';' AS a, $x$;$x$ AS b -- ; not a second statement\n;")
    assert rows == [{"a": ";", "b": ";"}]
    with pytest.raises(ClientError) as raw:
        rds_data_client.execute_statement(
            resourceArn=CLUSTER_ARN, secretArn=SECRET_ARN, database=database_name, sql="SELECT 1; SELECT 2"
        )
    assert raw.value.response["Error"]["Code"] == "BadRequestException"


def test_parameters_are_typed_as_the_data_api_types_them(data_api: DataApiDatabase) -> None:
    with data_api.session() as session:
        with pytest.raises(SqlError) as untyped:
            session.query("SELECT :n + 1 AS x", {"n": "41"})  # stringValue is text: needs a cast
        assert untyped.value.sqlstate == "42883"
        assert session.query("SELECT :n::int + 1 AS x", {"n": "41"}) == [{"x": 42}]
        assert session.query("SELECT :n + 1 AS x", {"n": 41}) == [{"x": 42}]
        assert session.query("SELECT pg_typeof(:n)::text AS t", {"n": 41}) == [{"t": "bigint"}]
        row = session.query(
            "SELECT :f * 2 AS f, :b AND true AS b, :none::text IS NULL AS none, :j::jsonb ->> 'k' AS j",
            {"f": 1.25, "b": True, "none": None, "j": '{"k": "v"}'},
        )
        assert row == [{"f": 2.5, "b": True, "none": True, "j": "v"}]


def test_results_are_decoded_from_typed_fields(data_api: DataApiDatabase) -> None:
    with data_api.session() as session:
        rows = session.query(
            "SELECT 7::int2 AS small, 2.5::numeric AS exact, 0.1::float8 AS inexact, NULL::int AS nothing,"
            " '{\"k\": [1, 2]}'::jsonb AS doc, ARRAY[1, 2, 3] AS numbers, ARRAY['a', NULL] AS words,"
            " 'x' AS label_not_name"
        )
    assert rows == [
        {
            "small": 7,
            "exact": "2.5",
            "inexact": 0.1,
            "nothing": None,
            "doc": '{"k": [1, 2]}',
            "numbers": [1, 2, 3],
            "words": ["a", None],
            "label_not_name": "x",
        }
    ]


def test_results_of_unsupported_types_are_refused(data_api: DataApiDatabase, calls: DataApiEmulator) -> None:
    with pytest.raises(UpstreamError, match="unsupported data type vector"), data_api.session() as session:
        session.query("SELECT '[1,2,3]'::vector AS v")
    calls.calls.clear()
    with pytest.raises(UpstreamError, match="unsupported data type void"), data_api.transaction() as session:
        session.query("SELECT pg_advisory_xact_lock(42)")
    assert calls.operations() == ["BeginTransaction", "ExecuteStatement", "RollbackTransaction"]


def test_unknown_transaction_ids_are_refused(data_api: DataApiDatabase) -> None:
    with pytest.raises(UpstreamError, match="TransactionNotFoundException"):
        data_api.call("commit_transaction", retry=False, transactionId="no-such-transaction")


def test_one_statement_at_a_time_per_transaction(data_api: DataApiDatabase, pg_database: str) -> None:
    failures: list[BaseException] = []
    with data_api.transaction() as session:

        def slow() -> None:
            try:
                session.query("SELECT pg_sleep(1.5)::text AS slept")
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        worker = threading.Thread(target=slow)
        worker.start()
        _wait_for_query(pg_database, "pg_sleep(1.5)")
        with pytest.raises(UpstreamError, match="already running"):
            session.query("SELECT 1 AS one")
        worker.join()
    assert failures == []


def _wait_for_query(dsn: str, text: str) -> None:
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:  # autocommit: a fresh pg_stat_activity each time
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                [f"%{text}%"],
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    raise AssertionError(f"{text} never started")


def test_optimize_runs_vacuum_outside_a_transaction(
    index: PgVectorIndex, workspace: str, calls: DataApiEmulator
) -> None:
    _load_fruit(index, workspace)
    calls.calls.clear()
    index.optimize(workspace)
    assert calls.operations() == ["ExecuteStatement"] * 3
    assert all("transactionId" not in call.request and call.error is None for call in calls.calls)


# --------------------------------------------------------------------------- same answers as psycopg


def _random_corpus(workspace_id: str) -> dict[str, list[Chunk]]:
    rng = random.Random(5)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    return {
        f"doc{d}": [
            make_chunk(
                workspace_id,
                f"doc{d}",
                o,
                " ".join(rng.choices(words, k=rng.randint(3, 12))),
                (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)),
                metadata={"fields": {"group": rng.choice(["red", "blue", "green"]), "year": rng.choice([2020, 2021])}},
            )
            for o in range(rng.randint(1, 6))
        ]
        for d in range(50)
    }


def _fruit_corpus(workspace_id: str) -> dict[str, list[Chunk]]:
    return {
        document_id: [
            make_chunk(
                workspace_id,
                document_id,
                0,
                text,
                (1.0, float(i), 0.5 * i),
                metadata={"fields": {"group": "odd" if i % 2 else "even"}},
            )
        ]
        for i, (document_id, text) in enumerate(FRUIT.items())
    }


#: The filters each corpus is searched with: user metadata, the system key document_id, and both.
FRUIT_FILTERS = [
    {"group": "odd"},
    {"group": "even"},
    {"document_id": "d3"},
    {"$or": [{"group": "odd"}, {"document_id": "d3"}]},
]
RANDOM_FILTERS = [{"group": "red"}, {"group": "blue", "year": 2021}, {"document_id": "doc3"}, {"document_id": "doc7"}]

#: (ranker, vector or query, index of the filter in the corpus's list or None) -> the hits.
Searches = dict[tuple[str, str, int | None], list[ScoredChunk]]


def _searches(index: PgVectorIndex, workspace_id: str, filters: Sequence[dict[str, Any]]) -> Searches:
    results: Searches = {}
    for vector in ([1.0, 0.0, 0.0], [0.3, -0.7, 0.2], [-0.5, 0.5, 0.9]):
        results["dense", str(vector), None] = index.dense(workspace_id, vector, k=10)
        for i, where in enumerate(filters):
            results["dense", str(vector), i] = index.dense(workspace_id, vector, k=5, filters=Filter.parse(where))
    for query in ("alpha beta", "gamma omega kappa", "apple date", "banana", "theta theta sigma"):
        results["keyword", query, None] = index.keyword(workspace_id, query, k=10)
        for i, where in enumerate(filters):
            results["keyword", query, i] = index.keyword(workspace_id, query, k=10, filters=Filter.parse(where))
    return results


def _assert_filters_select(results: Searches, filters: Sequence[dict[str, Any]]) -> None:
    """Every filter selects something (a dense search finds matching chunks whatever the vector, some query
    finds them by keyword) and nothing it does not match."""
    for i, where in enumerate(filters):
        wanted = Filter.parse(where)
        dense = [hits for (ranker, _, f), hits in results.items() if ranker == "dense" and f == i]
        keyword = [hits for (ranker, _, f), hits in results.items() if ranker == "keyword" and f == i]
        assert dense and all(dense), f"a dense search with {where} found nothing"
        assert any(keyword), f"no keyword search with {where} found anything"
        for hit in (hit for hits in dense + keyword for hit in hits):
            assert wanted.matches_chunk_metadata(hit.chunk.metadata, document_id=hit.chunk.document_id), where


def _assert_same(expected: Searches, actual: Searches) -> None:
    assert expected.keys() == actual.keys()
    for search, want in expected.items():
        got = actual[search]
        assert [hit.chunk for hit in got] == [hit.chunk for hit in want], search
        for a, b in zip(want, got, strict=True):
            assert abs(a.score - b.score) <= 1e-6, search


@pytest.mark.parametrize(
    ("corpus", "filters"),
    [(_fruit_corpus, FRUIT_FILTERS), (_random_corpus, RANDOM_FILTERS)],
    ids=["fruit", "random-3d"],
)
def test_both_drivers_give_the_same_results(
    index: PgVectorIndex, pg_pool: Pool, corpus: Any, filters: list[dict[str, Any]]
) -> None:
    psycopg_index = PgVectorIndex(PsycopgDatabase(pg_pool))
    with _workspace(index, 3) as by_data_api, _workspace(psycopg_index, 3) as by_psycopg:
        index.replace_documents(by_data_api, corpus(by_data_api))
        psycopg_index.replace_documents(by_psycopg, corpus(by_psycopg))
        assert index.count(by_data_api) == psycopg_index.count(by_psycopg) > 0

        reference = _searches(psycopg_index, by_psycopg, filters)
        _assert_filters_select(reference, filters)
        _assert_same(_renamed(reference, by_data_api), _searches(index, by_data_api, filters))
        # and the two drivers read the same workspace identically
        _assert_same(_searches(psycopg_index, by_data_api, filters), _searches(index, by_data_api, filters))


def _renamed(results: Searches, workspace_id: str) -> Searches:
    """The hits as found in another workspace."""
    return {
        search: [
            ScoredChunk(chunk=dataclasses.replace(hit.chunk, workspace_id=workspace_id), score=hit.score)
            for hit in hits
        ]
        for search, hits in results.items()
    }


# --------------------------------------------------------------------------- the emulator answers as AWS does


def _raw(client: Any, database_name: str, operation: str, **request: Any) -> dict[str, Any]:
    method = getattr(client, operation)
    response: dict[str, Any] = method(resourceArn=CLUSTER_ARN, secretArn=SECRET_ARN, **request)
    return response


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_the_emulator_refuses_array_parameters(rds_data_client: Any, database_name: str) -> None:
    code, message = _error(
        lambda: _raw(
            rds_data_client,
            database_name,
            "execute_statement",
            database=database_name,
            sql="SELECT :ids AS ids",
            parameters=[{"name": "ids", "value": {"arrayValue": {"longValues": [1, 2]}}}],
        )
    )
    assert code == "BadRequestException" and "Array parameters" in message


def test_the_emulator_applies_type_hints(rds_data_client: Any, database_name: str) -> None:
    hints = {
        "JSON": '{"a": 1}',
        "UUID": "7d5b8a52-5bd6-4a7e-a9c7-6f1c1b0d1c11",
        "DECIMAL": "2.50",
        "DATE": "2024-02-29",
    }
    response = _raw(
        rds_data_client,
        database_name,
        "execute_statement",
        database=database_name,
        sql="SELECT " + ", ".join(f"pg_typeof(:{hint.lower()})::text AS {hint.lower()}" for hint in hints),
        parameters=[
            {"name": hint.lower(), "value": {"stringValue": value}, "typeHint": hint} for hint, value in hints.items()
        ],
    )
    assert [field["stringValue"] for field in response["records"][0]] == ["json", "uuid", "numeric", "date"]


def test_the_emulator_counts_updates_and_keeps_failed_transactions_failed(
    rds_data_client: Any, database_name: str
) -> None:
    transaction_id = _raw(rds_data_client, database_name, "begin_transaction", database=database_name)["transactionId"]

    def run(sql: str) -> dict[str, Any]:
        return _raw(
            rds_data_client,
            database_name,
            "execute_statement",
            database=database_name,
            sql=sql,
            transactionId=transaction_id,
        )

    run("CREATE TABLE emulated_counts (x int)")
    assert run("INSERT INTO emulated_counts SELECT generate_series(1, 3)")["numberOfRecordsUpdated"] == 3
    code, message = _error(lambda: run("SELECT x / 0 AS y FROM emulated_counts"))
    assert code == "DatabaseErrorException" and message.endswith("; SQLState: 22012")
    code, message = _error(lambda: run("SELECT 1 AS one"))
    assert message.endswith("; SQLState: 25P02")  # aborted until the end of the transaction
    code, message = _error(
        lambda: _raw(rds_data_client, database_name, "commit_transaction", transactionId=transaction_id)
    )
    assert (code, message[-5:]) == ("DatabaseErrorException", "25P02")
    code, _ = _error(lambda: _raw(rds_data_client, database_name, "commit_transaction", transactionId=transaction_id))
    assert code == "TransactionNotFoundException"
    code, message = _error(
        lambda: _raw(
            rds_data_client,
            database_name,
            "execute_statement",
            database=database_name,
            sql="SELECT * FROM emulated_counts",
        )
    )
    assert message.endswith("; SQLState: 42P01")  # the CREATE TABLE was rolled back with the rest


def test_the_emulator_names_a_missing_database(rds_data_client: Any) -> None:
    code, message = _error(
        lambda: _raw(rds_data_client, "", "execute_statement", database="no_such_database", sql="SELECT 1 AS one")
    )
    assert code == "DatabaseErrorException" and message.endswith("; SQLState: 3D000")


def test_closing_the_emulator_rolls_back_open_transactions(pg_database: str, database_name: str) -> None:
    table = f"emulated_{new_id()[:8]}"
    with DataApiEmulator(pg_database) as emulator:
        client = emulator.client()
        transaction_id = _raw(client, database_name, "begin_transaction", database=database_name)["transactionId"]
        _raw(
            client,
            database_name,
            "execute_statement",
            database=database_name,
            sql=f"CREATE TABLE {table} (x int)",
            transactionId=transaction_id,
        )
        assert emulator.open_transactions == 1
    assert emulator.open_transactions == 0
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT to_regclass(%s) IS NULL", [table]).fetchone() == (True,)
