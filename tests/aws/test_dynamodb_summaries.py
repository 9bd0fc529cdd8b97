"""Summary jobs on DynamoDB (moto): the contract, and the layout that keeps large results under 400 KB."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from quarry.adapters.dynamodb import create_tables
from quarry.adapters.dynamodb.summaries import INLINE_RESULT_BYTES, PART_BYTES, DynamoSummaryStore, _Encoded
from quarry.errors import InvalidInput
from quarry.summary_models import SummaryJob, SummaryStatus
from tests.contracts.summary_store_contract import SummaryStoreContract, make_job, make_result
from tests.unit.services.summary_fixtures import batches_at_once

from .conftest import ACCESS_KEY, REGION, SECRET_KEY, TABLE_PREFIX

pytestmark = pytest.mark.aws


@pytest.fixture(scope="module")
def shared_dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
        )
        create_tables(client, TABLE_PREFIX)
        yield client


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """One moto request at a time. DynamoDB applies each request atomically (a conditional put checks and
    writes as one); moto checks, then writes, in Python, so two threads' requests could interleave inside
    it. Serialising whole requests gives the service's guarantee and no more: threads still interleave
    between requests, where a read-change-write can lose an update."""
    lock = threading.Lock()
    process = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_at_a_time)


class TestDynamoSummaryStore(SummaryStoreContract):
    @pytest.fixture
    def summary_store(self, shared_dynamodb: Any, atomic_requests: None) -> DynamoSummaryStore:
        return DynamoSummaryStore(TABLE_PREFIX, client=shared_dynamodb)


def _items(client: Any, job: SummaryJob) -> dict[str, dict[str, Any]]:
    """Every item of the job's workspace partition, by sort key (raw DynamoDB JSON)."""
    response = client.query(
        TableName=f"{TABLE_PREFIX}-catalog",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SUMMARIES#{job.workspace_id}"}},
    )
    return {item["sk"]["S"]: item for item in response["Items"]}


def _size(item: dict[str, Any]) -> int:
    """An upper bound of DynamoDB's item size: names plus values (strings, numbers, binaries)."""
    total = 0
    for name, value in item.items():
        (data,) = value.values()
        total += len(name) + (len(data) if isinstance(data, bytes) else len(str(data).encode()))
    return total


def test_small_results_stay_inline_and_large_ones_go_to_parts(shared_dynamodb: Any) -> None:
    store = DynamoSummaryStore(TABLE_PREFIX, client=shared_dynamodb)
    job = make_job(result=make_result())
    store.put_job(job)
    items = _items(shared_dynamodb, job)
    assert list(items) == [f"JOB#{job.id}"] and "B" in items[f"JOB#{job.id}"]["result"]

    large = replace(job, result=make_result(200, 50))
    assert len(_Encoded(large).parts) >= 2  # about a megabyte of JSON does not fit one item compressed
    store.put_job(large)
    items = _items(shared_dynamodb, job)
    parts = sorted(sk for sk in items if sk.startswith(f"RESULT#{job.id}#"))
    assert len(parts) == len(_Encoded(large).parts) and "result" not in items[f"JOB#{job.id}"]
    assert all(_size(item) < 400 * 1024 for item in items.values())
    assert all(len(items[sk]["data"]["B"]) <= PART_BYTES for sk in parts)

    store.put_job(replace(large, status=SummaryStatus.RUNNING))  # same result: its parts are kept as they are
    assert sorted(sk for sk in _items(shared_dynamodb, job) if sk.startswith("RESULT#")) == parts

    other = replace(large, result=make_result(200, 50, text="the lid squeaks"))
    store.put_job(other)  # new parts in, old parts out, in one transaction
    replaced = sorted(sk for sk in _items(shared_dynamodb, job) if sk.startswith("RESULT#"))
    assert replaced and not set(replaced) & set(parts)
    assert store.get_job(job.workspace_id, job.id) == other

    store.put_job(replace(other, result=None))
    assert list(_items(shared_dynamodb, job)) == [f"JOB#{job.id}"]
    store.put_job(other)
    store.delete_job(job.workspace_id, job.id)
    assert _items(shared_dynamodb, job) == {}


def test_a_writer_that_lost_the_race_for_the_parts_tries_again(shared_dynamodb: Any) -> None:
    """Another writer replaces the parts between this writer's read and its transaction: the condition on
    the parts the job names fails, the writer reads again, and no part is left behind."""
    job = make_job(result=make_result(200, 50))
    rival = DynamoSummaryStore(TABLE_PREFIX, client=shared_dynamodb)
    rival.put_job(job)
    rivals_result = replace(job, result=make_result(200, 50, text="the hinge broke"))

    class Interrupted(DynamoSummaryStore):
        outcomes: list[bool] = []

        def _try_put(
            self, job: SummaryJob, encoded: _Encoded, stored: tuple[str | None, int], expected: str | None
        ) -> bool:
            if not self.outcomes:
                rival.put_job(rivals_result)
            self.outcomes.append(super()._try_put(job, encoded, stored, expected))
            return self.outcomes[-1]

    mine = replace(job, result=make_result(200, 50, text="the keyboard is quiet"))
    store = Interrupted(TABLE_PREFIX, client=shared_dynamodb)
    store.put_job(mine)
    assert store.outcomes == [False, True] and store.get_job(job.workspace_id, job.id) == mine
    parts = [sk for sk in _items(shared_dynamodb, job) if sk.startswith("RESULT#")]
    assert len(parts) == len(_Encoded(mine).parts)


def test_listing_reads_the_parts_of_every_job_in_the_page(shared_dynamodb: Any) -> None:
    store = DynamoSummaryStore(TABLE_PREFIX, client=shared_dynamodb)
    first = make_job(result=make_result(200, 50))
    second = make_job(first.workspace_id, result=make_result(200, 50), created_at=first.created_at.replace(year=2027))
    small = make_job(first.workspace_id, result=make_result(), created_at=first.created_at.replace(year=2025))
    for job in (first, second, small):
        store.put_job(job)
    assert store.list_jobs(first.workspace_id).items == [second, first, small]


def test_a_result_beyond_the_limit_is_invalid_input(shared_dynamodb: Any) -> None:
    store = DynamoSummaryStore(TABLE_PREFIX, client=shared_dynamodb)
    job = make_job(result=make_result(1000, 100))  # 100,000 cited documents: about 4.7 MB compressed
    assert len(_Encoded(replace(job, result=make_result())).item["result"]) <= INLINE_RESULT_BYTES
    with pytest.raises(InvalidInput):
        store.put_job(job)
    assert store.get_job(job.workspace_id, job.id) is None


def test_live_progress_counts_every_batch_when_they_run_at_once(shared_dynamodb: Any, atomic_requests: None) -> None:
    """Several map steps add to one job's progress at the same moment (conditional writes on DynamoDB)."""
    live, final = batches_at_once(DynamoSummaryStore(TABLE_PREFIX, client=shared_dynamodb), batches=8, workers=4)
    assert (live.progress.batches_done, live.progress.documents_read) == (8, 8), live.progress
    assert live.prompt_tokens == final.prompt_tokens > 0  # the spend each batch added, none lost
    assert final.status is SummaryStatus.SUCCEEDED and final.progress == live.progress
