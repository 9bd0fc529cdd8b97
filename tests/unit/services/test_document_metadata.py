"""User metadata on every way a document comes in, and edited afterwards (``DocumentService``), on the fakes with
the real pipeline: the catalog keeps it in ``metadata["fields"]``, every chunk carries the same, an upload carries
it in its object's metadata, a new version given none keeps the document's, and an edit reaches the chunks in place.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from quarry.errors import Conflict, InvalidInput, NotFound
from quarry.filters import Filter
from quarry.metadata import USER_METADATA_KEY
from quarry.models import Document, DocumentStatus
from quarry.ports import WorkflowName
from quarry.protocol import DocumentOut
from quarry.services.documents import (
    FIELDS_OBJECT_METADATA,
    MAX_UPLOAD_FIELDS_BYTES,
    UploadKey,
    document_id_for,
)
from tests.unit.services.ingestion_fixtures import (
    OWNER,
    READER,
    STRANGER,
    IngestionRig,
    Page,
    StaticSite,
    build_rig,
)

TIDES = "Spring tides reach 4.2 metres at the harbour mouth twice a month."
BIRDS = "Terns nest on the breakwater every May and leave in August."
META_FIELD = "x-amz-meta-" + FIELDS_OBJECT_METADATA


@pytest.fixture
def rig() -> IngestionRig:
    return build_rig()


def _chunk_fields(rig: IngestionRig, document_id: str) -> list[dict[str, Any]]:
    chunks = rig.index.workspaces[rig.workspace.id].documents.get(document_id, [])
    return [chunk.metadata.get(USER_METADATA_KEY, {}) for chunk in chunks]


def _processed_text(rig: IngestionRig, title: str, text: str, metadata: dict[str, Any] | None) -> Document:
    document = rig.documents.add_text(OWNER, rig.workspace.id, title=title, text=text, metadata=metadata)
    rig.ingestion.process(rig.workspace.id, document.id)
    stored = rig.catalog.get_document(rig.workspace.id, document.id)
    assert stored is not None and stored.status is DocumentStatus.PROCESSED, stored
    return stored


def _upload(rig: IngestionRig, name: str, data: bytes, metadata: dict[str, Any] | None, seq: str) -> Document:
    """A presigned upload as the browser completes it: the object is stored with the form's x-amz-meta fields,
    then its ObjectCreated event is registered."""
    _, target = rig.documents.upload_url(OWNER, rig.workspace.id, name, "text/plain", metadata=metadata)
    object_metadata = {
        field[len("x-amz-meta-") :]: value for field, value in target.fields.items() if field.startswith("x-amz-meta-")
    }
    info = rig.blobs.put(target.key, data, content_type="text/plain", metadata=object_metadata)
    document, _ = rig.documents.register_upload(
        target.key, etag=info.etag, size=info.size, content_type="text/plain", sequencer=seq
    )
    return document


# --------------------------------------------------------------------------- uploads


def test_an_upload_url_signs_the_checked_metadata_into_the_object(rig: IngestionRig) -> None:
    _, target = rig.documents.upload_url(
        OWNER, rig.workspace.id, "r.txt", "text/plain", metadata={"product": "X", "published": "2024-05-01T10:00+02:00"}
    )

    assert json.loads(target.fields[META_FIELD]) == {"product": "X", "published": "2024-05-01T08:00:00Z"}
    _, plain = rig.documents.upload_url(OWNER, rig.workspace.id, "r.txt", "text/plain")
    assert META_FIELD not in plain.fields  # no metadata given: the upload says nothing about it


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"1st": "x"}, "metadata.1st: keys start with a letter"),
        ({"rating": {"stars": 4}}, "metadata.rating: values are a string"),
        ({"source": "x"}, "metadata.source: 'source' is a system field"),
        ({"a": "é" * 400, "b": "x" * 900}, f"at most {MAX_UPLOAD_FIELDS_BYTES} bytes as JSON on an upload"),
    ],
    ids=["bad key", "bad value", "reserved key", "over S3's 2 KB"],
)
def test_upload_metadata_is_refused_naming_the_field(rig: IngestionRig, metadata: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rig.documents.upload_url(OWNER, rig.workspace.id, "r.txt", "text/plain", metadata=metadata)


def test_the_upload_event_sets_the_objects_metadata_on_the_document_and_its_chunks(rig: IngestionRig) -> None:
    document = _upload(rig, "tides.txt", TIDES.encode(), {"product": "X", "rating": 4}, "01")
    rig.ingestion.process(rig.workspace.id, document.id)

    stored = rig.catalog.get_document(rig.workspace.id, document.id)
    assert stored is not None and stored.metadata[USER_METADATA_KEY] == {"product": "X", "rating": 4}
    assert stored.metadata["s3_sequencer"] == "01"  # the system fields stay beside it
    assert _chunk_fields(rig, document.id) == [{"product": "X", "rating": 4}]


def test_a_new_upload_without_metadata_keeps_the_documents_and_one_with_metadata_replaces_it(
    rig: IngestionRig,
) -> None:
    first = _upload(rig, "tides.txt", TIDES.encode(), {"product": "X"}, "01")
    rig.ingestion.process(rig.workspace.id, first.id)

    kept = _upload(rig, "tides.txt", (TIDES + " Neap tides are lower.").encode(), None, "02")
    assert kept.metadata[USER_METADATA_KEY] == {"product": "X"} and kept.metadata["s3_sequencer"] == "02"
    rig.ingestion.process(rig.workspace.id, kept.id)
    assert _chunk_fields(rig, kept.id) == [{"product": "X"}] * len(_chunk_fields(rig, kept.id))

    replaced = _upload(rig, "tides.txt", TIDES.encode(), {"product": "Y"}, "03")
    assert replaced.metadata[USER_METADATA_KEY] == {"product": "Y"}
    cleared = _upload(rig, "tides.txt", BIRDS.encode(), {}, "04")  # an explicit {} clears it
    assert cleared.metadata[USER_METADATA_KEY] == {}


def test_a_redelivered_upload_event_does_not_undo_an_edit(rig: IngestionRig) -> None:
    document = _upload(rig, "tides.txt", TIDES.encode(), {"product": "X"}, "01")
    rig.ingestion.process(rig.workspace.id, document.id)
    rig.documents.set_metadata(OWNER, rig.workspace.id, document.id, {"product": "Z"})

    info = rig.blobs.head(document.blob_key or "")
    assert info is not None
    again, started = rig.documents.register_upload(
        document.blob_key or "", etag=info.etag, size=info.size, content_type="text/plain", sequencer="01"
    )

    assert started is False and again.metadata[USER_METADATA_KEY] == {"product": "Z"}


def test_object_metadata_that_is_not_valid_is_ignored(rig: IngestionRig) -> None:
    key = UploadKey(rig.workspace.id, document_id_for(rig.workspace.id, "odd.txt"), "odd.txt").key
    rig.blobs.put(key, b"Some text about tides.", metadata={FIELDS_OBJECT_METADATA: '{"1bad": 3}'})

    document, started = rig.documents.register_upload(key, etag="e", size=22, content_type="text/plain")

    assert started and USER_METADATA_KEY not in document.metadata


# --------------------------------------------------------------------------- text, Q&A, files, websites


def test_text_and_qna_documents_carry_their_metadata_to_every_chunk(rig: IngestionRig) -> None:
    text = _processed_text(rig, "Tides", TIDES, {"topic": "tides", "tags": ["sea", "moon"]})
    qna = rig.documents.add_qna(
        OWNER, rig.workspace.id, question="When do terns nest?", answer=BIRDS, metadata={"topic": "birds"}
    )
    rig.ingestion.process(rig.workspace.id, qna.id)

    assert text.metadata[USER_METADATA_KEY] == {"topic": "tides", "tags": ["sea", "moon"]}
    assert _chunk_fields(rig, text.id) == [{"topic": "tides", "tags": ["sea", "moon"]}]
    stored_qna = rig.catalog.get_document(rig.workspace.id, qna.id)
    assert stored_qna is not None
    assert stored_qna.metadata == {"question": "When do terns nest?", "fields": {"topic": "birds"}}
    assert _chunk_fields(rig, qna.id) and all(f == {"topic": "birds"} for f in _chunk_fields(rig, qna.id))


def test_the_same_text_with_other_metadata_changes_it_in_place_without_a_new_run(rig: IngestionRig) -> None:
    first = _processed_text(rig, "Tides", TIDES, {"topic": "tides"})
    runs = len(rig.workflow.started(WorkflowName.INGEST))

    again = rig.documents.add_text(OWNER, rig.workspace.id, title="Tides", text=TIDES, metadata={"topic": "sea"})
    unchanged = rig.documents.add_text(OWNER, rig.workspace.id, title="Tides", text=TIDES)  # none given: kept

    assert again.id == first.id and again.status is DocumentStatus.PROCESSED
    assert unchanged.metadata[USER_METADATA_KEY] == {"topic": "sea"}
    assert _chunk_fields(rig, first.id) == [{"topic": "sea"}]
    assert len(rig.workflow.started(WorkflowName.INGEST)) == runs


def test_a_file_added_directly_gets_its_metadata_and_keeps_it_when_none_is_given(rig: IngestionRig) -> None:
    document, created = rig.documents.add_file(OWNER, rig.workspace.id, "t.txt", TIDES.encode(), metadata={"n": 1})
    rig.ingestion.process(rig.workspace.id, document.id)

    same, created_again = rig.documents.add_file(OWNER, rig.workspace.id, "t.txt", TIDES.encode(), metadata={"n": 2})
    kept, _ = rig.documents.add_file(OWNER, rig.workspace.id, "t.txt", TIDES.encode())

    assert created and not created_again
    assert same.metadata[USER_METADATA_KEY] == {"n": 2} == kept.metadata[USER_METADATA_KEY]
    assert _chunk_fields(rig, document.id) == [{"n": 2}]


def test_a_crawl_sets_its_metadata_on_every_page() -> None:
    pages = [Page("https://example.org/tides", TIDES.encode()), Page("https://example.org/birds", BIRDS.encode())]
    rig = build_rig(crawler=StaticSite(pages))
    site = rig.documents.add_website(
        OWNER, rig.workspace.id, {"url": "https://example.org/"}, metadata={"site": "harbour"}
    )

    rig.website.crawl(rig.workspace, site)

    assert site.metadata == {"url": "https://example.org/", "fields": {"site": "harbour"}}
    for page in pages:
        page_id = document_id_for(rig.workspace.id, f"page:{page.url}")
        stored = rig.catalog.get_document(rig.workspace.id, page_id)
        assert stored is not None and stored.metadata == {"url": page.url, "fields": {"site": "harbour"}}
        assert _chunk_fields(rig, page_id) == [{"site": "harbour"}]


def test_editing_a_websites_metadata_edits_its_pages_too() -> None:
    pages = [Page("https://example.org/tides", TIDES.encode())]
    rig = build_rig(crawler=StaticSite(pages))
    site = rig.documents.add_website(OWNER, rig.workspace.id, {"url": "https://example.org/"}, metadata={"a": 1})
    rig.website.crawl(rig.workspace, site)
    rig.catalog.set_document_status(rig.workspace.id, site.id, DocumentStatus.PROCESSED)
    page_id = document_id_for(rig.workspace.id, f"page:{pages[0].url}")
    rig.documents.set_metadata(OWNER, rig.workspace.id, page_id, {"own": True})  # a page's own key

    rig.documents.set_metadata(OWNER, rig.workspace.id, site.id, {"a": None, "b": "x"})

    page = rig.catalog.get_document(rig.workspace.id, page_id)
    assert page is not None and page.metadata[USER_METADATA_KEY] == {"own": True, "b": "x"}
    assert _chunk_fields(rig, page_id) == [{"own": True, "b": "x"}]


# --------------------------------------------------------------------------- editing


def test_an_edit_is_a_merge_patch_on_the_catalog_and_the_chunks(rig: IngestionRig) -> None:
    document = _processed_text(rig, "Tides", TIDES, {"product": "X", "rating": 4, "old": True})
    runs = len(rig.workflow.started(WorkflowName.INGEST))

    updated = rig.documents.set_metadata(
        READER, rig.workspace.id, document.id, {"rating": 5, "old": None, "published": "2024-05-01"}
    )

    expected = {"product": "X", "rating": 5, "published": "2024-05-01"}
    assert updated.metadata[USER_METADATA_KEY] == expected and updated.updated_at >= document.updated_at
    stored = rig.catalog.get_document(rig.workspace.id, document.id)
    assert stored is not None and stored.metadata[USER_METADATA_KEY] == expected
    assert stored.status is DocumentStatus.PROCESSED and stored.chunk_count == document.chunk_count
    assert _chunk_fields(rig, document.id) == [expected]
    assert len(rig.workflow.started(WorkflowName.INGEST)) == runs  # nothing re-indexed
    hits = rig.index.keyword(rig.workspace.id, "tides", k=5, filters=Filter.parse({"rating": {"gte": 5}}))
    assert [h.chunk.document_id for h in hits] == [document.id]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bad key": 1}, "metadata.bad key: keys start with a letter"),
        ({"rating": [1, 2]}, "metadata.rating: lists hold strings only"),
        ({"document_id": "x"}, "metadata.document_id: 'document_id' is a system field"),
        ({f"k{i}": i for i in range(40)}, "metadata: at most 32 keys"),
    ],
    ids=["bad key", "bad value", "reserved", "too many keys"],
)
def test_a_bad_edit_is_refused_naming_the_field_and_changes_nothing(
    rig: IngestionRig, changes: dict[str, Any], message: str
) -> None:
    document = _processed_text(rig, "Tides", TIDES, {"product": "X"})

    with pytest.raises(InvalidInput, match=message):
        rig.documents.set_metadata(OWNER, rig.workspace.id, document.id, changes)

    assert _chunk_fields(rig, document.id) == [{"product": "X"}]


def test_an_edit_by_a_stranger_or_of_an_unknown_document_is_not_found(rig: IngestionRig) -> None:
    document = _processed_text(rig, "Tides", TIDES, None)

    with pytest.raises(NotFound):
        rig.documents.set_metadata(STRANGER, rig.workspace.id, document.id, {"a": 1})
    with pytest.raises(NotFound):
        rig.documents.set_metadata(OWNER, rig.workspace.id, "nope", {"a": 1})


def test_a_document_being_processed_is_not_edited(rig: IngestionRig) -> None:
    document = rig.documents.add_text(OWNER, rig.workspace.id, title="Tides", text=TIDES)

    with pytest.raises(Conflict, match="can be edited once it is processed"):
        rig.documents.set_metadata(OWNER, rig.workspace.id, document.id, {"a": 1})


def test_a_retry_keeps_the_metadata(rig: IngestionRig) -> None:
    document = rig.documents.add_text(OWNER, rig.workspace.id, title="Tides", text=TIDES, metadata={"a": 1})
    rig.catalog.set_document_status(rig.workspace.id, document.id, DocumentStatus.ERROR, reason="boom")

    retried = rig.documents.retry(OWNER, rig.workspace.id, document.id)
    rig.ingestion.process(rig.workspace.id, document.id)

    assert retried.metadata[USER_METADATA_KEY] == {"a": 1}
    assert _chunk_fields(rig, document.id) == [{"a": 1}]


def test_the_api_shows_user_metadata_apart_from_the_system_fields(rig: IngestionRig) -> None:
    document = _upload(rig, "tides.txt", TIDES.encode(), {"product": "X"}, "0A")

    out = DocumentOut.of(document)

    assert out.metadata == {"product": "X"}
    assert out.system == {"s3_sequencer": "0A"}
    assert DocumentOut.of(rig.documents.add_text(OWNER, rig.workspace.id, title="t", text="x")).metadata == {}
