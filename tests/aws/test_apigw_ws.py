"""ApiGatewayNotifier with botocore's Stubber (and once end to end through moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from quarry.adapters.apigw_ws import ApiGatewayNotifier
from quarry.adapters.dynamodb import DynamoConnections
from quarry.errors import InvalidInput, PayloadTooLarge, Throttled, UpstreamError
from quarry.ports import Notifier

from .conftest import REGION, TABLE_PREFIX

pytestmark = pytest.mark.aws

ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
EVENT = {"type": "token", "session_id": "s1", "message_id": "m1", "sequence": 0, "text": "Hel"}


@pytest.fixture
def client() -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name=REGION)


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def connections(dynamodb: Any) -> DynamoConnections:
    store = DynamoConnections(TABLE_PREFIX, client=dynamodb)
    store.add("c1", "alice")
    return store


def _data(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def test_is_a_notifier(client: Any) -> None:
    assert isinstance(ApiGatewayNotifier(ENDPOINT, client=client), Notifier)


def test_send_posts_json_to_the_connection(client: Any, stub: Stubber) -> None:
    stub.add_response("post_to_connection", {}, {"ConnectionId": "c1", "Data": _data(EVENT)})

    assert ApiGatewayNotifier(ENDPOINT, client=client).send("c1", EVENT) is True


def test_gone_connection_returns_false_and_is_forgotten(
    client: Any, stub: Stubber, connections: DynamoConnections
) -> None:
    stub.add_client_error("post_to_connection", service_error_code="GoneException", http_status_code=410)

    assert ApiGatewayNotifier(ENDPOINT, client=client, connections=connections).send("c1", EVENT) is False
    assert connections.user_of("c1") is None
    assert connections.of_user("alice") == []


def test_throttling_is_retried_with_backoff(client: Any, stub: Stubber) -> None:
    for code in ("TooManyRequestsException", "LimitExceededException"):
        stub.add_client_error("post_to_connection", service_error_code=code, http_status_code=429)
    stub.add_response("post_to_connection", {})
    waits: list[float] = []

    notifier = ApiGatewayNotifier(ENDPOINT, client=client, backoff_seconds=0.01, sleep=waits.append)

    assert notifier.send("c1", EVENT) is True
    assert waits == [0.01, 0.02]


def test_throttling_gives_up_with_a_typed_error(client: Any, stub: Stubber) -> None:
    for _ in range(3):
        stub.add_client_error("post_to_connection", service_error_code="TooManyRequestsException", http_status_code=429)
    notifier = ApiGatewayNotifier(ENDPOINT, client=client, attempts=3, sleep=lambda _: None)

    with pytest.raises(Throttled):
        notifier.send("c1", EVENT)


def test_other_failures_and_bad_input(client: Any, stub: Stubber) -> None:
    stub.add_client_error("post_to_connection", service_error_code="ForbiddenException", http_status_code=403)
    notifier = ApiGatewayNotifier(ENDPOINT, client=client)

    with pytest.raises(UpstreamError, match="ForbiddenException"):
        notifier.send("c1", EVENT)
    with pytest.raises(PayloadTooLarge):
        notifier.send("c1", {"text": "x" * 200_000})
    with pytest.raises(InvalidInput):
        notifier.send("", EVENT)


def test_lazily_made_client_uses_the_settings_endpoint(session: boto3.Session) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    notifier = ApiGatewayNotifier(ENDPOINT, session=session)

    assert notifier.send("c9", EVENT) is True
    backend = apigatewaymanagementapi_backends["123456789012"][REGION]
    assert backend.connections["c9"].data == _data(EVENT)
