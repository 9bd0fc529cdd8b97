"""API Gateway WebSocket management API behind ``ports.Notifier``.

``post_to_connection`` (``delete_connection`` to close) on the stage's callback URL (``Settings.websocket_endpoint``,
``https://{api}.execute-api.{region}.amazonaws.com/{stage}``). A gone connection
gives False and is dropped from the injected ``Connections``; throttling is retried
a few times with a short backoff, then surfaces as ``errors.Throttled``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import error_code
from quarry.adapters.retry import RetryPolicy, no_jitter
from quarry.errors import InvalidInput, PayloadTooLarge, Throttled, UpstreamError
from quarry.ports import Connections

__all__ = ["ApiGatewayNotifier"]

MAX_FRAME_BYTES = 128 * 1024  # API Gateway WebSocket frame limit
_THROTTLING = {"LimitExceededException", "TooManyRequestsException", "ThrottlingException"}
# Tokens are streamed: fail fast rather than hang a chat on a slow callback.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2})


class ApiGatewayNotifier:
    def __init__(
        self,
        endpoint_url: str,
        *,
        connections: Connections | None = None,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
        attempts: int = 4,
        backoff_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not endpoint_url and client is None:
            raise ValueError("ApiGatewayNotifier needs the WebSocket callback endpoint URL")
        self._client = LazyClient(
            "apigatewaymanagementapi",
            client=client,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            config=_CLIENT_CONFIG,
        )
        self._connections = connections
        # Throttled posts: ``attempts`` in all, ``backoff_seconds`` doubling between them.
        self._retry = RetryPolicy(
            attempts=max(1, attempts), base_delay=backoff_seconds, max_delay=math.inf, jitter=no_jitter, sleep=sleep
        )

    def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
        if not connection_id:
            raise InvalidInput("connection id must not be empty")
        data = json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")
        if len(data) > MAX_FRAME_BYTES:
            raise PayloadTooLarge(f"WebSocket message is {len(data)} bytes; the limit is {MAX_FRAME_BYTES}")
        throttled: ClientError | None = None
        for _ in self._retry.tries():
            try:
                self._client().post_to_connection(ConnectionId=connection_id, Data=data)
                return True
            except ClientError as exc:
                code = error_code(exc)
                if code == "GoneException":
                    self._forget(connection_id)
                    return False
                if code not in _THROTTLING:
                    raise UpstreamError(f"post_to_connection failed: {code}") from exc
                throttled = exc
        raise Throttled(f"post_to_connection throttled {self._retry.attempts} times") from throttled

    def close(self, connection_id: str, *, code: int, reason: str) -> None:
        """``DeleteConnection``: API Gateway sends its own close frame (``code``/``reason`` cannot be set)."""
        if not connection_id:
            raise InvalidInput("connection id must not be empty")
        try:
            self._client().delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            code_name = error_code(exc)
            if code_name != "GoneException":
                raise UpstreamError(f"delete_connection failed: {code_name}") from exc
        self._forget(connection_id)

    def _forget(self, connection_id: str) -> None:
        if self._connections is not None:
            self._connections.remove(connection_id)
