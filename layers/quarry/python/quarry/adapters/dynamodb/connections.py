"""``ports.Connections`` on DynamoDB: live WebSocket connections in ``{prefix}-connections``, with a TTL."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from quarry.adapters.dynamodb.codec import attribute_values, epoch_ms, to_item
from quarry.adapters.dynamodb.table import ClockedTable, translated_errors
from quarry.errors import InvalidInput
from quarry.ports import ConnectionInfo

__all__ = ["DynamoConnections"]


class DynamoConnections(ClockedTable):
    """Connection id -> user, with a TTL so abandoned connections age out.

    DynamoDB deletes expired items lazily (within days), so reads also skip
    items whose ``expires_at`` has passed.
    """

    _spec = "connections"

    def add(
        self, connection_id: str, user: str, *, ttl_seconds: int = 7200, token_expires_at: datetime | None = None
    ) -> None:
        if not connection_id or not user:
            raise InvalidInput("connection id and user must not be empty")
        if ttl_seconds < 1:
            raise InvalidInput("ttl_seconds must be positive")
        now = self._clock()
        expires = now + ttl_seconds
        item = {
            "connection_id": connection_id,
            "user_id": user,
            "connected_at": int(now),
            "expires_at": math.ceil(expires),  # the TTL attribute: whole epoch seconds
            "expires_at_ms": int(expires * 1000),  # what reads compare against
            "token_expires_at_ms": None if token_expires_at is None else epoch_ms(token_expires_at),
        }
        with translated_errors("add connection"):
            self._client().put_item(TableName=self.table, Item=to_item(item))

    def remove(self, connection_id: str) -> None:
        if not connection_id:
            return
        with translated_errors("remove connection"):
            self._client().delete_item(TableName=self.table, Key=to_item({"connection_id": connection_id}))

    def get(self, connection_id: str) -> ConnectionInfo | None:
        if not connection_id:
            return None
        item = self._get({"connection_id": connection_id})
        if item is None or "user_id" not in item or self._expired(item):
            return None
        token_ms = item.get("token_expires_at_ms")
        return ConnectionInfo(
            id=connection_id,
            user=str(item["user_id"]),
            token_expires_at=None if token_ms is None else datetime.fromtimestamp(int(token_ms) / 1000, UTC),
        )

    def user_of(self, connection_id: str) -> str | None:
        info = self.get(connection_id)
        return info.user if info else None

    def of_user(self, user: str) -> list[str]:
        items = self._query_all(
            IndexName="by-user",
            KeyConditionExpression="user_id = :user",
            ExpressionAttributeValues=attribute_values(user=user),
        )
        return sorted(str(item["connection_id"]) for item in items if not self._expired(item))

    def _expired(self, item: Mapping[str, Any]) -> bool:
        expires_ms = int(item.get("expires_at_ms", int(item.get("expires_at", 0)) * 1000))
        return expires_ms <= self._clock() * 1000
