"""``ports.Catalog`` on DynamoDB: workspaces (with a membership item per reader), documents,
idempotency records and feedback, single-table in ``{prefix}-catalog`` (layout: ``tables``).

What goes in and out is always a domain model; items are built and read only in the ``_*_item`` /
``_*_of`` functions below. Nested values (metadata) are stored as JSON strings, so floats and arbitrary
nesting round-trip exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from quarry.adapters.aws_errors import error_code
from quarry.adapters.dynamodb.codec import (
    Item,
    attribute_values,
    from_item,
    parse_timestamp,
    timestamp,
    to_item,
    update_params,
)
from quarry.adapters.dynamodb.table import (
    CHECK_FAILED,
    MAX_TRANSACTION_ITEMS,
    OPTIMISTIC_ATTEMPTS,
    Table,
    cancellation_codes,
    translated_errors,
)
from quarry.errors import Conflict, InvalidInput, UpstreamError
from quarry.models import (
    ChunkingConfig,
    Document,
    DocumentSource,
    DocumentStatus,
    Feedback,
    Workspace,
)
from quarry.ports import UPLOAD_SEQUENCER, Page

__all__ = ["DynamoCatalog"]

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
        "created_at": timestamp(document.created_at),
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
        "created_at": timestamp(workspace.created_at),
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
        created_at=parse_timestamp(item["created_at"]),
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
    updated = timestamp(document.updated_at)
    in_order = f"DOC#{timestamp(document.created_at)}#{document.id}"
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
        "created_at": timestamp(document.created_at),
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
            "ExpressionAttributeValues": attribute_values(key=json.dumps(UPLOAD_SEQUENCER) + ":"),
        }
    return {
        "ConditionExpression": "attribute_exists(pk)"
        " AND (#seq = :seq OR (attribute_not_exists(#seq) AND contains(#meta, :legacy)))",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": attribute_values(
            seq=expected, legacy=json.dumps({UPLOAD_SEQUENCER: expected})[1:-1]
        ),
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
        created_at=parse_timestamp(item["created_at"]),
        updated_at=parse_timestamp(item["updated_at"]),
    )


def _feedback_item(feedback: Feedback) -> Item:
    created = timestamp(feedback.created_at)
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
        created_at=parse_timestamp(item["created_at"]),
    )


# =========================================================================== the adapter


class DynamoCatalog(Table):
    """Workspaces (with a membership item per reader), documents, idempotency records, feedback."""

    _spec = "catalog"

    # ------------------------------------------------------------------ workspaces

    def put_workspace(self, workspace: Workspace) -> None:
        """Upsert; memberships follow ``owner``/``shared_with`` in the same transaction (optimistic on ``rev``)."""
        for _ in range(OPTIMISTIC_ATTEMPTS):
            if self._try_put_workspace(workspace, self._get(_ws_key(workspace.id))):
                return
        raise Conflict(f"workspace {workspace.id} is being changed concurrently; try again")

    def _try_put_workspace(self, workspace: Workspace, current: Item | None) -> bool:
        before, after = _members(current), {workspace.owner, *workspace.shared_with}
        if 1 + len(after - before) + len(before - after) > MAX_TRANSACTION_ITEMS:
            raise InvalidInput("a workspace can be shared with at most 98 users")
        rev = int(current["rev"]) if current else 0
        put = self._put(_workspace_item(workspace, rev + 1))
        if current is None:
            put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["Put"] |= {"ConditionExpression": "rev = :rev", "ExpressionAttributeValues": attribute_values(rev=rev)}
        items = [put]
        items += [
            self._put({**_member_key(user, workspace.id), "kind": "member", "workspace_id": workspace.id})
            for user in sorted(after - before)
        ]
        items += [self._delete(_member_key(user, workspace.id)) for user in sorted(before - after)]
        try:
            self._transact(items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if CHECK_FAILED in codes or "TransactionConflict" in codes:
                return False
            raise UpstreamError(f"DynamoDB put_workspace cancelled: {codes}") from exc
        return True

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        item = self._get(_ws_key(workspace_id))
        return _workspace_of(item) if item else None

    def list_workspaces(self, user: str) -> list[Workspace]:
        memberships = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ws)",
            ExpressionAttributeValues=attribute_values(pk=f"USER#{user}", ws="WS#"),
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
                ExpressionAttributeValues=attribute_values(pk=f"WS#{workspace_id}"),
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
        for _ in range(OPTIMISTIC_ATTEMPTS):
            outcome = self._try_register(document, idempotency_key)
            if outcome is not None:
                return outcome
        raise Conflict(f"document registration for {idempotency_key or document.id} keeps racing; try again")

    def _try_register(self, document: Document, idempotency_key: str | None) -> tuple[Document, bool] | None:
        put = self._put({**_doc_key(document.workspace_id, document.id), **_document_attributes(document)})
        put["Put"]["Item"] |= to_item({"idempotency_key": idempotency_key})
        put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        items = [put]
        if idempotency_key is not None:
            record = self._put(_idempotency_item(idempotency_key, document))
            record["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
            items.append(record)
        try:
            self._transact(items)
        except ClientError as exc:
            return self._registration_conflict(document, idempotency_key, cancellation_codes(exc))
        return document, True

    def _registration_conflict(
        self, document: Document, idempotency_key: str | None, codes: list[str]
    ) -> tuple[Document, bool] | None:
        """The already registered document, or None to try again (state moved, or a stale record was dropped)."""
        if "TransactionConflict" in codes:
            return None
        if idempotency_key is not None and len(codes) > 1 and codes[1] == CHECK_FAILED:
            record = self._get(_idem_key(document.workspace_id, idempotency_key))
            if record is None:  # deleted meanwhile
                return None
            existing = self._get(_doc_key(document.workspace_id, record["document_id"]))
            if existing is not None and existing.get("idempotency_key") == idempotency_key:
                return _document_of(existing), False
            self._drop_stale_record(document.workspace_id, idempotency_key, record["document_id"])
            return None
        if codes and codes[0] == CHECK_FAILED:
            current = self.get_document(document.workspace_id, document.id)
            return (current, False) if current is not None else None
        raise UpstreamError(f"DynamoDB register_document cancelled: {codes}")

    def _drop_stale_record(self, workspace_id: str, idempotency_key: str, document_id: str) -> None:
        try:
            self._client().delete_item(
                TableName=self.table,
                Key=to_item(_idem_key(workspace_id, idempotency_key)),
                ConditionExpression="document_id = :doc",
                ExpressionAttributeValues=attribute_values(doc=document_id),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                with translated_errors("delete"):
                    raise

    def put_document(self, document: Document) -> None:
        """Upsert every field; an idempotency key set at registration is kept."""
        with translated_errors("put_document"):
            self._client().update_item(
                TableName=self.table,
                Key=to_item(_doc_key(document.workspace_id, document.id)),
                **update_params(_document_attributes(document)),
            )

    def put_document_if(
        self, document: Document, *, expected_sequencer: str | None, expected_status: DocumentStatus | None = None
    ) -> bool:
        """``put_document`` with a ConditionExpression on the top-level ``s3_sequencer`` (and ``status``)."""
        params = update_params(_document_attributes(document))
        condition = _sequencer_condition(expected_sequencer)
        if expected_status is not None:
            condition["ConditionExpression"] += " AND #status = :status"
            condition["ExpressionAttributeNames"]["#status"] = "status"
            condition["ExpressionAttributeValues"] |= attribute_values(status=DocumentStatus(expected_status).value)
        params["ExpressionAttributeNames"] |= condition["ExpressionAttributeNames"]
        params["ExpressionAttributeValues"] = (
            params.get("ExpressionAttributeValues", {}) | condition["ExpressionAttributeValues"]
        )
        try:
            self._client().update_item(
                TableName=self.table,
                Key=to_item(_doc_key(document.workspace_id, document.id)),
                ConditionExpression=condition["ConditionExpression"],
                **params,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            with translated_errors("put_document_if"):
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
                "ExpressionAttributeValues": attribute_values(pk=pk, doc="DOC#"),
                "ConsistentRead": True,
            }
            names: tuple[str, ...] = ("pk", "sk", "lsi1sk")
            items, next_cursor = self._query_page(
                params, listing="documents", limit=limit, cursor=cursor, names=names, scope={"pk": pk}
            )
        else:
            pk = f"WS#{workspace_id}#STATUS#{status.value}"
            params = {
                "IndexName": "gsi2",
                "KeyConditionExpression": "gsi2pk = :pk",
                "ExpressionAttributeValues": attribute_values(pk=pk),
            }
            names = ("pk", "sk", "gsi2pk", "gsi2sk")
            items, next_cursor = self._query_page(
                params, listing="documents-by-status", limit=limit, cursor=cursor, names=names, scope={"gsi2pk": pk}
            )
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
        updated = timestamp(datetime.now(UTC))
        changes: Item = {
            "status_reason": reason,
            "updated_at": updated,
            **_document_status_keys(workspace_id, document_id, status, updated),
        }
        if chunk_count is not None:
            changes["chunk_count"] = chunk_count
        params = update_params(changes)
        try:
            response = self._client().update_item(
                TableName=self.table,
                Key=to_item(_doc_key(workspace_id, document_id)),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_NEW",
                **params,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            with translated_errors("set_document_status"):
                raise
        return _document_of(from_item(response["Attributes"]))

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
                "ExpressionAttributeValues": attribute_values(doc=document_id),
            }
            items.append(record)
        try:
            self._transact(items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if CHECK_FAILED in codes:  # the record now belongs to another document: keep it
                with translated_errors("delete_document"):
                    self._client().delete_item(TableName=self.table, Key=to_item(_doc_key(workspace_id, document_id)))
                return
            raise UpstreamError(f"DynamoDB delete_document cancelled: {codes}") from exc

    def existing_document_ids(self, workspace_id: str, document_ids: Iterable[str]) -> set[str]:
        """BatchGetItem, 100 distinct keys a call, consistent reads, keys only; unprocessed keys retried."""
        keys = [_doc_key(workspace_id, doc_id) for doc_id in sorted(set(document_ids))]
        prefix = len("DOC#")
        return {str(item["sk"])[prefix:] for item in self._batch_get(keys, projection="pk, sk")}

    def stale_documents(self, status: DocumentStatus, older_than: datetime) -> list[Document]:
        """Documents in ``status`` last updated strictly before ``older_than`` (gsi1), oldest first."""
        items = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :before",
            ExpressionAttributeValues=attribute_values(pk=f"DOCSTATUS#{status.value}", before=timestamp(older_than)),
        )
        return [_document_of(item) for item in items]

    # ------------------------------------------------------------------ feedback

    def put_feedback(self, feedback: Feedback) -> None:
        """One record per (session, message, user): giving feedback again replaces it."""
        with translated_errors("put_feedback"):
            self._client().put_item(TableName=self.table, Item=to_item(_feedback_item(feedback)))

    def list_feedback(self, *, since: datetime | None = None) -> list[Feedback]:
        """Oldest first; ``since`` inclusive."""
        if since is None:
            items = self._query_all(
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues=attribute_values(pk="FEEDBACK"),
            )
        else:
            items = self._query_all(
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk >= :since",
                ExpressionAttributeValues=attribute_values(pk="FEEDBACK", since=timestamp(since)),
            )
        return [_feedback_of(item) for item in items]
