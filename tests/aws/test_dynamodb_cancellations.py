"""Cancel flags in DynamoDB (moto): the ws_message and chat_worker Lambdas are different processes."""

from __future__ import annotations

from typing import Any

import pytest

from quarry.adapters.dynamodb import DynamoCancellations, DynamoConnections
from tests.contracts.cancellations_contract import CancellationsContract

from .conftest import TABLE_PREFIX

pytestmark = pytest.mark.aws


class TestDynamoCancellations(CancellationsContract):
    @pytest.fixture
    def cancellations(self, dynamodb: Any) -> DynamoCancellations:
        return DynamoCancellations(TABLE_PREFIX, client=dynamodb)


def test_flags_expire_and_never_show_up_as_connections(dynamodb: Any) -> None:
    now = [1_800_000_000.0]
    flags = DynamoCancellations(TABLE_PREFIX, client=dynamodb, clock=lambda: now[0])
    connections = DynamoConnections(TABLE_PREFIX, client=dynamodb)
    flags.cancel("old")
    now[0] += DynamoCancellations.TTL_SECONDS + 1
    assert flags.take("old") is False  # expired flags do not cancel a later answer
    flags.cancel("s")
    connections.add("conn-1", "alice")
    assert connections.of_user("alice") == ["conn-1"]  # the flag has no user_id: the by-user index skips it
