"""``ports.Cancellations`` on DynamoDB: stop-this-answer flags in the connections table, with a TTL."""

from __future__ import annotations

import math

from quarry.adapters.dynamodb.codec import from_item, to_item
from quarry.adapters.dynamodb.table import ClockedTable, translated_errors
from quarry.errors import InvalidInput

__all__ = ["DynamoCancellations"]


class DynamoCancellations(ClockedTable):
    """Cancel flags as short-lived items in the connections table (``connection_id = cancel#<session>``).

    The item has no ``user_id``, so the by-user index never sees it; the TTL removes forgotten ones.
    ``take`` is one conditional delete: exactly one streamer consumes a flag.
    """

    _spec = "connections"
    TTL_SECONDS = 600

    @staticmethod
    def _key(session_id: str) -> dict[str, str]:
        if not session_id:
            raise InvalidInput("session id must not be empty")
        return {"connection_id": f"cancel#{session_id}"}

    def cancel(self, session_id: str) -> None:
        expires = self._clock() + self.TTL_SECONDS
        item = {**self._key(session_id), "expires_at": math.ceil(expires), "expires_at_ms": int(expires * 1000)}
        with translated_errors("cancel"):
            self._client().put_item(TableName=self.table, Item=to_item(item))

    def take(self, session_id: str) -> bool:
        with translated_errors("take cancel flag"):
            response = self._client().delete_item(
                TableName=self.table, Key=to_item(self._key(session_id)), ReturnValues="ALL_OLD"
            )
        old = response.get("Attributes")
        return bool(old) and int(from_item(old).get("expires_at_ms", 0)) > int(self._clock() * 1000)

    def clear(self, session_id: str) -> None:
        with translated_errors("clear cancel flag"):
            self._client().delete_item(TableName=self.table, Key=to_item(self._key(session_id)))
