"""Usage counters on DynamoDB (moto): the contract, and the layout that makes them cheap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from quarry.adapters.dynamodb import DynamoUsageLedger, create_tables
from quarry.models import UsageScope
from tests.contracts.usage_contract import DAY, UsageLedgerContract, make_entry

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


class TestDynamoUsageLedger(UsageLedgerContract):
    threads_share_the_backend = False  # moto in-process; DynamoDB's ADD is atomic

    @pytest.fixture
    def usage_ledger(self, shared_dynamodb: Any) -> DynamoUsageLedger:
        return DynamoUsageLedger(TABLE_PREFIX, client=shared_dynamodb)


class CallCounter:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, event_name: str, **_: Any) -> None:
        self.calls.append(event_name.rsplit(".", 1)[-1])


def test_counters_are_one_item_per_scope_day_and_model_in_the_chat_table(shared_dynamodb: Any) -> None:
    ledger = DynamoUsageLedger(TABLE_PREFIX, client=shared_dynamodb)
    entry = make_entry("carol", "ws-carol", prompt=7, completion=3, cost=0.25)
    for n in range(3):
        ledger.record(make_entry("carol", "ws-carol", prompt=7, completion=3, cost=0.25) if n else entry)
    item = shared_dynamodb.get_item(
        TableName=f"{TABLE_PREFIX}-chat",
        Key={"pk": {"S": "USAGE#WS#ws-carol"}, "sk": {"S": f"DAY#{DAY}#{entry.model}"}},
    )["Item"]
    assert item["requests"] == {"N": "3"} and item["prompt_tokens"] == {"N": "21"}
    assert item["cost_usd"] == {"N": "0.75"}  # decimal numbers: sums do not drift
    guard = shared_dynamodb.get_item(
        TableName=f"{TABLE_PREFIX}-chat", Key={"pk": {"S": f"USAGE#MSG#{entry.message_id}"}, "sk": {"S": "#USAGE"}}
    )
    assert guard["Item"]["user"] == {"S": "carol"}


def test_recording_is_one_transaction_and_a_view_one_query(shared_dynamodb: Any) -> None:
    ledger = DynamoUsageLedger(TABLE_PREFIX, client=shared_dynamodb)
    counter = CallCounter()
    shared_dynamodb.meta.events.register("before-call.dynamodb", counter)
    try:
        ledger.record(make_entry("dave", "ws-dave"))
        assert counter.calls == ["TransactWriteItems"]
        counter.calls.clear()
        ledger.totals(UsageScope.USER, "dave", since=DAY.replace(day=1), until=DAY.replace(day=28))
        assert counter.calls == ["Query"]
    finally:
        shared_dynamodb.meta.events.unregister("before-call.dynamodb", counter)
