"""The base every DynamoDB adapter stands on: one table, its client, typed errors, exact pages, batches.

Listings return exact pages: the cursor (``quarry.adapters.paging``) holds the key of the page's last
item, checked on the way back in so a cursor cannot be replayed against another listing or partition.
Batch reads and deletes retry what DynamoDB leaves unprocessed, with the shared ``RetryPolicy``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import error_code
from quarry.adapters.dynamodb.codec import Item, from_item, to_item
from quarry.adapters.dynamodb.tables import TABLES, table_name
from quarry.adapters.paging import INVALID_CURSOR, check_limit, decode_cursor, encode_cursor
from quarry.adapters.retry import RetryPolicy, no_jitter
from quarry.errors import InvalidInput, Throttled, UpstreamError

if TYPE_CHECKING:
    import boto3

__all__ = [
    "BATCH_RETRY",
    "CHECK_FAILED",
    "MAX_TRANSACTION_ITEMS",
    "OPTIMISTIC_ATTEMPTS",
    "ClockedTable",
    "Table",
    "cancellation_codes",
    "translated_errors",
]

#: Unprocessed batch items are sent again after 0.05, 0.1, 0.2 ... 1 s, eight calls in all.
BATCH_RETRY = RetryPolicy(attempts=8, base_delay=0.05, max_delay=1.0, jitter=no_jitter)
#: Reads-then-conditional-writes are tried again at once when another writer got in between.
OPTIMISTIC_ATTEMPTS = 4
MAX_TRANSACTION_ITEMS = 100
CHECK_FAILED = "ConditionalCheckFailed"

_THROTTLING = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
_BATCH_GET = 100  # BatchGetItem keys per call
_BATCH_WRITE = 25  # BatchWriteItem requests per call


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
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


def cancellation_codes(exc: ClientError) -> list[str]:
    """Per-item reason codes of a cancelled transaction; re-raises anything else as typed."""
    if error_code(exc) != "TransactionCanceledException":
        with translated_errors("transaction"):
            raise exc
    return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]


class Table:
    """Shared primitives over one table (``TABLES[_spec]``): get, exact-page queries, batch get/delete."""

    _spec: ClassVar[str]

    def __init__(
        self,
        table_prefix: str = "quarry",
        *,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
        retry: RetryPolicy = BATCH_RETRY,
    ) -> None:
        self.table = table_name(table_prefix, TABLES[self._spec].suffix)
        self._client = LazyClient("dynamodb", client=client, session=session, region=region)
        self._retry = retry

    def _get(self, key: Mapping[str, str]) -> Item | None:
        with translated_errors("get"):
            response = self._client().get_item(TableName=self.table, Key=to_item(key), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def _query_all(self, **params: Any) -> Iterator[Item]:
        params["TableName"] = self.table
        while True:
            with translated_errors("query"):
                response = self._client().query(**params)
            yield from (from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    def _query_page(
        self,
        params: Mapping[str, Any],
        *,
        listing: str,
        limit: int,
        cursor: str | None,
        names: Sequence[str],
        scope: Mapping[str, str],
    ) -> tuple[list[Item], str | None]:
        """Exactly ``limit`` items (fewer only at the end) and a cursor iff more exist.

        The cursor is tagged ``listing`` and holds the last item's ``names`` (the table's and the index's
        key attributes); ``scope`` is the partition it must belong to.
        """
        check_limit(limit)
        query: dict[str, Any] = {**params, "TableName": self.table}
        if cursor:
            query["ExclusiveStartKey"] = _start_key(cursor, listing=listing, names=names, scope=scope)
        items: list[Item] = []
        while len(items) <= limit:
            query["Limit"] = limit + 1 - len(items)
            with translated_errors("query"):
                response = self._client().query(**query)
            items.extend(from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            query["ExclusiveStartKey"] = last
        page = items[:limit]
        more = len(items) > limit
        return page, (encode_cursor(listing, *(str(page[-1][name]) for name in names)) if more else None)

    def _batch_get(self, keys: Sequence[Mapping[str, str]], *, projection: str | None = None) -> list[Item]:
        """BatchGetItem, 100 keys a call, consistent reads; unprocessed keys retried, then ``Throttled``."""
        found: list[Item] = []
        for start in range(0, len(keys), _BATCH_GET):
            wanted: dict[str, Any] = {
                "Keys": [to_item(key) for key in keys[start : start + _BATCH_GET]],
                "ConsistentRead": True,
            }
            if projection is not None:
                wanted["ProjectionExpression"] = projection
            request: dict[str, Any] = {self.table: wanted}
            for _ in self._retry.tries():
                with translated_errors("batch get"):
                    response = self._client().batch_get_item(RequestItems=request)
                found.extend(from_item(item) for item in response.get("Responses", {}).get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise Throttled("DynamoDB batch get left keys unprocessed")
        return found

    def _delete_keys(self, keys: Sequence[Mapping[str, str]]) -> None:
        for start in range(0, len(keys), _BATCH_WRITE):
            request: dict[str, Any] = {
                self.table: [{"DeleteRequest": {"Key": to_item(key)}} for key in keys[start : start + _BATCH_WRITE]]
            }
            for _ in self._retry.tries():
                with translated_errors("batch delete"):
                    response = self._client().batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
            else:
                raise Throttled("DynamoDB batch delete left items unprocessed")

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """Raises ClientError (TransactionCanceledException) for the caller to inspect."""
        self._client().transact_write_items(TransactItems=items)

    def _put(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.table, "Item": to_item(values)}}

    def _delete(self, key: Mapping[str, str]) -> dict[str, Any]:
        return {"Delete": {"TableName": self.table, "Key": to_item(key)}}


class ClockedTable(Table):
    """A table whose items expire: reads compare against ``clock`` (DynamoDB's TTL deletes late)."""

    def __init__(
        self,
        table_prefix: str = "quarry",
        *,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
        retry: RetryPolicy = BATCH_RETRY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(table_prefix, client=client, session=session, region=region, retry=retry)
        self._clock = clock


def _start_key(cursor: str, *, listing: str, names: Sequence[str], scope: Mapping[str, str]) -> Item:
    """The ``ExclusiveStartKey`` a cursor of ``listing`` holds; ``InvalidInput`` if forged or out of scope."""
    values = decode_cursor(cursor, listing, [str] * len(names))
    key = dict(zip(names, values, strict=True))
    if any(key[name] != expected for name, expected in scope.items()):
        raise InvalidInput(f"{INVALID_CURSOR}: it belongs to another listing")
    return {name: {"S": value} for name, value in key.items()}
