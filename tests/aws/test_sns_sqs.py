"""SnsBus on moto: attributes drive subscription filter policies; SQS records parse either way SNS delivers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from quarry.adapters.sns_sqs import SnsBus, parse_bus_record
from quarry.errors import InvalidInput, PayloadTooLarge
from quarry.models import DocumentStatus
from quarry.ports import Bus

pytestmark = pytest.mark.aws


class Wiring:
    """A topic with two queues: chat workers (raw delivery, chat.in + direction in) and an audit queue (envelopes)."""

    def __init__(self, session: boto3.Session) -> None:
        self.sns = session.client("sns")
        self.sqs = session.client("sqs")
        self.topic_arn = self.sns.create_topic(Name="quarry-messages")["TopicArn"]
        self.chat_queue = self._queue("chat-in", raw=True, policy={"topic": ["chat.in"], "direction": ["in"]})
        self.audit_queue = self._queue("audit", raw=False, policy={"topic": [{"prefix": "chat."}]})

    def _queue(self, name: str, *, raw: bool, policy: dict[str, Any]) -> str:
        url: str = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": str(raw).lower(), "FilterPolicy": json.dumps(policy)},
        )
        return url

    def drain(self, url: str) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages


@pytest.fixture
def wiring(session: boto3.Session) -> Wiring:
    return Wiring(session)


@pytest.fixture
def bus(wiring: Wiring) -> SnsBus:
    return SnsBus(wiring.topic_arn, client=wiring.sns)


def test_is_a_bus(bus: SnsBus) -> None:
    assert isinstance(bus, Bus)


def test_filter_policies_route_on_topic_and_direction(bus: SnsBus, wiring: Wiring) -> None:
    job = {"session_id": "s1", "text": "hi", "received_at": datetime(2026, 1, 1, tzinfo=UTC)}
    bus.publish("chat.in", job, attributes={"direction": "in"})
    bus.publish("chat.in", {"session_id": "s2"}, attributes={"direction": "out"})
    bus.publish("document.status", {"status": DocumentStatus.PROCESSED})

    chat = [parse_bus_record(m) for m in wiring.drain(wiring.chat_queue)]
    audit = [parse_bus_record(m) for m in wiring.drain(wiring.audit_queue)]

    assert [r.body for r in chat] == [{"session_id": "s1", "text": "hi", "received_at": "2026-01-01T00:00:00+00:00"}]
    assert chat[0].topic == "chat.in"
    assert chat[0].attributes == {"topic": "chat.in", "direction": "in"}
    assert sorted(r.body["session_id"] for r in audit) == ["s1", "s2"]
    assert {r.topic for r in audit} == {"chat.in"}
    assert all(r.message_id for r in chat + audit)


def test_lambda_shaped_records_parse_too(bus: SnsBus, wiring: Wiring) -> None:
    """The same messages as a Lambda SQS event delivers them (camelCase keys, stringValue)."""
    bus.publish("chat.in", {"n": 1}, attributes={"direction": "in"})
    bus.publish("chat.in", {"n": 2}, attributes={"direction": "in"})
    raw = wiring.drain(wiring.chat_queue)
    envelope = wiring.drain(wiring.audit_queue)

    def as_lambda(message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "messageAttributes": {
                name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "eventSource": "aws:sqs",
        }

    for message in raw + envelope:
        record = parse_bus_record(as_lambda(message))
        assert record.topic == "chat.in"
        assert record.attributes["direction"] == "in"
        assert record.body["n"] in (1, 2)


def test_bad_messages_and_records_are_typed_errors(bus: SnsBus) -> None:
    with pytest.raises(PayloadTooLarge):
        bus.publish("chat.in", {"text": "x" * (256 * 1024)})
    with pytest.raises(InvalidInput):
        bus.publish("chat.in", {"value": object()})
    with pytest.raises(InvalidInput):
        bus.publish("", {})
    with pytest.raises(InvalidInput):
        bus.publish("chat.in", {}, attributes={"direction": ""})
    with pytest.raises(InvalidInput):
        parse_bus_record({"body": "{not json"})
    with pytest.raises(InvalidInput):
        parse_bus_record({"body": "[1, 2]"})
    with pytest.raises(InvalidInput):
        parse_bus_record({})
