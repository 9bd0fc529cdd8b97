"""DynamoDB table definitions as data: the one place both ``create_tables`` and the CDK stack read.

Three tables, named ``{prefix}-{suffix}`` (``Settings.table_prefix``, default ``quarry``),
all on-demand (PAY_PER_REQUEST), every key attribute a string (``S``) except the TTL.

``catalog`` (``catalog.DynamoCatalog``), single-table, overloaded keys::

    item         pk                       sk              gsi1pk / gsi1sk
    workspace    WS#{ws}                  #META
    membership   USER#{user}              WS#{ws}         (one per owner and each shared user)
    document     WS#{ws}                  DOC#{doc}       DOCSTATUS#{status} / {updated}#{ws}#{doc}
    idempotency  IDEM#{ws}#{key}          #IDEM           (written with its document in one transaction)
    feedback     FB#{session}#{message}   USER#{user}     FEEDBACK / {created}#{session}#{message}#{user}

    documents also carry lsi1sk = DOC#{created}#{doc}, and gsi2pk = WS#{ws}#STATUS#{status},
    gsi2sk = DOC#{created}#{doc}.
    lsi1: a workspace's documents in creation order (``list_documents``), like the SQL catalog.
    gsi1: documents by status oldest-first (``stale_documents``) and feedback by time.
    gsi2: one workspace's documents of one status (``list_documents(status=...)``, exact pages).

    Summary jobs (``summaries.DynamoSummaryStore``) share this table: ``SUMMARIES#{ws}`` / ``JOB#{job}``
    (lsi1sk = JOB#{created}#{job}: newest first backwards; gsi1pk = SUMMARY#SCHEDULED, gsi1sk = {ws}#{job}
    while scheduled) and result parts too large for the job item, ``SUMMARIES#{ws}`` /
    ``RESULT#{job}#{hash}#{n}``.

``chat`` (``chat_history.DynamoChatHistory``)::

    session         SESSION#{session}          #META              OWNER#{owner} / {updated}#{session}
    message         SESSION#{session}          MSG#{created}#{id} lsi1sk = MSGID#{id}
    message claim   SESSION#{session}          MSGID#{id}         (``add_message_if_new``: one write per id)

    gsi1: an owner's sessions, newest first. lsi1: a message by id inside its session.
    Usage counters (``usage.DynamoUsageLedger``) share this table: ``USAGE#USER#{user}`` /
    ``USAGE#WS#{ws}`` with ``DAY#{day}#{model}`` (ADD-updated numbers), ``USAGE#MSG#{message}`` / ``#USAGE``.

``connections`` (``connections.DynamoConnections``; ``cancellations.DynamoCancellations`` keeps its
flags there too, as ``connection_id = cancel#{session}`` with no ``user_id``)::

    connection_id (pk), user_id, connected_at, expires_at (TTL, whole epoch seconds),
    expires_at_ms (the exact expiry reads compare against: TTL deletion lags by up to days),
    token_expires_at_ms (the `exp` of the token the connection was opened with; ws_message checks it)
    by-user GSI on user_id.

Timestamps in keys are UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, so they sort as strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["TABLES", "IndexSpec", "KeyAttr", "TableSpec", "create_tables", "table_name"]


@dataclass(frozen=True, slots=True)
class KeyAttr:
    name: str
    type: Literal["S", "N", "B"] = "S"


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A GSI (``partition_key`` set) or an LSI (``partition_key`` None: the table's own)."""

    name: str
    sort_key: KeyAttr | None
    partition_key: KeyAttr | None = None
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"


@dataclass(frozen=True, slots=True)
class TableSpec:
    suffix: str
    partition_key: KeyAttr
    sort_key: KeyAttr | None = None
    global_indexes: tuple[IndexSpec, ...] = ()
    local_indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None

    def name(self, prefix: str) -> str:
        return table_name(prefix, self.suffix)

    def attributes(self) -> list[KeyAttr]:
        """Every attribute used in a key of the table or its indexes (AttributeDefinitions)."""
        seen: dict[str, KeyAttr] = {}
        keys = [self.partition_key, self.sort_key]
        for index in (*self.global_indexes, *self.local_indexes):
            keys += [index.partition_key, index.sort_key]
        for key in keys:
            if key is not None:
                seen.setdefault(key.name, key)
        return list(seen.values())


def table_name(prefix: str, suffix: str) -> str:
    return f"{prefix}-{suffix}" if prefix else suffix


_PK, _SK = KeyAttr("pk"), KeyAttr("sk")

TABLES: Mapping[str, TableSpec] = {
    "catalog": TableSpec(
        suffix="catalog",
        partition_key=_PK,
        sort_key=_SK,
        global_indexes=(
            IndexSpec("gsi1", partition_key=KeyAttr("gsi1pk"), sort_key=KeyAttr("gsi1sk")),
            IndexSpec("gsi2", partition_key=KeyAttr("gsi2pk"), sort_key=KeyAttr("gsi2sk")),
        ),
        local_indexes=(IndexSpec("lsi1", sort_key=KeyAttr("lsi1sk")),),
    ),
    "chat": TableSpec(
        suffix="chat",
        partition_key=_PK,
        sort_key=_SK,
        global_indexes=(IndexSpec("gsi1", partition_key=KeyAttr("gsi1pk"), sort_key=KeyAttr("gsi1sk")),),
        local_indexes=(IndexSpec("lsi1", sort_key=KeyAttr("lsi1sk")),),
    ),
    "connections": TableSpec(
        suffix="connections",
        partition_key=KeyAttr("connection_id"),
        global_indexes=(IndexSpec("by-user", partition_key=KeyAttr("user_id"), sort_key=None),),
        ttl_attribute="expires_at",
    ),
}


def _key_schema(partition: KeyAttr, sort: KeyAttr | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


def create_table_params(spec: TableSpec, prefix: str) -> dict[str, Any]:
    """``CreateTable`` arguments for one spec (on-demand billing, SSE on)."""
    params: dict[str, Any] = {
        "TableName": spec.name(prefix),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a.name, "AttributeType": a.type} for a in spec.attributes()],
        "KeySchema": _key_schema(spec.partition_key, spec.sort_key),
        "SSESpecification": {"Enabled": True},
    }
    if spec.global_indexes:
        params["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(index.partition_key or spec.partition_key, index.sort_key),
                "Projection": {"ProjectionType": index.projection},
            }
            for index in spec.global_indexes
        ]
    if spec.local_indexes:
        params["LocalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(spec.partition_key, index.sort_key),
                "Projection": {"ProjectionType": index.projection},
            }
            for index in spec.local_indexes
        ]
    return params


def create_tables(client: Any, prefix: str) -> list[str]:
    """Create every table in ``TABLES`` (skipping existing ones) and wait for them; returns their names.

    Used by the tests and the local moto setup; in AWS the CDK stack builds the same
    tables from ``TABLES``.
    """
    names = []
    for spec in TABLES.values():
        name = spec.name(prefix)
        names.append(name)
        if _exists(client, name):
            continue
        client.create_table(**create_table_params(spec, prefix))
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if spec.ttl_attribute:
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
            )
    return names


def _exists(client: Any, name: str) -> bool:
    try:
        client.describe_table(TableName=name)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True
