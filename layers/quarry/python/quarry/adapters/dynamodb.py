"""DynamoDB behind ``ports.Catalog``, ``ports.ChatHistory`` and ``ports.Connections``.

Key design: see ``quarry.adapters.dynamodb_tables`` (the ``TABLES`` data that
``create_tables`` and the CDK stack both read). In short, one table per concern
(``{prefix}-catalog``, ``{prefix}-chat``, ``{prefix}-connections``), single-table
layout with overloaded ``pk``/``sk``/``gsiNpk``/``gsiNsk`` inside each.

What goes in and out is always a domain model; items are built and read only in
the ``_*_item`` / ``_*_of`` functions below. Nested values (metadata, citations)
are stored as JSON strings, so floats and arbitrary nesting round-trip exactly.
Listings return exact pages: the cursor is the URL-safe base64 of the
``ExclusiveStartKey`` (DynamoDB JSON) of the page's last item, checked on the way
back in so a cursor cannot be replayed against another partition.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, ClassVar

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from quarry.adapters.aws_clients import LazyClient, error_code
from quarry.adapters.dynamodb_tables import TABLES, create_tables, table_name
from quarry.errors import Conflict, InvalidInput, Throttled, UpstreamError
from quarry.models import (
    ChunkingConfig,
    Citation,
    Document,
    DocumentSource,
    DocumentStatus,
    Feedback,
    Message,
    Role,
    Session,
    Workspace,
)
from quarry.ports import UPLOAD_SEQUENCER, ConnectionInfo, Page

__all__ = ["TABLES", "DynamoCancellations", "DynamoCatalog", "DynamoChatHistory", "DynamoConnections", "create_tables"]

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_MAX_PAGE = 1000
_BATCH_ATTEMPTS = 8
_OPTIMISTIC_ATTEMPTS = 4
_MAX_TRANSACTION_ITEMS = 100
_THROTTLING = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
_CHECK_FAILED = "ConditionalCheckFailed"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]


# =========================================================================== encoding


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def _dt(text: str) -> datetime:
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def _to_item(values: Mapping[str, Any]) -> Item:
    """Python values to DynamoDB JSON; None values are left out (absent, not NULL)."""
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidInput("datetimes must be timezone-aware")
    return int(moment.timestamp() * 1000)


def _from_item(item: Mapping[str, Any]) -> Item:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _values(**values: Any) -> Item:
    """``ExpressionAttributeValues`` from keyword arguments: ``_values(pk=...)`` gives ``{":pk": {...}}``."""
    return {f":{name}": _serializer.serialize(value) for name, value in values.items()}


def _update(values: Mapping[str, Any]) -> dict[str, Any]:
    """An UpdateExpression setting every non-None value and removing every None one."""
    sets: list[str] = []
    removes: list[str] = []
    names: dict[str, str] = {}
    expression_values: Item = {}
    for i, (name, value) in enumerate(values.items()):
        names[f"#a{i}"] = name
        if value is None:
            removes.append(f"#a{i}")
        else:
            sets.append(f"#a{i} = :v{i}")
            expression_values[f":v{i}"] = _serializer.serialize(value)
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    params: dict[str, Any] = {"UpdateExpression": expression, "ExpressionAttributeNames": names}
    if expression_values:
        params["ExpressionAttributeValues"] = expression_values
    return params


def _encode_cursor(key: Mapping[str, str]) -> str:
    raw = json.dumps({name: {"S": value} for name, value in key.items()}, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str, *, names: Sequence[str], scope: Mapping[str, str]) -> Item:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("invalid cursor") from exc
    if not isinstance(key, dict) or set(key) != set(names):
        raise InvalidInput("invalid cursor")
    for value in key.values():
        if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
            raise InvalidInput("invalid cursor")
    if any(key[name]["S"] != expected for name, expected in scope.items()):
        raise InvalidInput("cursor belongs to another listing")
    return key


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {_MAX_PAGE}")


@contextmanager
def _errors(action: str) -> Iterator[None]:
    """Map what is left of botocore's errors to typed ones (conditional failures are handled by callers)."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in _THROTTLING:
            raise Throttled(f"DynamoDB {action} throttled") from exc
        if code == "ResourceNotFoundException":
            raise UpstreamError(f"DynamoDB {action}: table missing (create_tables / the CDK stack)") from exc
        raise UpstreamError(f"DynamoDB {action} failed: {code}") from exc


def _cancellation_codes(exc: ClientError) -> list[str]:
    """Per-item reason codes of a cancelled transaction; re-raises anything else as typed."""
    if error_code(exc) != "TransactionCanceledException":
        with _errors("transaction"):
            raise exc
    return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]


# =========================================================================== table base


class _Table:
    """Shared primitives over one table: get, exact-page queries, batch get/delete."""

    _spec: ClassVar[str]

    def __init__(
        self,
        table_prefix: str = "quarry",
        *,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
    ) -> None:
        self.table = table_name(table_prefix, TABLES[self._spec].suffix)
        self._client = LazyClient("dynamodb", client=client, session=session, region=region)

    def _get(self, key: Mapping[str, str]) -> Item | None:
        with _errors("get"):
            response = self._client().get_item(TableName=self.table, Key=_to_item(key), ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def _query_all(self, **params: Any) -> Iterator[Item]:
        params["TableName"] = self.table
        while True:
            with _errors("query"):
                response = self._client().query(**params)
            yield from (_from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    def _query_page(
        self,
        params: Mapping[str, Any],
        *,
        limit: int,
        cursor: str | None,
        names: Sequence[str],
        scope: Mapping[str, str],
    ) -> tuple[list[Item], str | None]:
        """Exactly ``limit`` items (fewer only at the end) and a cursor iff more exist."""
        _check_limit(limit)
        query: dict[str, Any] = {**params, "TableName": self.table}
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, names=names, scope=scope)
        items: list[Item] = []
        while len(items) <= limit:
            query["Limit"] = limit + 1 - len(items)
            with _errors("query"):
                response = self._client().query(**query)
            items.extend(_from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            query["ExclusiveStartKey"] = last
        page = items[:limit]
        more = len(items) > limit
        return page, (_encode_cursor({name: page[-1][name] for name in names}) if more else None)

    def _batch_get(self, keys: Sequence[Mapping[str, str]]) -> list[Item]:
        found: list[Item] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table: {"Keys": [_to_item(key) for key in keys[start : start + 100]], "ConsistentRead": True}
            }
            for attempt in range(_BATCH_ATTEMPTS):
                with _errors("batch get"):
                    response = self._client().batch_get_item(RequestItems=request)
                found.extend(_from_item(item) for item in response.get("Responses", {}).get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise Throttled("DynamoDB batch get left keys unprocessed")
        return found

    def _delete_keys(self, keys: Sequence[Mapping[str, str]]) -> None:
        for start in range(0, len(keys), 25):
            request: dict[str, Any] = {
                self.table: [{"DeleteRequest": {"Key": _to_item(key)}} for key in keys[start : start + 25]]
            }
            for attempt in range(_BATCH_ATTEMPTS):
                with _errors("batch delete"):
                    response = self._client().batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise Throttled("DynamoDB batch delete left items unprocessed")

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """Raises ClientError (TransactionCanceledException) for the caller to inspect."""
        self._client().transact_write_items(TransactItems=items)

    def _put(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.table, "Item": _to_item(values)}}

    def _delete(self, key: Mapping[str, str]) -> dict[str, Any]:
        return {"Delete": {"TableName": self.table, "Key": _to_item(key)}}


# =========================================================================== catalog items

_META = "#META"


def _ws_key(workspace_id: str) -> dict[str, str]:
    return {"pk": f"WS#{workspace_id}", "sk": _META}


def _member_key(user: str, workspace_id: str) -> dict[str, str]:
    return {"pk": f"USER#{user}", "sk": f"WS#{workspace_id}"}


def _doc_key(workspace_id: str, document_id: str) -> dict[str, str]:
    return {"pk": f"WS#{workspace_id}", "sk": f"DOC#{document_id}"}


def _idem_key(workspace_id: str, key: str) -> dict[str, str]:
    """Idempotency keys are scoped to their workspace."""
    return {"pk": f"IDEM#{workspace_id}#{key}", "sk": "#IDEM"}


def _idempotency_item(idempotency_key: str, document: Document) -> Item:
    return {
        **_idem_key(document.workspace_id, idempotency_key),
        "kind": "idempotency",
        "workspace_id": document.workspace_id,
        "document_id": document.id,
        "created_at": _ts(document.created_at),
    }


def _workspace_item(workspace: Workspace, rev: int) -> Item:
    return {
        **_ws_key(workspace.id),
        "kind": "workspace",
        "rev": rev,
        "id": workspace.id,
        "name": workspace.name,
        "owner": workspace.owner,
        "embedding_model": workspace.embedding_model,
        "dimensions": workspace.dimensions,
        "chunk_size": workspace.chunking.size,
        "chunk_overlap": workspace.chunking.overlap,
        "hybrid": workspace.hybrid,
        "reranker": workspace.reranker,
        "shared_with": list(workspace.shared_with),
        "created_at": _ts(workspace.created_at),
    }


def _workspace_of(item: Mapping[str, Any]) -> Workspace:
    return Workspace(
        id=item["id"],
        name=item["name"],
        owner=item["owner"],
        embedding_model=item["embedding_model"],
        dimensions=int(item["dimensions"]),
        chunking=ChunkingConfig(size=int(item["chunk_size"]), overlap=int(item["chunk_overlap"])),
        hybrid=bool(item["hybrid"]),
        reranker=item.get("reranker"),
        shared_with=tuple(item.get("shared_with", ())),
        created_at=_dt(item["created_at"]),
    )


def _members(item: Mapping[str, Any] | None) -> set[str]:
    if item is None:
        return set()
    return {item["owner"], *item.get("shared_with", ())}


def _document_status_keys(workspace_id: str, document_id: str, status: DocumentStatus, updated: str) -> Item:
    """Index keys that move with the status (gsi2sk, the creation order, is written with the document)."""
    return {
        "status": status.value,
        "gsi1pk": f"DOCSTATUS#{status.value}",
        "gsi1sk": f"{updated}#{workspace_id}#{document_id}",
        "gsi2pk": f"WS#{workspace_id}#STATUS#{status.value}",
    }


def _document_attributes(document: Document) -> Item:
    """Everything but the primary key and the idempotency key (which ``put_document`` must keep)."""
    updated = _ts(document.updated_at)
    in_order = f"DOC#{_ts(document.created_at)}#{document.id}"
    return {
        "kind": "document",
        "lsi1sk": in_order,
        "gsi2sk": in_order,
        "id": document.id,
        "workspace_id": document.workspace_id,
        "name": document.name,
        "source": document.source.value,
        "status_reason": document.status_reason,
        "blob_key": document.blob_key,
        "content_type": document.content_type,
        "size_bytes": document.size_bytes,
        "content_hash": document.content_hash,
        "metadata": json.dumps(document.metadata, sort_keys=True),
        # Top level too (the metadata is a JSON string): what ``put_document_if`` conditions on.
        UPLOAD_SEQUENCER: _upload_sequencer(document),
        "parent_id": document.parent_id,
        "chunk_count": document.chunk_count,
        "created_at": _ts(document.created_at),
        "updated_at": updated,
        **_document_status_keys(document.workspace_id, document.id, document.status, updated),
    }


def _upload_sequencer(document: Document) -> str | None:
    value = document.metadata.get(UPLOAD_SEQUENCER)
    return str(value) if value else None


def _sequencer_condition(expected: str | None) -> dict[str, Any]:
    """``put_document_if``'s condition: the item exists and records ``expected`` as its sequencer.

    Items written before the top-level attribute existed hold the sequencer only inside the metadata
    JSON (``sort_keys``, default separators, so ``"s3_sequencer": "..."`` appears verbatim, and a quote
    inside a string value is escaped): those are matched on that text instead.
    """
    names = {"#seq": UPLOAD_SEQUENCER, "#meta": "metadata"}
    if expected is None:
        return {
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#seq) AND NOT contains(#meta, :key)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _values(key=json.dumps(UPLOAD_SEQUENCER) + ":"),
        }
    return {
        "ConditionExpression": "attribute_exists(pk)"
        " AND (#seq = :seq OR (attribute_not_exists(#seq) AND contains(#meta, :legacy)))",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": _values(seq=expected, legacy=json.dumps({UPLOAD_SEQUENCER: expected})[1:-1]),
    }


def _document_of(item: Mapping[str, Any]) -> Document:
    return Document(
        id=item["id"],
        workspace_id=item["workspace_id"],
        name=item["name"],
        source=DocumentSource(item["source"]),
        status=DocumentStatus(item["status"]),
        status_reason=item.get("status_reason"),
        blob_key=item.get("blob_key"),
        content_type=item.get("content_type"),
        size_bytes=int(item.get("size_bytes", 0)),
        content_hash=item.get("content_hash"),
        metadata=json.loads(item.get("metadata", "{}")),
        parent_id=item.get("parent_id"),
        chunk_count=int(item.get("chunk_count", 0)),
        created_at=_dt(item["created_at"]),
        updated_at=_dt(item["updated_at"]),
    )


def _feedback_item(feedback: Feedback) -> Item:
    created = _ts(feedback.created_at)
    return {
        "pk": f"FB#{feedback.session_id}#{feedback.message_id}",
        "sk": f"USER#{feedback.user}",
        "kind": "feedback",
        "gsi1pk": "FEEDBACK",
        "gsi1sk": f"{created}#{feedback.session_id}#{feedback.message_id}#{feedback.user}",
        "session_id": feedback.session_id,
        "message_id": feedback.message_id,
        "user": feedback.user,
        "rating": feedback.rating,
        "comment": feedback.comment,
        "created_at": created,
    }


def _feedback_of(item: Mapping[str, Any]) -> Feedback:
    return Feedback(
        session_id=item["session_id"],
        message_id=item["message_id"],
        user=item["user"],
        rating=int(item["rating"]),
        comment=item.get("comment"),
        created_at=_dt(item["created_at"]),
    )


# =========================================================================== catalog


class DynamoCatalog(_Table):
    """Workspaces (with a membership item per reader), documents, idempotency records, feedback."""

    _spec = "catalog"

    # ------------------------------------------------------------------ workspaces

    def put_workspace(self, workspace: Workspace) -> None:
        """Upsert; memberships follow ``owner``/``shared_with`` in the same transaction (optimistic on ``rev``)."""
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            if self._try_put_workspace(workspace, self._get(_ws_key(workspace.id))):
                return
        raise Conflict(f"workspace {workspace.id} is being changed concurrently; try again")

    def _try_put_workspace(self, workspace: Workspace, current: Item | None) -> bool:
        before, after = _members(current), {workspace.owner, *workspace.shared_with}
        if 1 + len(after - before) + len(before - after) > _MAX_TRANSACTION_ITEMS:
            raise InvalidInput("a workspace can be shared with at most 98 users")
        rev = int(current["rev"]) if current else 0
        put = self._put(_workspace_item(workspace, rev + 1))
        if current is None:
            put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["Put"] |= {"ConditionExpression": "rev = :rev", "ExpressionAttributeValues": _values(rev=rev)}
        items = [put]
        items += [
            self._put({**_member_key(user, workspace.id), "kind": "member", "workspace_id": workspace.id})
            for user in sorted(after - before)
        ]
        items += [self._delete(_member_key(user, workspace.id)) for user in sorted(before - after)]
        try:
            self._transact(items)
        except ClientError as exc:
            codes = _cancellation_codes(exc)
            if _CHECK_FAILED in codes or "TransactionConflict" in codes:
                return False
            raise UpstreamError(f"DynamoDB put_workspace cancelled: {codes}") from exc
        return True

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        item = self._get(_ws_key(workspace_id))
        return _workspace_of(item) if item else None

    def list_workspaces(self, user: str) -> list[Workspace]:
        memberships = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ws)",
            ExpressionAttributeValues=_values(pk=f"USER#{user}", ws="WS#"),
        )
        keys = [_ws_key(item["workspace_id"]) for item in memberships]
        workspaces = [_workspace_of(item) for item in self._batch_get(keys)]
        return sorted(workspaces, key=lambda ws: (ws.created_at, ws.id))

    def delete_workspace(self, workspace_id: str) -> None:
        """The workspace, its memberships, its documents and their idempotency records."""
        current = self._get(_ws_key(workspace_id))
        partition = list(
            self._query_all(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=_values(pk=f"WS#{workspace_id}"),
            )
        )
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in partition]
        keys += [_idem_key(workspace_id, item["idempotency_key"]) for item in partition if item.get("idempotency_key")]
        keys += [_member_key(user, workspace_id) for user in _members(current)]
        self._delete_keys(keys)

    # ------------------------------------------------------------------ documents

    def register_document(self, document: Document, *, idempotency_key: str | None = None) -> tuple[Document, bool]:
        """Write the document and its idempotency record in one transaction, both conditional.

        Returns the registered document and False when the key is taken in the workspace,
        or the document id is (with or without a key). A record whose document is gone is
        stale: it is dropped and the registration goes ahead.
        """
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            outcome = self._try_register(document, idempotency_key)
            if outcome is not None:
                return outcome
        raise Conflict(f"document registration for {idempotency_key or document.id} keeps racing; try again")

    def _try_register(self, document: Document, idempotency_key: str | None) -> tuple[Document, bool] | None:
        put = self._put({**_doc_key(document.workspace_id, document.id), **_document_attributes(document)})
        put["Put"]["Item"] |= _to_item({"idempotency_key": idempotency_key})
        put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        items = [put]
        if idempotency_key is not None:
            record = self._put(_idempotency_item(idempotency_key, document))
            record["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
            items.append(record)
        try:
            self._transact(items)
        except ClientError as exc:
            return self._registration_conflict(document, idempotency_key, _cancellation_codes(exc))
        return document, True

    def _registration_conflict(
        self, document: Document, idempotency_key: str | None, codes: list[str]
    ) -> tuple[Document, bool] | None:
        """The already registered document, or None to try again (state moved, or a stale record was dropped)."""
        if "TransactionConflict" in codes:
            return None
        if idempotency_key is not None and len(codes) > 1 and codes[1] == _CHECK_FAILED:
            record = self._get(_idem_key(document.workspace_id, idempotency_key))
            if record is None:  # deleted meanwhile
                return None
            existing = self._get(_doc_key(document.workspace_id, record["document_id"]))
            if existing is not None and existing.get("idempotency_key") == idempotency_key:
                return _document_of(existing), False
            self._drop_stale_record(document.workspace_id, idempotency_key, record["document_id"])
            return None
        if codes and codes[0] == _CHECK_FAILED:
            current = self.get_document(document.workspace_id, document.id)
            return (current, False) if current is not None else None
        raise UpstreamError(f"DynamoDB register_document cancelled: {codes}")

    def _drop_stale_record(self, workspace_id: str, idempotency_key: str, document_id: str) -> None:
        try:
            self._client().delete_item(
                TableName=self.table,
                Key=_to_item(_idem_key(workspace_id, idempotency_key)),
                ConditionExpression="document_id = :doc",
                ExpressionAttributeValues=_values(doc=document_id),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                with _errors("delete"):
                    raise

    def put_document(self, document: Document) -> None:
        """Upsert every field; an idempotency key set at registration is kept."""
        with _errors("put_document"):
            self._client().update_item(
                TableName=self.table,
                Key=_to_item(_doc_key(document.workspace_id, document.id)),
                **_update(_document_attributes(document)),
            )

    def put_document_if(self, document: Document, *, expected_sequencer: str | None) -> bool:
        """``put_document`` with a ConditionExpression on the top-level ``s3_sequencer`` attribute."""
        params = _update(_document_attributes(document))
        condition = _sequencer_condition(expected_sequencer)
        params["ExpressionAttributeNames"] |= condition["ExpressionAttributeNames"]
        params["ExpressionAttributeValues"] = (
            params.get("ExpressionAttributeValues", {}) | condition["ExpressionAttributeValues"]
        )
        try:
            self._client().update_item(
                TableName=self.table,
                Key=_to_item(_doc_key(document.workspace_id, document.id)),
                ConditionExpression=condition["ConditionExpression"],
                **params,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            with _errors("put_document_if"):
                raise
        return True

    def get_document(self, workspace_id: str, document_id: str) -> Document | None:
        item = self._get(_doc_key(workspace_id, document_id))
        return _document_of(item) if item else None

    def list_documents(
        self,
        workspace_id: str,
        *,
        status: DocumentStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Document]:
        """Oldest first (creation time, then id): lsi1, or gsi2 for one status, so pages stay exact."""
        if status is None:
            pk = f"WS#{workspace_id}"
            params: dict[str, Any] = {
                "IndexName": "lsi1",
                "KeyConditionExpression": "pk = :pk AND begins_with(lsi1sk, :doc)",
                "ExpressionAttributeValues": _values(pk=pk, doc="DOC#"),
                "ConsistentRead": True,
            }
            names: tuple[str, ...] = ("pk", "sk", "lsi1sk")
            items, next_cursor = self._query_page(params, limit=limit, cursor=cursor, names=names, scope={"pk": pk})
        else:
            pk = f"WS#{workspace_id}#STATUS#{status.value}"
            params = {
                "IndexName": "gsi2",
                "KeyConditionExpression": "gsi2pk = :pk",
                "ExpressionAttributeValues": _values(pk=pk),
            }
            names = ("pk", "sk", "gsi2pk", "gsi2sk")
            items, next_cursor = self._query_page(params, limit=limit, cursor=cursor, names=names, scope={"gsi2pk": pk})
        return Page(items=[_document_of(item) for item in items], cursor=next_cursor)

    def set_document_status(
        self,
        workspace_id: str,
        document_id: str,
        status: DocumentStatus,
        *,
        reason: str | None = None,
        chunk_count: int | None = None,
    ) -> Document | None:
        """Conditional on the document existing (a late worker never resurrects a deleted one)."""
        updated = _ts(datetime.now(UTC))
        changes: Item = {
            "status_reason": reason,
            "updated_at": updated,
            **_document_status_keys(workspace_id, document_id, status, updated),
        }
        if chunk_count is not None:
            changes["chunk_count"] = chunk_count
        params = _update(changes)
        try:
            response = self._client().update_item(
                TableName=self.table,
                Key=_to_item(_doc_key(workspace_id, document_id)),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_NEW",
                **params,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            with _errors("set_document_status"):
                raise
        return _document_of(_from_item(response["Attributes"]))

    def delete_document(self, workspace_id: str, document_id: str) -> None:
        """The document and its idempotency record, in one transaction. Idempotent."""
        current = self._get(_doc_key(workspace_id, document_id))
        if current is None:
            return
        items = [self._delete(_doc_key(workspace_id, document_id))]
        if current.get("idempotency_key"):
            record = self._delete(_idem_key(workspace_id, current["idempotency_key"]))
            record["Delete"] |= {
                "ConditionExpression": "attribute_not_exists(pk) OR document_id = :doc",
                "ExpressionAttributeValues": _values(doc=document_id),
            }
            items.append(record)
        try:
            self._transact(items)
        except ClientError as exc:
            codes = _cancellation_codes(exc)
            if _CHECK_FAILED in codes:  # the record now belongs to another document: keep it
                with _errors("delete_document"):
                    self._client().delete_item(TableName=self.table, Key=_to_item(_doc_key(workspace_id, document_id)))
                return
            raise UpstreamError(f"DynamoDB delete_document cancelled: {codes}") from exc

    def existing_document_ids(self, workspace_id: str, document_ids: Iterable[str]) -> set[str]:
        """BatchGetItem, 100 distinct keys a call, consistent reads, keys only; unprocessed keys retried."""
        wanted = sorted(set(document_ids))
        found: set[str] = set()
        prefix = len("DOC#")
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [_to_item(_doc_key(workspace_id, doc_id)) for doc_id in wanted[start : start + 100]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, sk",
                }
            }
            for attempt in range(_BATCH_ATTEMPTS):
                with _errors("batch get"):
                    response = self._client().batch_get_item(RequestItems=request)
                items = response.get("Responses", {}).get(self.table, [])
                found.update(_from_item(item)["sk"][prefix:] for item in items)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise Throttled("DynamoDB batch get left keys unprocessed")
        return found

    def stale_documents(self, status: DocumentStatus, older_than: datetime) -> list[Document]:
        """Documents in ``status`` last updated strictly before ``older_than`` (gsi1), oldest first."""
        items = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :before",
            ExpressionAttributeValues=_values(pk=f"DOCSTATUS#{status.value}", before=_ts(older_than)),
        )
        return [_document_of(item) for item in items]

    # ------------------------------------------------------------------ feedback

    def put_feedback(self, feedback: Feedback) -> None:
        """One record per (session, message, user): giving feedback again replaces it."""
        with _errors("put_feedback"):
            self._client().put_item(TableName=self.table, Item=_to_item(_feedback_item(feedback)))

    def list_feedback(self, *, since: datetime | None = None) -> list[Feedback]:
        """Oldest first; ``since`` inclusive."""
        if since is None:
            items = self._query_all(
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues=_values(pk="FEEDBACK"),
            )
        else:
            items = self._query_all(
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk >= :since",
                ExpressionAttributeValues=_values(pk="FEEDBACK", since=_ts(since)),
            )
        return [_feedback_of(item) for item in items]


# =========================================================================== chat history


def _session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def _session_item(session: Session) -> Item:
    updated = _ts(session.updated_at)
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
        "created_at": _ts(session.created_at),
        "updated_at": updated,
    }


def _session_of(item: Mapping[str, Any]) -> Session:
    return Session(
        id=item["id"],
        owner=item["owner"],
        workspace_id=item.get("workspace_id"),
        title=item["title"],
        created_at=_dt(item["created_at"]),
        updated_at=_dt(item["updated_at"]),
    )


def _message_item(message: Message) -> Item:
    created = _ts(message.created_at)
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
        created_at=_dt(item["created_at"]),
        metadata=json.loads(item.get("metadata", "{}")),
    )


class DynamoChatHistory(_Table):
    """Sessions and messages; one item per message, sorted by time inside the session's partition."""

    _spec = "chat"

    def put_session(self, session: Session) -> None:
        with _errors("put_session"):
            self._client().put_item(TableName=self.table, Item=_to_item(_session_item(session)))

    def get_session(self, session_id: str) -> Session | None:
        item = self._get({"pk": _session_pk(session_id), "sk": _META})
        return _session_of(item) if item else None

    def list_sessions(self, owner: str, *, limit: int = 20, cursor: str | None = None) -> Page[Session]:
        """Most recently updated first."""
        pk = f"OWNER#{owner}"
        params = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": _values(pk=pk),
            "ScanIndexForward": False,
        }
        names = ("pk", "sk", "gsi1pk", "gsi1sk")
        items, next_cursor = self._query_page(params, limit=limit, cursor=cursor, names=names, scope={"gsi1pk": pk})
        return Page(items=[_session_of(item) for item in items], cursor=next_cursor)

    def delete_session(self, session_id: str) -> None:
        """The session and every message in it."""
        items = self._query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_values(pk=_session_pk(session_id)),
            ProjectionExpression="pk, sk",
        )
        self._delete_keys([{"pk": item["pk"], "sk": item["sk"]} for item in items])

    def add_message(self, message: Message) -> None:
        """Upsert by message id: a redelivered or completed turn replaces the stored one, even if re-timed."""
        item = _message_item(message)
        previous = self._message_keys(message.session_id, message.id)
        stale = [key for key in previous if key["sk"] != item["sk"]]
        if not stale:
            with _errors("add_message"):
                self._client().put_item(TableName=self.table, Item=_to_item(item))
            return
        try:
            self._transact([self._put(item), *(self._delete(key) for key in stale)])
        except ClientError as exc:
            raise UpstreamError(f"DynamoDB add_message cancelled: {_cancellation_codes(exc)}") from exc

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
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            try:
                self._transact([self._put_if_absent(claim), self._put_if_absent(item)])
                return True
            except ClientError as exc:
                codes = _cancellation_codes(exc)
                if _CHECK_FAILED in codes:
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
            ExpressionAttributeValues=_values(pk=_session_pk(session_id), id=f"MSGID#{message_id}"),
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        return [{"pk": item["pk"], "sk": item["sk"]} for item in items]

    def get_message(self, session_id: str, message_id: str) -> Message | None:
        items = self._query_all(
            IndexName="lsi1",
            KeyConditionExpression="pk = :pk AND lsi1sk = :id",
            ExpressionAttributeValues=_values(pk=_session_pk(session_id), id=f"MSGID#{message_id}"),
            ConsistentRead=True,
        )
        found = next(items, None)
        return _message_of(found) if found else None

    def list_messages(self, session_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        pk = _session_pk(session_id)
        params = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :msg)",
            "ExpressionAttributeValues": _values(pk=pk, msg="MSG#"),
            "ConsistentRead": True,
        }
        items, next_cursor = self._query_page(params, limit=limit, cursor=cursor, names=("pk", "sk"), scope={"pk": pk})
        return Page(items=[_message_of(item) for item in items], cursor=next_cursor)

    def recent_messages(self, session_id: str, *, limit: int) -> list[Message]:
        if limit < 1:
            return []
        _check_limit(limit)
        with _errors("recent_messages"):
            response = self._client().query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :msg)",
                ExpressionAttributeValues=_values(pk=_session_pk(session_id), msg="MSG#"),
                ScanIndexForward=False,
                Limit=limit,
                ConsistentRead=True,
            )
        return [_message_of(_from_item(item)) for item in reversed(response.get("Items", []))]


# =========================================================================== connections


class _ClockedTable(_Table):
    """A table whose items expire: reads compare against ``clock`` (DynamoDB's TTL deletes late)."""

    def __init__(
        self,
        table_prefix: str = "quarry",
        *,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(table_prefix, client=client, session=session, region=region)
        self._clock = clock


class DynamoConnections(_ClockedTable):
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
            "token_expires_at_ms": None if token_expires_at is None else _epoch_ms(token_expires_at),
        }
        with _errors("add connection"):
            self._client().put_item(TableName=self.table, Item=_to_item(item))

    def remove(self, connection_id: str) -> None:
        if not connection_id:
            return
        with _errors("remove connection"):
            self._client().delete_item(TableName=self.table, Key=_to_item({"connection_id": connection_id}))

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
            ExpressionAttributeValues=_values(user=user),
        )
        return sorted(str(item["connection_id"]) for item in items if not self._expired(item))

    def _expired(self, item: Mapping[str, Any]) -> bool:
        expires_ms = int(item.get("expires_at_ms", int(item.get("expires_at", 0)) * 1000))
        return expires_ms <= self._clock() * 1000


class DynamoCancellations(_ClockedTable):
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
        with _errors("cancel"):
            self._client().put_item(TableName=self.table, Item=_to_item(item))

    def take(self, session_id: str) -> bool:
        with _errors("take cancel flag"):
            response = self._client().delete_item(
                TableName=self.table, Key=_to_item(self._key(session_id)), ReturnValues="ALL_OLD"
            )
        old = response.get("Attributes")
        return bool(old) and int(_from_item(old).get("expires_at_ms", 0)) > int(self._clock() * 1000)

    def clear(self, session_id: str) -> None:
        with _errors("clear cancel flag"):
            self._client().delete_item(TableName=self.table, Key=_to_item(self._key(session_id)))
