"""Data integrity: a document deleted while it is processing stays deleted, search never serves chunks of a
document the catalog does not hold, and an old S3 event arriving after a newer upload of the same name
changes nothing.

Locally on the real adapters (embedded PostgreSQL, pgvector, MiniLM, the ingest_trigger handler fed the
local gateway's events); in AWS terms with DynamoDB, S3 and Step Functions in moto.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from quarry.adapters.dynamodb import DynamoCatalog, create_tables
from quarry.adapters.s3 import S3BlobStore
from quarry.adapters.stepfunctions import StepFunctionsWorkflow
from quarry.local.events import s3_object_created, sqs_event
from quarry.local.handlers import LocalContext, load_handler, load_module
from quarry.models import Document, DocumentSource, DocumentStatus, SearchMode, SearchRequest, Workspace
from quarry.ports import DocumentParser, ParsedDocument, WorkflowName
from quarry.services.documents import UploadKey, document_id_for
from quarry.services.models_registry import ModelRegistry
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.platform_fixtures import model_registry, services

__all__ = ["model_registry", "services"]

USER = "integrity-user"
FACT = "The Plimsk observatory opened in 1911 and its telescope mirror is 2.4 metres wide."


class _DeleteWhileParsing:
    """The real parser; the document's deletion request arrives while it runs (the probe's timing, made exact)."""

    def __init__(self, parser: DocumentParser, delete: Callable[[], None]) -> None:
        self._parser, self._delete = parser, delete

    def parse(self, data: bytes, *, filename: str, content_type: str | None = None) -> ParsedDocument:
        parsed = self._parser.parse(data, filename=filename, content_type=content_type)
        self._delete()
        return parsed


def _search(services: Services, workspace_id: str, query: str, mode: SearchMode = SearchMode.HYBRID) -> list[Any]:
    request = SearchRequest(workspace_id=workspace_id, query=query, top_k=10, mode=mode)
    return services.search.search(USER, request).hits


def test_a_document_deleted_while_processing_does_not_come_back(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = services.workspaces.create(USER, WorkspaceSpec(name="deleted-while-processing"))
    doc_id = document_id_for(ws.id, "text:observatory")
    parser = services.document_pipeline._parser  # the real parser, wrapped to time the deletion
    monkeypatch.setattr(
        services.document_pipeline,
        "_parser",
        _DeleteWhileParsing(parser, lambda: services.documents.delete(USER, ws.id, doc_id)),
    )

    services.documents.add_text(USER, ws.id, title="observatory", text=FACT)  # the workflow runs inline

    assert services.adapters.catalog.get_document(ws.id, doc_id) is None
    assert services.adapters.vector_index.count(ws.id, document_id=doc_id) == 0
    assert _search(services, ws.id, "Plimsk observatory telescope mirror") == []
    assert services.documents.list_documents(USER, ws.id).items == []


def test_search_never_returns_chunks_of_a_document_the_catalog_does_not_hold(services: Services) -> None:
    """A purge that stopped after deleting the catalog record leaves chunks behind: they are not served."""
    ws = services.workspaces.create(USER, WorkspaceSpec(name="orphans"))
    kept = services.documents.add_text(USER, ws.id, title="kept", text=FACT)
    orphan = services.documents.add_text(USER, ws.id, title="orphan", text=FACT.replace("Plimsk", "Tollan"))
    assert services.adapters.vector_index.count(ws.id, document_id=orphan.id) > 0

    services.adapters.catalog.delete_document(ws.id, orphan.id)  # the index step never ran

    for mode in SearchMode:
        hits = _search(services, ws.id, "Tollan observatory telescope mirror", mode)
        assert hits and {h.chunk.document_id for h in hits} == {kept.id}, mode


@pytest.fixture
def trigger(services: Services) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    install_services(services)
    handler = load_handler("ingest_trigger")
    try:
        yield lambda event: handler(event, LocalContext("ingest_trigger"))  # type: ignore[no-any-return]
    finally:
        reset_services()


def test_an_old_upload_event_after_a_newer_upload_changes_nothing(
    services: Services, trigger: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    ws = services.workspaces.create(USER, WorkspaceSpec(name="out-of-order"))
    key = UploadKey(ws.id, document_id_for(ws.id, "notes.txt"), "notes.txt").key
    blobs = services.adapters.blob_store
    old = blobs.put(key, b"The first draft says the mirror is 1.2 metres wide.", content_type="text/plain")
    old_event = s3_object_created("local-uploads", key, old.size, old.etag)  # the gateway's events, in order
    new = blobs.put(key, FACT.encode(), content_type="text/plain")
    new_event = s3_object_created("local-uploads", key, new.size, new.etag)

    trigger(sqs_event([("m-new", json.dumps(new_event), 1)], "ingest"))
    trigger(sqs_event([("m-old", json.dumps(old_event), 2)], "ingest"))  # late: redelivered after the new one

    document = services.adapters.catalog.get_document(ws.id, document_id_for(ws.id, "notes.txt"))
    assert document is not None
    assert document.content_hash == new.etag
    assert document.status is DocumentStatus.PROCESSED


# =========================================================================== AWS: moto

BUCKET = "quarry-uploads-integrity"
PREFIX = "qinteg"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        ddb, s3, sfn = (session.client(name) for name in ("dynamodb", "s3", "stepfunctions"))
        s3.create_bucket(Bucket=BUCKET)
        create_tables(ddb, PREFIX)
        definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
        machine = sfn.create_state_machine(
            name="quarry-ingest", definition=definition, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        catalog = DynamoCatalog(PREFIX, client=ddb)
        built = build_services(
            Settings(data_dir=tmp_path),
            overrides={
                "catalog": catalog,
                "blob_store": S3BlobStore(BUCKET, client=s3),
                "workflow": StepFunctionsWorkflow({WorkflowName.INGEST: machine}, client=sfn),
                "vector_index": object(),
                "models": ModelRegistry(),
            },
        )
        install_services(built)
        try:
            yield {"catalog": catalog, "sfn": sfn, "machine": machine}
        finally:
            reset_services()


def _s3_record(key: str, etag: str, sequencer: str, time: str) -> dict[str, Any]:
    """One SQS message as S3 sends it (tests/events/sqs_s3_object_created.json's shape)."""
    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": time,
                "eventName": "ObjectCreated:Post",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {"key": key, "size": 120, "eTag": etag, "sequencer": sequencer},
                },
            }
        ]
    }
    return sqs_event([(f"m-{sequencer}", json.dumps(body), 1)], "quarry-ingest")


def test_aws_ingest_trigger_ignores_an_out_of_order_s3_event(aws: dict[str, Any]) -> None:
    ws = Workspace(id="ws-integrity", name="w", owner=USER, embedding_model="m", dimensions=4)
    aws["catalog"].put_workspace(ws)
    doc_id = document_id_for(ws.id, "policy.txt")
    key = UploadKey(ws.id, doc_id, "policy.txt").key
    handler = load_handler("ingest_trigger")
    # Sequencers of one key differ in length: the shorter is left-padded before comparing (9 < 0A0).
    newer = _s3_record(key, "etag-new", "0055AED6DCD90281F0", "2026-11-22T05:00:01.000Z")
    older = _s3_record(key, "etag-old", "55AED6DCD90281E5", "2026-11-22T05:00:02.000Z")  # a later clock, still older

    assert handler(newer, LocalContext("ingest_trigger")) == {"batchItemFailures": []}
    assert handler(older, LocalContext("ingest_trigger")) == {"batchItemFailures": []}
    document = aws["catalog"].get_document(ws.id, doc_id)
    assert document is not None and document.content_hash == "etag-new"  # not back to the old version
    assert handler(newer, LocalContext("ingest_trigger")) == {"batchItemFailures": []}  # redelivered

    assert len(aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]) == 1
    document = aws["catalog"].get_document(ws.id, doc_id)
    assert document is not None and document.metadata["s3_sequencer"] == "0055AED6DCD90281F0"


def test_aws_a_newer_event_of_the_same_bytes_as_an_older_version_still_wins(aws: dict[str, Any]) -> None:
    """v1 (A), v2 (B), v3 (A again) delivered v1, v3, v2: the document ends on v3, never on v2."""
    ws = Workspace(id="ws-integrity-aba", name="w", owner=USER, embedding_model="m", dimensions=4)
    aws["catalog"].put_workspace(ws)
    doc_id = document_id_for(ws.id, "a.txt")
    key = UploadKey(ws.id, doc_id, "a.txt").key
    handler = load_handler("ingest_trigger")
    for etag, sequencer in (("etag-a", "0055AED6DCD9028100"), ("etag-a", "0055AED6DCD9028300")):
        handler(_s3_record(key, etag, sequencer, "2026-11-22T05:00:00.000Z"), LocalContext("ingest_trigger"))
    handler(_s3_record(key, "etag-b", "0055AED6DCD9028200", "2026-11-22T05:00:00.000Z"), LocalContext("t"))

    document = aws["catalog"].get_document(ws.id, doc_id)
    assert document is not None and document.content_hash == "etag-a"
    assert document.metadata["s3_sequencer"] == "0055AED6DCD9028300"


def _serialized(params: dict[str, Any]) -> str:
    return json.dumps(params.get("ExpressionAttributeValues", {}), sort_keys=True)


def test_aws_two_triggers_applying_an_old_and_a_new_event_at_once_end_on_the_new_one(aws: dict[str, Any]) -> None:
    """Two ingest_trigger invocations, one per event, both read v1 before either writes; the newer one's
    write lands first and the older one's is held until then (its DynamoDB UpdateItem delayed through
    botocore's own event hooks). The older write is conditional on v1 still being stored: it loses, the
    older event decides again on v3, and changes nothing."""
    ws = Workspace(id="ws-integrity-race", name="w", owner=USER, embedding_model="m", dimensions=4)
    catalog, client = aws["catalog"], aws["catalog"]._client()
    catalog.put_workspace(ws)
    doc_id = document_id_for(ws.id, "race.txt")
    key = UploadKey(ws.id, doc_id, "race.txt").key
    handler = load_handler("ingest_trigger")
    assert handler(_s3_record(key, "etag-v1", "0055AED6DCD9028100", "2026-11-22T05:00:00.000Z"), LocalContext("t")) == {
        "batchItemFailures": []
    }
    older_is_writing, newer_wrote = threading.Event(), threading.Event()

    def hold_writes(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        values = _serialized(params)
        if "etag-v2" in values:  # the older event's write: only after the newer one's
            older_is_writing.set()
            assert newer_wrote.wait(timeout=30)
        elif "etag-v3" in values:
            context["newer_write"] = True

    def newer_done(context: dict[str, Any], **_: Any) -> None:
        if context.get("newer_write"):
            newer_wrote.set()

    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", hold_writes)
    client.meta.events.register("after-call.dynamodb.UpdateItem", newer_done)
    record_handler = load_module("ingest_trigger").record_handler  # one invocation each (no shared batch state)
    events = {
        "older": _s3_record(key, "etag-v2", "0055AED6DCD9028200", "2026-11-22T05:00:01.000Z"),
        "newer": _s3_record(key, "etag-v3", "0055AED6DCD9028300", "2026-11-22T05:00:02.000Z"),
    }
    failures: list[BaseException] = []

    def invoke(event: dict[str, Any], after: threading.Event | None) -> None:
        try:
            # The newer invocation reads once the older one has read v1 and is about to write (moto is not
            # thread-safe: the two never call it at the same instant).
            assert after is None or after.wait(timeout=30)
            record_handler(SQSRecord(event["Records"][0]))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [
        threading.Thread(target=invoke, args=(events["older"], None)),
        threading.Thread(target=invoke, args=(events["newer"], older_is_writing)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    client.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", hold_writes)
    client.meta.events.unregister("after-call.dynamodb.UpdateItem", newer_done)

    assert failures == [] and older_is_writing.is_set() and newer_wrote.is_set()
    document = catalog.get_document(ws.id, doc_id)
    assert document is not None and document.content_hash == "etag-v3"
    assert document.metadata["s3_sequencer"] == "0055AED6DCD9028300"
    assert len(aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]) == 2  # v1 and v3


def test_aws_the_same_bytes_uploaded_again_after_an_error_start_a_new_run(aws: dict[str, Any]) -> None:
    ws = Workspace(id="ws-integrity-retry", name="w", owner=USER, embedding_model="m", dimensions=4)
    catalog = aws["catalog"]
    catalog.put_workspace(ws)
    doc_id = document_id_for(ws.id, "flaky.txt")
    key = UploadKey(ws.id, doc_id, "flaky.txt").key
    handler = load_handler("ingest_trigger")
    first = _s3_record(key, "etag-same", "0055AED6DCD9028100", "2026-11-22T05:00:00.000Z")
    handler(first, LocalContext("ingest_trigger"))
    catalog.set_document_status(ws.id, doc_id, DocumentStatus.ERROR, reason="the parser crashed")

    handler(first, LocalContext("ingest_trigger"))  # redelivered: still a no-op
    document = catalog.get_document(ws.id, doc_id)
    assert document is not None and document.status is DocumentStatus.ERROR
    again = _s3_record(key, "etag-same", "0055AED6DCD9028200", "2026-11-22T05:07:00.000Z")
    assert handler(again, LocalContext("ingest_trigger")) == {"batchItemFailures": []}
    handler(again, LocalContext("ingest_trigger"))  # and that one redelivered

    document = catalog.get_document(ws.id, doc_id)
    assert document is not None and document.status is DocumentStatus.CREATED
    assert document.metadata["s3_sequencer"] == "0055AED6DCD9028200"
    assert len(aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]) == 2


def test_aws_the_same_bytes_after_an_error_restart_a_document_that_recorded_no_version(aws: dict[str, Any]) -> None:
    """A document registered before upload versions were recorded (an item of that time, written as it was)."""
    ws = Workspace(id="ws-integrity-legacy", name="w", owner=USER, embedding_model="m", dimensions=4)
    catalog = aws["catalog"]
    catalog.put_workspace(ws)
    doc_id = document_id_for(ws.id, "old.txt")
    key = UploadKey(ws.id, doc_id, "old.txt").key
    legacy = Document(
        id=doc_id,
        workspace_id=ws.id,
        name="old.txt",
        source=DocumentSource.FILE,
        status=DocumentStatus.ERROR,
        status_reason="the parser crashed",
        blob_key=key,
        content_type="text/plain",
        size_bytes=120,
        content_hash="etag-same",
    )
    assert catalog.register_document(legacy, idempotency_key=f"{key}#etag-same")[1]
    handler = load_handler("ingest_trigger")

    again = _s3_record(key, "etag-same", "0055AED6DCD9028200", "2026-11-22T05:07:00.000Z")
    assert handler(again, LocalContext("ingest_trigger")) == {"batchItemFailures": []}
    assert handler(again, LocalContext("ingest_trigger")) == {"batchItemFailures": []}  # redelivered

    document = catalog.get_document(ws.id, doc_id)
    assert document is not None and document.status is DocumentStatus.CREATED
    assert len(aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]) == 1


def test_aws_a_newer_event_replaces_an_item_that_records_its_sequencer_only_in_the_metadata(
    aws: dict[str, Any],
) -> None:
    """Items written before the top-level ``s3_sequencer`` attribute: the conditional write still matches them."""
    ws = Workspace(id="ws-integrity-old-item", name="w", owner=USER, embedding_model="m", dimensions=4)
    catalog, client = aws["catalog"], aws["catalog"]._client()
    catalog.put_workspace(ws)
    doc_id = document_id_for(ws.id, "kept.txt")
    key = UploadKey(ws.id, doc_id, "kept.txt").key
    handler = load_handler("ingest_trigger")
    handler(_s3_record(key, "etag-v1", "0055AED6DCD9028100", "2026-11-22T05:00:00.000Z"), LocalContext("t"))
    client.update_item(  # as the item was written before: the sequencer inside the metadata JSON only
        TableName=catalog.table,
        Key={"pk": {"S": f"WS#{ws.id}"}, "sk": {"S": f"DOC#{doc_id}"}},
        UpdateExpression="REMOVE s3_sequencer",
    )

    older = _s3_record(key, "etag-v0", "0055AED6DCD9028000", "2026-11-22T04:59:00.000Z")
    newer = _s3_record(key, "etag-v2", "0055AED6DCD9028200", "2026-11-22T05:01:00.000Z")
    assert handler(older, LocalContext("ingest_trigger")) == {"batchItemFailures": []}
    assert handler(newer, LocalContext("ingest_trigger")) == {"batchItemFailures": []}

    document = catalog.get_document(ws.id, doc_id)
    assert document is not None and document.content_hash == "etag-v2"
    assert document.metadata["s3_sequencer"] == "0055AED6DCD9028200"
