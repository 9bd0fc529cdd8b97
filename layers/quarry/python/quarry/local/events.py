"""API Gateway / SQS / S3 event shapes, built exactly as AWS delivers them to the handlers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

__all__ = ["next_sequencer", "rest_event", "s3_object_created", "sns_envelope", "sqs_event", "ws_event"]


def _request_context(stage: str = "local") -> dict[str, Any]:
    now = time.time()
    return {
        "requestId": str(uuid.uuid4()),
        "stage": stage,
        "requestTimeEpoch": int(now * 1000),
        "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "accountId": "000000000000",
        "apiId": "local",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "quarry-local"},
    }


def rest_event(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: list[tuple[str, str]],
    body: bytes,
    claims: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A REST API (v1) proxy event; the Cognito authorizer's claims where API Gateway puts them."""
    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        single_query[key] = value
        multi_query.setdefault(key, []).append(value)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        import base64

        text, is_base64 = base64.b64encode(body).decode(), True
    context = _request_context()
    context.update({"httpMethod": method, "path": path, "resourcePath": path, "protocol": "HTTP/1.1"})
    if claims is not None:
        context["authorizer"] = {"claims": dict(claims)}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": context,
        "body": text or None,
        "isBase64Encoded": is_base64,
    }


def ws_event(
    route: str,
    connection_id: str,
    *,
    body: str | None = None,
    user: str | None = None,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A WebSocket API event for $connect, $disconnect or $default."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    context = _request_context()
    context.update(
        {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "domainName": "localhost",
            "messageDirection": "IN",
            "connectedAt": int(time.time() * 1000),
        }
    )
    if user is not None:
        context["authorizer"] = {"principalId": user, "user": user}
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if body is not None:
        event["body"] = body
    if query is not None:
        event["queryStringParameters"] = dict(query)
    return event


def ws_authorizer_event(query: Mapping[str, str]) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:local:000000000000:local/local/$connect",
        "queryStringParameters": dict(query),
        "requestContext": {**_request_context(), "routeKey": "$connect", "eventType": "CONNECT"},
    }


def sns_envelope(message: Mapping[str, Any], attributes: Mapping[str, str], topic: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": f"arn:aws:sns:local:000000000000:{topic.replace('.', '-')}",
            "Message": json.dumps(message),
            "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "MessageAttributes": {k: {"Type": "String", "Value": v} for k, v in attributes.items()},
        }
    )


def sqs_event(records: list[tuple[str, str, int]], queue: str) -> dict[str, Any]:
    """``records``: (message id, body, receive count)."""
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": message_id,
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(count), "SentTimestamp": str(int(time.time() * 1000))},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:local:000000000000:{queue}",
                "awsRegion": "local",
            }
            for message_id, body, count in records
        ]
    }


_sequencer_lock = threading.Lock()
_last_sequencer = 0


def next_sequencer() -> str:
    """Like S3's ``sequencer``: hex, greater for every later event (nanoseconds, never repeating or going back)."""
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(time.time_ns(), _last_sequencer + 1)
        return f"{_last_sequencer:016X}"


def s3_object_created(bucket: str, key: str, size: int, etag: str, *, sequencer: str | None = None) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "local",
                "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Post",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": sequencer or next_sequencer(),
                    },
                },
            }
        ]
    }
