"""HTTP-level doubles for botocore operations that answer with an event stream.

botocore's ``Stubber`` cannot express an event-stream response: it validates the stubbed
dict against the output shape, and a ``stream`` member must then be a dict, never an
iterable of events. So for ``ConverseStream`` and ``InvokeEndpointWithResponseStream`` the
tests answer one level lower: a ``before-send`` hook returns the raw HTTP response AWS would
send, with the body encoded in the AWS event-stream binary framing (prelude, headers, payload,
CRC32s). botocore then does everything it does in production: parses errors from status and
headers, decodes and CRC-checks every event, and raises ``EventStreamError`` for exception
events. Only the network is replaced.
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.awsrequest import AWSResponse

__all__ = ["HttpReplay", "RawBody", "encode_message", "event", "exception_event", "json_error"]


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    # name length (1 byte), name, value type 7 = string, value length (2 bytes), value
    name_part = struct.pack(">B", len(encoded_name)) + encoded_name
    return name_part + b"\x07" + struct.pack(">H", len(encoded_value)) + encoded_value


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message in the ``application/vnd.amazon.eventstream`` framing."""
    header_bytes = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + header_bytes + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any] | bytes) -> bytes:
    """A normal event: a JSON structure, or raw bytes for an ``eventpayload`` blob member."""
    if isinstance(payload, bytes):
        content_type, body = "application/octet-stream", payload
    else:
        content_type, body = "application/json", json.dumps(payload).encode()
    return encode_message(
        {":event-type": event_type, ":content-type": content_type, ":message-type": "event"},
        body,
    )


def exception_event(exception_type: str, message: str, *, key: str = "message", **fields: Any) -> bytes:
    """A modelled exception arriving inside the stream (Bedrock: ``throttlingException`` with
    ``message``; SageMaker: ``ModelStreamError`` with ``Message`` and ``ErrorCode``)."""
    return encode_message(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        json.dumps({key: message, **fields}).encode(),
    )


class RawBody:
    """Stands in for urllib3's response: ``stream()`` hands the body out in small chunks."""

    def __init__(self, data: bytes, chunk_size: int = 7) -> None:
        self._data = data
        self._chunk_size = chunk_size
        self.closed = False

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for start in range(0, len(self._data), self._chunk_size):
            yield self._data[start : start + self._chunk_size]

    def close(self) -> None:
        self.closed = True


def json_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """A REST-JSON error response as AWS sends it."""
    headers = {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/", "content-type": "application/json"}
    return status, headers, json.dumps({"message": message}).encode()


@dataclass
class HttpReplay:
    """Answers one botocore operation from a queue of raw responses and records the requests."""

    responses: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[RawBody] = field(default_factory=list)

    def attach(self, client: Any, operation: str) -> HttpReplay:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}.{operation}", self._send)
        return self

    def stream(self, *messages: bytes) -> HttpReplay:
        headers = {"content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "req-1"}
        self.responses.append((200, headers, b"".join(messages)))
        return self

    def error(self, status: int, code: str, message: str) -> HttpReplay:
        self.responses.append(json_error(status, code, message))
        return self

    def _send(self, request: Any, **kwargs: Any) -> AWSResponse:
        if not self.responses:
            raise AssertionError(f"unexpected request to {request.url}")
        body = request.body or b""
        self.requests.append({"url": request.url, "json": json.loads(body) if body else None})
        status, headers, data = self.responses.pop(0)
        raw = RawBody(data)
        self.bodies.append(raw)
        return AWSResponse(request.url, status, cast(Any, headers), raw)

    def assert_done(self) -> None:
        assert not self.responses, f"{len(self.responses)} responses were never requested"
