"""SNS behind ``ports.Bus``, and the parser for SQS records that came from an SNS subscription.

Every message is JSON with String message attributes: ``topic`` (``chat.in``...) plus
whatever the caller adds (``direction`` -> ``in``), encoded and checked by ``bus_messages``
as the local bus does. Subscriptions select with filter policies on those attributes,
e.g. ``{"topic": ["chat.in"], "direction": ["in"]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import error_code
from quarry.adapters.bus_messages import encode_message
from quarry.errors import InvalidInput, Throttled, UpstreamError

__all__ = ["BusRecord", "SnsBus", "parse_bus_record"]

_THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException"}


class SnsBus:
    """Publishes every topic to one SNS topic ARN (or a per-topic ARN from ``topic_arns``)."""

    def __init__(
        self,
        topic_arn: str,
        *,
        topic_arns: Mapping[str, str] | None = None,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
    ) -> None:
        if not topic_arn and not topic_arns:
            raise ValueError("SnsBus needs a topic ARN")
        self._default_arn = topic_arn
        self._topic_arns = dict(topic_arns or {})
        self._client = LazyClient("sns", client=client, session=session, region=region)

    def publish(self, topic: str, message: Mapping[str, Any], *, attributes: Mapping[str, str] | None = None) -> None:
        if not topic:
            raise InvalidInput("topic must not be empty")
        arn = self._topic_arns.get(topic, self._default_arn)
        if not arn:
            raise InvalidInput(f"no SNS topic configured for {topic!r}")
        encoded = encode_message(topic, message, attributes)
        message_attributes = {
            name: {"DataType": "String", "StringValue": value} for name, value in encoded.attributes.items()
        }
        try:
            self._client().publish(TopicArn=arn, Message=encoded.body, MessageAttributes=message_attributes)
        except ClientError as exc:
            code = error_code(exc)
            if code in _THROTTLING:
                raise Throttled("SNS publish throttled") from exc
            raise UpstreamError(f"SNS publish to {topic!r} failed: {code}") from exc


# --------------------------------------------------------------------------- SQS side


@dataclass(frozen=True, slots=True)
class BusRecord:
    """One bus message as a consumer sees it, whichever way SNS delivered it."""

    message_id: str
    topic: str | None
    body: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)


def parse_bus_record(record: Mapping[str, Any]) -> BusRecord:
    """Parse an SQS record (Lambda event shape, or boto3 ``receive_message`` shape).

    With raw message delivery the body is the published JSON and the attributes are
    SQS message attributes; without it the body is SNS's notification envelope
    (``Type: Notification``, ``Message``, ``MessageAttributes``). Anything else
    raises ``InvalidInput`` so a batch handler can report just that record as failed.
    """
    raw_body = record.get("body", record.get("Body"))
    message_id = str(record.get("messageId", record.get("MessageId", "")))
    if not isinstance(raw_body, str):
        raise InvalidInput("SQS record has no body")
    outer = _json_object(raw_body, "SQS body")
    if outer.get("Type") == "Notification" and "Message" in outer and "TopicArn" in outer:
        attributes = {
            name: str(value.get("Value", ""))
            for name, value in (outer.get("MessageAttributes") or {}).items()
            if isinstance(value, Mapping) and value.get("Type") == "String"
        }
        body = _json_object(str(outer["Message"]), "SNS message")
        message_id = str(outer.get("MessageId", message_id))
    else:
        sqs_attributes = record.get("messageAttributes", record.get("MessageAttributes")) or {}
        attributes = {
            name: str(value.get("stringValue", value.get("StringValue", "")))
            for name, value in sqs_attributes.items()
            if isinstance(value, Mapping)
        }
        body = outer
    return BusRecord(message_id=message_id, topic=attributes.get("topic"), body=body, attributes=attributes)


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} is not a JSON object")
    return value
