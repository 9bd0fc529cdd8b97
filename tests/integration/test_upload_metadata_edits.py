"""An edited upload's metadata against its own upload event, on the real local adapters (embedded PostgreSQL,
pgvector, MiniLM, the ingest_trigger handler fed the local gateway's events, the workflow inline).

The object keeps the metadata it was uploaded with; once its version is ingested, the catalog is what says
the document's metadata. A redelivered event, or a rerun of the same version, must not put the object's
back over a user's edit, neither in the catalog nor in the chunks search filters on. A new upload of the
name is a new version and brings its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from quarry.adapters.blob_keys import object_metadata_fields
from quarry.filters import Filter
from quarry.local.events import s3_object_created, sqs_event
from quarry.local.handlers import LocalContext, load_handler
from quarry.metadata import USER_METADATA_KEY, MetadataValue
from quarry.models import Document, DocumentStatus, SearchMode, SearchRequest, Workspace
from quarry.services.documents import sequencer_after
from quarry.services.workspaces import WorkspaceSpec
from quarry.wiring import Services, install_services, reset_services

pytestmark = pytest.mark.integration

USER = "metadata-editor"
TIDES = "Spring tides reach 4.2 metres at the Plimsk harbour mouth twice a month, at new and full moon."
TIDES_V2 = TIDES + " Neap tides, a week later, rise only 1.1 metres."
QUERY = "how high are the spring tides at Plimsk harbour"

Trigger = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def trigger(services: Services) -> Iterator[Trigger]:
    """The ingest_trigger Lambda handler, as the local bus invokes it with an SQS batch (installed once: its
    teardown closes the services, which the module shares)."""
    install_services(services)
    handler = load_handler("ingest_trigger")
    try:
        yield lambda event: handler(event, LocalContext("ingest_trigger"))
    finally:
        reset_services()


def _upload(services: Services, ws: Workspace, name: str, data: bytes, metadata: dict[str, Any]) -> str:
    """A presigned upload as the browser and the local gateway complete it: the object stored with the form's
    ``x-amz-meta-*`` fields; returns the body of its ObjectCreated event (an SQS message, to deliver)."""
    _, target = services.documents.upload_url(USER, ws.id, name, "text/plain", metadata=metadata)
    info = services.adapters.blob_store.put(
        target.key, data, content_type="text/plain", metadata=object_metadata_fields(target.fields)
    )
    return json.dumps(s3_object_created("local-uploads", info.key, info.size, info.etag))


def _deliver(trigger: Trigger, body: str, *, receive_count: int = 1) -> None:
    assert trigger(sqs_event([("m-upload", body, receive_count)], "ingest")) == {"batchItemFailures": []}


def _document(services: Services, ws: Workspace, name: str) -> Document:
    [document] = [d for d in services.documents.list_documents(USER, ws.id).items if d.name == name]
    return document


def _found_with(services: Services, ws: Workspace, filters: dict[str, Any]) -> list[dict[str, MetadataValue]]:
    """The user metadata of every chunk a filtered search returns (both rankings: the filter runs in each)."""
    request = SearchRequest(
        workspace_id=ws.id, query=QUERY, mode=SearchMode.HYBRID, top_k=20, filters=Filter.parse(filters)
    )
    return [hit.chunk.metadata[USER_METADATA_KEY] for hit in services.search.search(USER, request).hits]


def test_an_edit_survives_a_redelivered_upload_event_and_a_rerun_of_the_same_version(
    services: Services, trigger: Trigger
) -> None:
    ws = services.workspaces.create(USER, WorkspaceSpec(name="edit-then-redelivery"))
    event = _upload(services, ws, "tides.txt", TIDES.encode(), {"product": "X", "rating": 4})
    _deliver(trigger, event)
    uploaded = _document(services, ws, "tides.txt")
    assert uploaded.status is DocumentStatus.PROCESSED, uploaded.status_reason
    assert uploaded.metadata[USER_METADATA_KEY] == {"product": "X", "rating": 4}

    services.documents.set_metadata(USER, ws.id, uploaded.id, {"product": "Z", "rating": None, "checked": True})
    edited = {"product": "Z", "checked": True}

    _deliver(trigger, event, receive_count=2)  # SQS delivers the same message again
    services.ingestion.process(ws.id, uploaded.id)  # the same version's run again (a retried job)
    services.ingestion_steps.set_error(ws.id, uploaded.id, "timed out")  # the sweeper gave up on a run...
    _deliver(trigger, event, receive_count=3)  # (a failed document is no reason to take the event as new)
    services.documents.retry(USER, ws.id, uploaded.id)  # ...and the user retries it

    document = _document(services, ws, "tides.txt")
    assert document.status is DocumentStatus.PROCESSED, document.status_reason
    assert document.metadata[USER_METADATA_KEY] == edited
    assert document.metadata["s3_sequencer"] == uploaded.metadata["s3_sequencer"]  # still the same version
    found = _found_with(services, ws, {"product": "Z"})
    assert found and all(fields == edited for fields in found)
    assert _found_with(services, ws, {"product": "X"}) == []
    assert _found_with(services, ws, {"rating": 4}) == []


def test_a_new_upload_of_the_name_takes_its_own_metadata_over_an_edit(services: Services, trigger: Trigger) -> None:
    ws = services.workspaces.create(USER, WorkspaceSpec(name="edit-then-new-upload"))
    first = _upload(services, ws, "tides.txt", TIDES.encode(), {"product": "X"})
    _deliver(trigger, first)
    document = _document(services, ws, "tides.txt")
    services.documents.set_metadata(USER, ws.id, document.id, {"product": "Z"})

    second = _upload(services, ws, "tides.txt", TIDES_V2.encode(), {"product": "Y", "rating": 5})
    _deliver(trigger, second)
    _deliver(trigger, first, receive_count=2)  # the first upload's event, late: an older version, ignored

    replaced = _document(services, ws, "tides.txt")
    assert replaced.status is DocumentStatus.PROCESSED, replaced.status_reason
    assert sequencer_after(replaced.metadata["s3_sequencer"], document.metadata["s3_sequencer"])
    assert replaced.metadata[USER_METADATA_KEY] == {"product": "Y", "rating": 5}
    found = _found_with(services, ws, {"product": "Y"})
    assert found and all(fields == {"product": "Y", "rating": 5} for fields in found)
    assert _found_with(services, ws, {"product": "Z"}) == []
