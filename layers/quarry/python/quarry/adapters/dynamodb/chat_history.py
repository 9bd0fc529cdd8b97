"""``ports.ChatHistory`` on DynamoDB: sessions and messages in ``{prefix}-chat`` (layout: ``tables``).

One item per message, sorted by time inside the session's partition; citations and metadata are stored
as JSON strings, so floats and arbitrary nesting round-trip exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from quarry.adapters.dynamodb.codec import Item, attribute_values, from_item, parse_timestamp, timestamp, to_item
from quarry.adapters.dynamodb.table import (
    CHECK_FAILED,
    OPTIMISTIC_ATTEMPTS,
    Table,
    cancellation_codes,
    translated_errors,
)
from quarry.adapters.paging import check_limit
from quarry.errors import Throttled, UpstreamError
from quarry.models import Citation, Message, Role, Session
from quarry.ports import Page

__all__ = ["DynamoChatHistory"]

_META = "#META"


def _session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def _session_item(session: Session) -> Item:
    updated = timestamp(session.updated_at)
    return {
        "pk": _session_pk(session.id),
        "sk": _META,
        "kind": "session",
        "gsi1pk": f"OWNER#{session.owner}",
        "gsi1sk": f"{updated}#{session.id}",
        "id": session.id,
        "owner": session.owner,
        "workspace_id": session.workspace_id,
        "title": session.title,
        "created_at": timestamp(session.created_at),
        "updated_at": updated,
    }


def _session_of(item: Mapping[str, Any]) -> Session:
    return Session(
        id=item["id"],
        owner=item["owner"],
        workspace_id=item.get("workspace_id"),
        title=item["title"],
        created_at=parse_timestamp(item["created_at"]),
        updated_at=parse_timestamp(item["updated_at"]),
    )


def _message_item(message: Message) -> Item:
    created = timestamp(message.created_at)
    return {
        "pk": _session_pk(message.session_id),
        "sk": f"MSG#{created}#{message.id}",
        "lsi1sk": f"MSGID#{message.id}",
        "kind": "message",
        "session_id": message.session_id,
        "id": message.id,
        "role": message.role.value,
        "content": message.content,
        "citations": json.dumps([asdict(citation) for citation in message.citations]),
        "metadata": json.dumps(message.metadata, sort_keys=True),
        "created_at": created,
    }


def _message_of(item: Mapping[str, Any]) -> Message:
    return Message(
        session_id=item["session_id"],
        id=item["id"],
        role=Role(item["role"]),
        content=item["content"],
        citations=tuple(Citation(**citation) for citation in json.loads(item.get("citations", "[]"))),
        created_at=parse_timestamp(item["created_at"]),
        metadata=json.loads(item.get("metadata", "{}")),
    )


class DynamoChatHistory(Table):
    """Sessions and messages; one item per message, sorted by time inside the session's partition."""

    _spec = "chat"

    def put_session(self, session: Session) -> None:
        with translated_errors("put_session"):
            self._client().put_item(TableName=self.table, Item=to_item(_session_item(session)))

    def get_session(self, session_id: str) -> Session | None:
        item = self._get({"pk": _session_pk(session_id), "sk": _META})
        return _session_of(item) if item else None

    def list_sessions(self, owner: str, *, limit: int = 20, cursor: str | None = None) -> Page[Session]:
        """Most recently updated first."""
        pk = f"OWNER#{owner}"
        params = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": attribute_values(pk=pk),
            "ScanIndexForward": False,
        }
        names = ("pk", "sk", "gsi1pk", "gsi1sk")
        items, next_cursor = self._query_page(
            params, listing="sessions", limit=limit, cursor=cursor, names=names, scope={"gsi1pk": pk}
        )
        return Page(items=[_session_of(item) for item in items], cursor=next_cursor)

    def delete_session(self, session_id: str) -> None:
        """The session and every message in it."""
        items = self._query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=attribute_values(pk=_session_pk(session_id)),
            ProjectionExpression="pk, sk",
        )
        self._delete_keys([{"pk": item["pk"], "sk": item["sk"]} for item in items])

    def add_message(self, message: Message) -> None:
        """Upsert by message id: a redelivered or completed turn replaces the stored one, even if re-timed."""
        item = _message_item(message)
        previous = self._message_keys(message.session_id, message.id)
        stale = [key for key in previous if key["sk"] != item["sk"]]
        if not stale:
            with translated_errors("add_message"):
                self._client().put_item(TableName=self.table, Item=to_item(item))
            return
        try:
            self._transact([self._put(item), *(self._delete(key) for key in stale)])
        except ClientError as exc:
            raise UpstreamError(f"DynamoDB add_message cancelled: {cancellation_codes(exc)}") from exc

    def add_message_if_new(self, message: Message) -> bool:
        """The message plus a claim item (``sk = MSGID#{id}``) in one transaction, both put only if absent.

        The message's own key holds its time, so the claim is what makes the write conditional on the id:
        a redelivered job with a later timestamp finds the claim taken. Messages stored by ``add_message``
        (no claim) are found through lsi1 first.
        """
        if self._message_keys(message.session_id, message.id):
            return False
        item = _message_item(message)
        claim = {"pk": item["pk"], "sk": f"MSGID#{message.id}", "kind": "message_claim"}
        for _ in range(OPTIMISTIC_ATTEMPTS):
            try:
                self._transact([self._put_if_absent(claim), self._put_if_absent(item)])
                return True
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if CHECK_FAILED in codes:
                    return False
                if "TransactionConflict" not in codes:
                    raise UpstreamError(f"DynamoDB add_message_if_new cancelled: {codes}") from exc
            if self._message_keys(message.session_id, message.id):  # the conflicting writer stored it
                return False
        raise Throttled("DynamoDB add_message_if_new kept conflicting")

    def _put_if_absent(self, values: Mapping[str, Any]) -> dict[str, Any]:
        put = self._put(values)
        put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        return put

    def _message_keys(self, session_id: str, message_id: str) -> list[dict[str, str]]:
        items = self._query_all(
            IndexName="lsi1",
            KeyConditionExpression="pk = :pk AND lsi1sk = :id",
            ExpressionAttributeValues=attribute_values(pk=_session_pk(session_id), id=f"MSGID#{message_id}"),
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        return [{"pk": item["pk"], "sk": item["sk"]} for item in items]

    def get_message(self, session_id: str, message_id: str) -> Message | None:
        items = self._query_all(
            IndexName="lsi1",
            KeyConditionExpression="pk = :pk AND lsi1sk = :id",
            ExpressionAttributeValues=attribute_values(pk=_session_pk(session_id), id=f"MSGID#{message_id}"),
            ConsistentRead=True,
        )
        found = next(items, None)
        return _message_of(found) if found else None

    def list_messages(self, session_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        pk = _session_pk(session_id)
        params = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :msg)",
            "ExpressionAttributeValues": attribute_values(pk=pk, msg="MSG#"),
            "ConsistentRead": True,
        }
        items, next_cursor = self._query_page(
            params, listing="messages", limit=limit, cursor=cursor, names=("pk", "sk"), scope={"pk": pk}
        )
        return Page(items=[_message_of(item) for item in items], cursor=next_cursor)

    def recent_messages(self, session_id: str, *, limit: int) -> list[Message]:
        if limit < 1:
            return []
        check_limit(limit)
        with translated_errors("recent_messages"):
            response = self._client().query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :msg)",
                ExpressionAttributeValues=attribute_values(pk=_session_pk(session_id), msg="MSG#"),
                ScanIndexForward=False,
                Limit=limit,
                ConsistentRead=True,
            )
        return [_message_of(from_item(item)) for item in reversed(response.get("Items", []))]
