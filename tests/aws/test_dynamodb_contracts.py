"""The technology-neutral storage contracts (tests/contracts), asserted on DynamoDB in moto.

The contracts isolate every test with fresh random ids, so one moto backend and one
set of tables serve the whole module (much faster than a fresh mock per test).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from quarry.adapters.dynamodb import DynamoCatalog, DynamoChatHistory, DynamoConnections, create_tables
from tests.contracts import CatalogContract, ChatHistoryContract, ConnectionsContract

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


class TestDynamoCatalog(CatalogContract):
    threads_race_for_real = False  # moto checks a condition and writes without a lock; DynamoDB does both atomically

    @pytest.fixture
    def catalog(self, shared_dynamodb: Any) -> DynamoCatalog:
        return DynamoCatalog(TABLE_PREFIX, client=shared_dynamodb)


class TestDynamoChatHistory(ChatHistoryContract):
    @pytest.fixture
    def chat_history(self, shared_dynamodb: Any) -> DynamoChatHistory:
        return DynamoChatHistory(TABLE_PREFIX, client=shared_dynamodb)


class TestDynamoConnections(ConnectionsContract):
    @pytest.fixture
    def connections(self, shared_dynamodb: Any) -> DynamoConnections:
        return DynamoConnections(TABLE_PREFIX, client=shared_dynamodb)
