"""DynamoDB adapters on moto: key design, idempotent registration, exact pages, races, TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from quarry.adapters.dynamodb import DynamoCatalog, DynamoChatHistory, DynamoConnections, create_tables
from quarry.adapters.dynamodb.tables import TABLES, create_table_params
from quarry.adapters.retry import RetryPolicy, no_jitter
from quarry.errors import InvalidInput, Throttled
from quarry.models import (
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
from quarry.ports import Catalog, ChatHistory, Connections

from .conftest import TABLE_PREFIX

pytestmark = pytest.mark.aws

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def catalog(dynamodb: Any) -> DynamoCatalog:
    return DynamoCatalog(TABLE_PREFIX, client=dynamodb)


@pytest.fixture
def history(dynamodb: Any) -> DynamoChatHistory:
    return DynamoChatHistory(TABLE_PREFIX, client=dynamodb)


def _workspace(id: str = "ws1", owner: str = "alice", shared: tuple[str, ...] = (), minutes: int = 0) -> Workspace:
    return Workspace(
        id=id,
        name=f"name-{id}",
        owner=owner,
        embedding_model="all-MiniLM-L6-v2",
        dimensions=384,
        shared_with=shared,
        created_at=T0 + timedelta(minutes=minutes),
    )


def _document(id: str = "d1", ws: str = "ws1", **changes: Any) -> Document:
    values: dict[str, Any] = {
        "id": id,
        "workspace_id": ws,
        "name": f"{id}.pdf",
        "source": DocumentSource.FILE,
        "blob_key": f"{ws}/documents/{id}/{id}.pdf",
        "content_type": "application/pdf",
        "size_bytes": 10,
        "metadata": {"pages": 3, "score": 0.25, "tags": ["a", "b"]},
        "created_at": T0,
        "updated_at": T0,
    }
    return Document(**(values | changes))


# --------------------------------------------------------------------------- tables


def test_tables_follow_the_shared_definitions(dynamodb: Any) -> None:
    assert create_tables(dynamodb, TABLE_PREFIX) == ["qtest-catalog", "qtest-chat", "qtest-connections"]  # idempotent
    catalog = dynamodb.describe_table(TableName="qtest-catalog")["Table"]
    assert catalog["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert sorted(i["IndexName"] for i in catalog["GlobalSecondaryIndexes"]) == ["gsi1", "gsi2"]
    chat = dynamodb.describe_table(TableName="qtest-chat")["Table"]
    assert [i["IndexName"] for i in chat["LocalSecondaryIndexes"]] == ["lsi1"]
    ttl = dynamodb.describe_time_to_live(TableName="qtest-connections")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    params = create_table_params(TABLES["connections"], "x")
    assert params["TableName"] == "x-connections"
    assert params["AttributeDefinitions"] == [
        {"AttributeName": "connection_id", "AttributeType": "S"},
        {"AttributeName": "user_id", "AttributeType": "S"},
    ]


def test_adapters_satisfy_their_ports(catalog: DynamoCatalog, history: DynamoChatHistory, dynamodb: Any) -> None:
    assert isinstance(catalog, Catalog)
    assert isinstance(history, ChatHistory)
    assert isinstance(DynamoConnections(TABLE_PREFIX, client=dynamodb), Connections)


# --------------------------------------------------------------------------- workspaces


def test_workspaces_are_listed_for_owner_and_shared_users(catalog: DynamoCatalog) -> None:
    catalog.put_workspace(_workspace("ws1", "alice", shared=("bob",), minutes=1))
    catalog.put_workspace(_workspace("ws2", "bob", minutes=2))

    assert catalog.get_workspace("ws1") == _workspace("ws1", "alice", shared=("bob",), minutes=1)
    assert [w.id for w in catalog.list_workspaces("alice")] == ["ws1"]
    assert [w.id for w in catalog.list_workspaces("bob")] == ["ws1", "ws2"]
    assert catalog.list_workspaces("carol") == []
    assert catalog.get_workspace("nope") is None


def test_unsharing_removes_the_membership(catalog: DynamoCatalog) -> None:
    catalog.put_workspace(_workspace("ws1", "alice", shared=("bob", "carol")))
    catalog.put_workspace(_workspace("ws1", "alice", shared=("carol",)))

    assert catalog.list_workspaces("bob") == []
    assert [w.id for w in catalog.list_workspaces("carol")] == ["ws1"]


def test_concurrent_workspace_update_is_retried_not_lost(catalog: DynamoCatalog, dynamodb: Any) -> None:
    catalog.put_workspace(_workspace("ws1", "alice"))
    rival = DynamoCatalog(TABLE_PREFIX, client=boto3.client("dynamodb", region_name="us-east-1"))
    raced: list[bool] = []

    def rival_writes_first(**_: Any) -> None:
        if not raced:
            raced.append(True)
            rival.put_workspace(_workspace("ws1", "alice", shared=("bob",)))

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", rival_writes_first)
    try:
        catalog.put_workspace(_workspace("ws1", "alice", shared=("carol",)))
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", rival_writes_first)

    # Last writer wins on the workspace, and memberships agree with it (bob's was removed on retry).
    assert catalog.get_workspace("ws1").shared_with == ("carol",)  # type: ignore[union-attr]
    assert catalog.list_workspaces("bob") == []
    assert [w.id for w in catalog.list_workspaces("carol")] == ["ws1"]


def test_delete_workspace_removes_everything_under_it(catalog: DynamoCatalog) -> None:
    catalog.put_workspace(_workspace("ws1", "alice", shared=("bob",)))
    catalog.register_document(_document("d1"), idempotency_key="k1")
    catalog.register_document(_document("d2"))
    catalog.put_workspace(_workspace("ws2", "alice"))
    catalog.register_document(_document("d3", ws="ws2"))

    catalog.delete_workspace("ws1")
    catalog.delete_workspace("ws1")

    assert catalog.get_workspace("ws1") is None
    assert catalog.list_documents("ws1").items == []
    assert [w.id for w in catalog.list_workspaces("alice")] == ["ws2"]
    assert catalog.list_workspaces("bob") == []
    # the idempotency record went too: the same upload registers afresh
    assert catalog.register_document(_document("d1"), idempotency_key="k1")[1] is True


# --------------------------------------------------------------------------- documents


def test_register_document_is_idempotent_on_its_key(catalog: DynamoCatalog) -> None:
    first = _document("d1")
    again = _document("d1", name="renamed.pdf")

    assert catalog.register_document(first, idempotency_key="upload#etag1") == (first, True)
    assert catalog.register_document(again, idempotency_key="upload#etag1") == (first, False)
    assert catalog.get_document("ws1", "d1") == first
    assert catalog.get_document("ws1", "d1").metadata == {"pages": 3, "score": 0.25, "tags": ["a", "b"]}  # type: ignore[union-attr]


def test_a_taken_document_id_is_not_overwritten(catalog: DynamoCatalog) -> None:
    catalog.register_document(_document("d1", size_bytes=10), idempotency_key="k#etag1")

    assert catalog.register_document(_document("d1", size_bytes=20), idempotency_key="k#etag2") == (
        _document("d1", size_bytes=10),
        False,
    )
    # the refused registration left no record behind: its key is still free for another document
    assert catalog.register_document(_document("d2"), idempotency_key="k#etag2") == (_document("d2"), True)


def test_a_stale_record_is_dropped(catalog: DynamoCatalog, dynamodb: Any) -> None:
    """A record whose document vanished without it (e.g. removed by hand) does not block the key."""
    catalog.register_document(_document("d1"), idempotency_key="k1")
    dynamodb.delete_item(TableName="qtest-catalog", Key={"pk": {"S": "WS#ws1"}, "sk": {"S": "DOC#d1"}})

    assert catalog.register_document(_document("d2"), idempotency_key="k1") == (_document("d2"), True)
    assert catalog.register_document(_document("d3"), idempotency_key="k1") == (_document("d2"), False)


def test_registration_after_delete_creates_again(catalog: DynamoCatalog) -> None:
    catalog.register_document(_document("d1"), idempotency_key="k1")
    catalog.delete_document("ws1", "d1")
    catalog.delete_document("ws1", "d1")  # idempotent

    assert catalog.get_document("ws1", "d1") is None
    assert catalog.register_document(_document("d1"), idempotency_key="k1") == (_document("d1"), True)


def test_racing_registrations_create_exactly_once(catalog: DynamoCatalog, dynamodb: Any) -> None:
    """A rival registers the same upload between our read and our transaction."""
    rival = DynamoCatalog(TABLE_PREFIX, client=boto3.client("dynamodb", region_name="us-east-1"))
    theirs = _document("d1", name="theirs.pdf")
    results: list[tuple[Document, bool]] = []

    def rival_registers_first(**_: Any) -> None:
        if not results:
            results.append(rival.register_document(theirs, idempotency_key="k1"))

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", rival_registers_first)
    try:
        ours = catalog.register_document(_document("d1", name="ours.pdf"), idempotency_key="k1")
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", rival_registers_first)

    assert results == [(theirs, True)]
    assert ours == (theirs, False)
    assert catalog.get_document("ws1", "d1") == theirs


def test_put_document_keeps_the_idempotency_record(catalog: DynamoCatalog) -> None:
    catalog.register_document(_document("d1"), idempotency_key="k1")
    catalog.put_document(_document("d1", name="edited.pdf", content_type=None))

    stored = catalog.get_document("ws1", "d1")
    assert (stored.name, stored.content_type) == ("edited.pdf", None)  # type: ignore[union-attr]
    assert catalog.register_document(_document("d1"), idempotency_key="k1") == (stored, False)


def test_status_updates_only_touch_existing_documents(catalog: DynamoCatalog, dynamodb: Any) -> None:
    assert catalog.set_document_status("ws1", "ghost", DocumentStatus.PROCESSED) is None
    assert "Item" not in dynamodb.get_item(
        TableName="qtest-catalog", Key={"pk": {"S": "WS#ws1"}, "sk": {"S": "DOC#ghost"}}
    )

    catalog.register_document(_document("d1"))
    failed = catalog.set_document_status("ws1", "d1", DocumentStatus.ERROR, reason="parse failed")
    assert failed is not None
    assert (failed.status, failed.status_reason, failed.updated_at > T0) == (DocumentStatus.ERROR, "parse failed", True)

    done = catalog.set_document_status("ws1", "d1", DocumentStatus.PROCESSED, chunk_count=7)
    assert (done.status, done.status_reason, done.chunk_count) == (DocumentStatus.PROCESSED, None, 7)  # type: ignore[union-attr]
    assert catalog.get_document("ws1", "d1") == done


def test_list_documents_pages_exactly(catalog: DynamoCatalog) -> None:
    for i in range(5):  # created in reverse id order: listings follow creation time, like the SQL catalog
        catalog.register_document(_document(f"d{i}", created_at=T0 - timedelta(seconds=i)))
    catalog.register_document(_document("other", ws="ws2"))

    first = catalog.list_documents("ws1", limit=2)
    second = catalog.list_documents("ws1", limit=2, cursor=first.cursor)
    third = catalog.list_documents("ws1", limit=2, cursor=second.cursor)

    assert [d.id for d in first.items + second.items + third.items] == ["d4", "d3", "d2", "d1", "d0"]
    assert first.cursor and second.cursor and third.cursor is None
    exact = catalog.list_documents("ws1", limit=5)
    assert len(exact.items) == 5 and exact.cursor is None


def test_list_documents_by_status(catalog: DynamoCatalog) -> None:
    for i in range(4):
        catalog.register_document(_document(f"d{i}"))
    for i in (0, 2, 3):
        catalog.set_document_status("ws1", f"d{i}", DocumentStatus.PROCESSING)

    processing = catalog.list_documents("ws1", status=DocumentStatus.PROCESSING, limit=2)
    rest = catalog.list_documents("ws1", status=DocumentStatus.PROCESSING, limit=2, cursor=processing.cursor)

    assert [d.id for d in processing.items + rest.items] == ["d0", "d2", "d3"]
    assert rest.cursor is None
    assert [d.id for d in catalog.list_documents("ws1", status=DocumentStatus.CREATED).items] == ["d1"]
    assert catalog.list_documents("ws1", status=DocumentStatus.ERROR).items == []


def test_bad_cursors_and_limits_are_typed_errors(catalog: DynamoCatalog) -> None:
    for i in range(3):
        catalog.register_document(_document(f"d{i}"))
        catalog.register_document(_document(f"d{i}", ws="ws2"))
    cursor = catalog.list_documents("ws1", limit=1).cursor
    assert cursor is not None

    with pytest.raises(InvalidInput, match="another listing"):
        catalog.list_documents("ws2", limit=1, cursor=cursor)
    with pytest.raises(InvalidInput):
        catalog.list_documents("ws1", limit=1, cursor=cursor, status=DocumentStatus.CREATED)
    for garbage in ("%%%", "bm90IGpzb24", "eyJwayI6IDF9", cursor[:-3]):
        with pytest.raises(InvalidInput):
            catalog.list_documents("ws1", cursor=garbage)
    with pytest.raises(InvalidInput):
        catalog.list_documents("ws1", limit=0)


def test_stale_documents_are_found_by_status_and_age(catalog: DynamoCatalog) -> None:
    catalog.register_document(_document("old"))
    catalog.register_document(_document("fresh"))
    catalog.register_document(_document("other", ws="ws2"))
    for doc, ws in (("old", "ws1"), ("fresh", "ws1"), ("other", "ws2")):
        catalog.set_document_status(ws, doc, DocumentStatus.PROCESSING)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    catalog.put_document(_document("fresh", status=DocumentStatus.PROCESSING, updated_at=cutoff + timedelta(minutes=5)))

    stale = catalog.stale_documents(DocumentStatus.PROCESSING, cutoff)

    assert sorted((d.workspace_id, d.id) for d in stale) == [("ws1", "old"), ("ws2", "other")]
    assert catalog.stale_documents(DocumentStatus.ERROR, cutoff) == []


# --------------------------------------------------------------------------- feedback


def test_feedback_is_one_record_per_user_and_message(catalog: DynamoCatalog) -> None:
    catalog.put_feedback(Feedback("s1", "m1", "alice", 1, created_at=T0))
    catalog.put_feedback(Feedback("s1", "m1", "alice", -1, comment="wrong", created_at=T0 + timedelta(hours=1)))
    catalog.put_feedback(Feedback("s1", "m2", "bob", 1, created_at=T0 + timedelta(hours=2)))

    everything = catalog.list_feedback()
    assert [(f.user, f.message_id, f.rating) for f in everything] == [("alice", "m1", -1), ("bob", "m2", 1)]
    since = catalog.list_feedback(since=T0 + timedelta(hours=2))
    assert [f.message_id for f in since] == ["m2"]
    assert everything[0] == Feedback("s1", "m1", "alice", -1, comment="wrong", created_at=T0 + timedelta(hours=1))


# --------------------------------------------------------------------------- chat history


def _message(i: int, session: str = "s1") -> Message:
    return Message(
        session_id=session,
        id=f"m{i}",
        role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
        content=f"turn {i}",
        created_at=T0 + timedelta(seconds=i),
    )


def test_sessions_newest_first_with_pages(history: DynamoChatHistory) -> None:
    for i in range(3):
        history.put_session(Session(f"s{i}", "alice", "ws1", f"t{i}", created_at=T0, updated_at=T0 + timedelta(i)))
    history.put_session(Session("x", "bob", None, "bob's", created_at=T0, updated_at=T0))

    first = history.list_sessions("alice", limit=2)
    rest = history.list_sessions("alice", limit=2, cursor=first.cursor)

    assert [s.id for s in first.items + rest.items] == ["s2", "s1", "s0"]
    assert rest.cursor is None
    assert history.get_session("x") == Session("x", "bob", None, "bob's", created_at=T0, updated_at=T0)
    assert history.get_session("nope") is None
    with pytest.raises(InvalidInput):
        history.list_sessions("bob", cursor=first.cursor)


def test_messages_one_item_each_oldest_first(history: DynamoChatHistory, dynamodb: Any) -> None:
    history.put_session(Session("s1", "alice", "ws1", "t"))
    for i in reversed(range(5)):
        history.add_message(_message(i))
    history.add_message(_message(0, session="s2"))
    cited = Message(
        "s1",
        "answer",
        Role.ASSISTANT,
        "see [1]",
        citations=(Citation(1, "d1:0", "d1", "Doc", "text", 0, 4, 0.9),),
        created_at=T0 + timedelta(seconds=10),
        metadata={"usage": {"prompt_tokens": 3}},
    )
    history.add_message(cited)

    page = history.list_messages("s1", limit=4)
    rest = history.list_messages("s1", limit=4, cursor=page.cursor)

    assert [m.id for m in page.items + rest.items] == ["m0", "m1", "m2", "m3", "m4", "answer"]
    assert rest.cursor is None
    assert history.get_message("s1", "answer") == cited
    assert history.get_message("s2", "answer") is None
    assert [m.id for m in history.recent_messages("s1", limit=2)] == ["m4", "answer"]
    items = dynamodb.query(
        TableName="qtest-chat",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "SESSION#s1"}},
    )["Items"]
    assert len(items) == 7  # the session and one item per message


def test_a_retimed_message_replaces_its_earlier_copy(history: DynamoChatHistory) -> None:
    """The sort key holds the time, so upserting by id must move the item, not add a second one."""
    history.add_message(_message(1))
    history.add_message(_message(2))
    retimed = Message("s1", "m1", Role.ASSISTANT, "final", created_at=T0 + timedelta(seconds=5))

    history.add_message(retimed)

    assert [(m.id, m.content) for m in history.list_messages("s1").items] == [("m2", "turn 2"), ("m1", "final")]
    assert history.get_message("s1", "m1") == retimed


def test_delete_session_takes_its_messages(history: DynamoChatHistory) -> None:
    history.put_session(Session("s1", "alice", None, "t"))
    for i in range(30):  # more than one batch_write_item
        history.add_message(_message(i))
    history.put_session(Session("s2", "alice", None, "t"))
    history.add_message(_message(0, session="s2"))

    history.delete_session("s1")

    assert history.get_session("s1") is None
    assert history.list_messages("s1").items == []
    assert [m.id for m in history.list_messages("s2").items] == ["m0"]


# --------------------------------------------------------------------------- connections


def test_connections_by_id_and_user_expire(dynamodb: Any) -> None:
    now = [1_000_000.0]
    connections = DynamoConnections(TABLE_PREFIX, client=dynamodb, clock=lambda: now[0])
    connections.add("c1", "alice", ttl_seconds=60)
    connections.add("c2", "alice", ttl_seconds=600)
    connections.add("c3", "bob")

    assert connections.user_of("c1") == "alice"
    assert connections.of_user("alice") == ["c1", "c2"]
    item = dynamodb.get_item(TableName="qtest-connections", Key={"connection_id": {"S": "c1"}})["Item"]
    assert item["expires_at"] == {"N": str(1_000_000 + 60)}

    now[0] += 120  # c1's TTL passed; DynamoDB may not have deleted it yet
    assert connections.user_of("c1") is None
    assert connections.of_user("alice") == ["c2"]

    connections.remove("c2")
    connections.remove("c2")
    assert connections.of_user("alice") == []
    assert connections.user_of("unknown") is None
    with pytest.raises(InvalidInput):
        connections.add("", "alice")


# --------------------------------------------------------------------------- batches


def _doc_keys(*ids: str) -> list[dict[str, Any]]:
    return [{"pk": {"S": "WS#ws1"}, "sk": {"S": f"DOC#{doc_id}"}} for doc_id in ids]


def _batch_get(keys: list[dict[str, Any]]) -> dict[str, Any]:
    return {"RequestItems": {"qtest-catalog": {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "pk, sk"}}}


def test_unprocessed_batch_keys_are_asked_for_again_after_the_policys_backoff() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    waits: list[float] = []
    catalog = DynamoCatalog(TABLE_PREFIX, client=client, retry=RetryPolicy(attempts=3, sleep=waits.append))
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_item",
            {
                "Responses": {"qtest-catalog": _doc_keys("a")},
                "UnprocessedKeys": {"qtest-catalog": {"Keys": _doc_keys("b"), "ConsistentRead": True}},
            },
            _batch_get(_doc_keys("a", "b", "c")),
        )
        stub.add_response(
            "batch_get_item",
            {"Responses": {"qtest-catalog": _doc_keys("b")}},
            {"RequestItems": {"qtest-catalog": {"Keys": _doc_keys("b"), "ConsistentRead": True}}},
        )
        assert catalog.existing_document_ids("ws1", ["c", "a", "b", "a"]) == {"a", "b"}
        stub.assert_no_pending_responses()
    assert len(waits) == 1


def test_keys_left_unprocessed_after_every_attempt_are_throttled() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, base_delay=0.05, max_delay=1.0, jitter=no_jitter, sleep=waits.append)
    catalog = DynamoCatalog(TABLE_PREFIX, client=client, retry=policy)
    left = {"qtest-catalog": {"Keys": _doc_keys("a"), "ConsistentRead": True}}
    with Stubber(client) as stub:
        stub.add_response("batch_get_item", {"UnprocessedKeys": left}, _batch_get(_doc_keys("a")))
        for _ in range(2):
            stub.add_response("batch_get_item", {"UnprocessedKeys": left}, {"RequestItems": left})
        with pytest.raises(Throttled, match="unprocessed"):
            catalog.existing_document_ids("ws1", ["a"])
        stub.assert_no_pending_responses()
    assert waits == [0.05, 0.1]  # no wait after the last attempt
