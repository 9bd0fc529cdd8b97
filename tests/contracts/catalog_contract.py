"""What every ``Catalog`` (workspaces, documents, feedback) must do. Supply a fixture ``catalog``."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from quarry.errors import InvalidInput
from quarry.models import (
    ChunkingConfig,
    Document,
    DocumentSource,
    DocumentStatus,
    Feedback,
    Workspace,
    new_id,
    utcnow,
)
from quarry.ports import UPLOAD_SEQUENCER, Catalog


def make_workspace(owner: str | None = None, **overrides: Any) -> Workspace:
    fields: dict[str, Any] = {
        "id": new_id(),
        "name": "Research notes",
        "owner": owner or f"user-{new_id()[:8]}",
        "embedding_model": "all-MiniLM-L6-v2",
        "dimensions": 384,
    }
    return Workspace(**(fields | overrides))


def make_document(workspace: Workspace, **overrides: Any) -> Document:
    fields: dict[str, Any] = {
        "id": new_id(),
        "workspace_id": workspace.id,
        "name": "report.pdf",
        "source": DocumentSource.FILE,
    }
    return Document(**(fields | overrides))


def _all_pages(catalog: Catalog, workspace_id: str, *, limit: int, **kwargs: Any) -> list[list[Document]]:
    pages: list[list[Document]] = []
    cursor: str | None = None
    while True:
        page = catalog.list_documents(workspace_id, limit=limit, cursor=cursor, **kwargs)
        pages.append(page.items)
        cursor = page.cursor
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not terminate"


class CatalogContract:
    #: Whether concurrent writes through the backend are a real race (moto's DynamoDB is not atomic across threads).
    threads_race_for_real = True

    # ------------------------------------------------------------------ workspaces

    def test_is_a_catalog(self, catalog: Catalog) -> None:
        assert isinstance(catalog, Catalog)

    def test_workspace_round_trips_every_field(self, catalog: Catalog) -> None:
        workspace = make_workspace(
            chunking=ChunkingConfig(size=128, overlap=16),
            hybrid=False,
            reranker="cross-encoder",
            shared_with=("bob", "carol"),
            created_at=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        )
        catalog.put_workspace(workspace)
        loaded = catalog.get_workspace(workspace.id)
        assert loaded == workspace
        assert loaded is not None and loaded.created_at.utcoffset() == timedelta(0)

    def test_missing_workspace_is_none(self, catalog: Catalog) -> None:
        assert catalog.get_workspace(new_id()) is None

    def test_put_workspace_overwrites(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        renamed = replace(workspace, name="Renamed", shared_with=("dave",))
        catalog.put_workspace(renamed)
        assert catalog.get_workspace(workspace.id) == renamed

    def test_list_workspaces_returns_owned_and_shared(self, catalog: Catalog) -> None:
        alice, bob = f"alice-{new_id()}", f"bob-{new_id()}"
        owned = make_workspace(alice)
        shared = make_workspace(bob, shared_with=(alice,))
        private = make_workspace(bob)
        for workspace in (owned, shared, private):
            catalog.put_workspace(workspace)
        assert {w.id for w in catalog.list_workspaces(alice)} == {owned.id, shared.id}
        assert {w.id for w in catalog.list_workspaces(bob)} == {shared.id, private.id}
        assert catalog.list_workspaces(f"nobody-{new_id()}") == []

    def test_unsharing_removes_access(self, catalog: Catalog) -> None:
        alice = f"alice-{new_id()}"
        workspace = make_workspace(shared_with=(alice,))
        catalog.put_workspace(workspace)
        catalog.put_workspace(replace(workspace, shared_with=()))
        assert catalog.list_workspaces(alice) == []

    def test_delete_workspace_deletes_its_documents_only(self, catalog: Catalog) -> None:
        doomed, kept = make_workspace(), make_workspace()
        catalog.put_workspace(doomed)
        catalog.put_workspace(kept)
        gone = make_document(doomed)
        stays = make_document(kept)
        catalog.register_document(gone)
        catalog.register_document(stays)

        catalog.delete_workspace(doomed.id)

        assert catalog.get_workspace(doomed.id) is None
        assert catalog.get_document(doomed.id, gone.id) is None
        assert catalog.list_documents(doomed.id).items == []
        assert catalog.get_document(kept.id, stays.id) == stays
        catalog.delete_workspace(doomed.id)  # idempotent

    # ------------------------------------------------------------------ documents

    def test_document_round_trips_every_field(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(
            workspace,
            source=DocumentSource.WEBPAGE,
            status=DocumentStatus.PROCESSING,
            status_reason="queued",
            blob_key=f"{workspace.id}/report.pdf",
            content_type="application/pdf",
            size_bytes=123_456_789_012,
            content_hash="ab" * 32,
            metadata={"lang": "en", "pages": 3, "tags": ["a", "b"], "nested": {"x": 1.5, "ok": True}},
            parent_id=new_id(),
            chunk_count=7,
            created_at=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            updated_at=datetime(2024, 1, 2, 3, 4, 6, 7, tzinfo=UTC),
        )
        stored, created = catalog.register_document(document)
        assert created and stored == document
        assert catalog.get_document(workspace.id, document.id) == document

    def test_missing_document_is_none(self, catalog: Catalog) -> None:
        assert catalog.get_document(new_id(), new_id()) is None

    def test_register_is_idempotent_on_the_key(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        first = make_document(workspace, name="a.txt")
        again = make_document(workspace, name="a.txt")  # a retried event: new id, same key

        stored, created = catalog.register_document(first, idempotency_key="bucket/a.txt/etag1")
        assert created and stored == first
        stored, created = catalog.register_document(again, idempotency_key="bucket/a.txt/etag1")
        assert not created and stored == first

        assert catalog.get_document(workspace.id, again.id) is None
        assert [d.id for d in catalog.list_documents(workspace.id).items] == [first.id]

    def test_register_with_a_new_key_creates(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        one, two = make_document(workspace), make_document(workspace)
        assert catalog.register_document(one, idempotency_key="k/etag1")[1]
        assert catalog.register_document(two, idempotency_key="k/etag2")[1]
        assert {d.id for d in catalog.list_documents(workspace.id).items} == {one.id, two.id}

    def test_register_without_key_is_idempotent_on_the_id(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(workspace)
        assert catalog.register_document(document) == (document, True)
        stored, created = catalog.register_document(replace(document, name="changed.pdf"))
        assert not created and stored == document

    def test_idempotency_keys_are_scoped_to_the_workspace(self, catalog: Catalog) -> None:
        one, two = make_workspace(), make_workspace()
        catalog.put_workspace(one)
        catalog.put_workspace(two)
        assert catalog.register_document(make_document(one), idempotency_key="same-key")[1]
        assert catalog.register_document(make_document(two), idempotency_key="same-key")[1]

    def test_put_document_replaces(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(workspace)
        catalog.register_document(document, idempotency_key="put-key")
        changed = replace(document, name="renamed.pdf", metadata={"v": 2}, chunk_count=3)
        catalog.put_document(changed)
        assert catalog.get_document(workspace.id, document.id) == changed
        # the key still points at the document
        assert catalog.register_document(make_document(workspace), idempotency_key="put-key") == (changed, False)

    def test_put_document_if_writes_when_the_stored_sequencer_is_the_expected_one(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(workspace, metadata={"lang": "en"})  # records no sequencer
        catalog.register_document(document, idempotency_key="cas-key")
        first = replace(document, content_hash="v1", metadata={UPLOAD_SEQUENCER: "0A1", "lang": "en"})
        assert catalog.put_document_if(first, expected_sequencer=None)
        assert catalog.get_document(workspace.id, document.id) == first
        second = replace(document, content_hash="v2", metadata={UPLOAD_SEQUENCER: "0A2"}, chunk_count=4)
        assert catalog.put_document_if(second, expected_sequencer="0A1")
        assert catalog.get_document(workspace.id, document.id) == second
        unversioned = replace(document, content_hash="v3", metadata={})  # a version may record none
        assert catalog.put_document_if(unversioned, expected_sequencer="0A2")
        assert catalog.get_document(workspace.id, document.id) == unversioned
        # the key still points at the document
        assert catalog.register_document(make_document(workspace), idempotency_key="cas-key") == (unversioned, False)

    def test_put_document_if_loses_to_a_writer_that_read_the_same_version(self, catalog: Catalog) -> None:
        """Two events read version 01; the one for 03 writes first: the one for 02 must not overwrite it."""
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        v1 = make_document(workspace, content_hash="v1", metadata={UPLOAD_SEQUENCER: "01"})
        catalog.register_document(v1)
        v3 = replace(v1, content_hash="v3", metadata={UPLOAD_SEQUENCER: "03"})
        v2 = replace(v1, content_hash="v2", metadata={UPLOAD_SEQUENCER: "02"})

        assert catalog.put_document_if(v3, expected_sequencer="01")
        assert not catalog.put_document_if(v2, expected_sequencer="01")  # read 01, but 03 is stored now
        assert not catalog.put_document_if(v2, expected_sequencer=None)  # 03 is not "none recorded" either
        assert catalog.get_document(workspace.id, v1.id) == v3

    def test_put_document_if_expecting_a_sequencer_loses_to_an_unversioned_document(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(workspace, content_hash="v1")
        catalog.register_document(document)
        assert not catalog.put_document_if(
            replace(document, content_hash="v2", metadata={UPLOAD_SEQUENCER: "02"}), expected_sequencer="01"
        )
        assert catalog.get_document(workspace.id, document.id) == document

    def test_put_document_if_writes_nothing_for_a_missing_document(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(workspace, metadata={UPLOAD_SEQUENCER: "01"})
        assert not catalog.put_document_if(document, expected_sequencer=None)
        assert not catalog.put_document_if(document, expected_sequencer="01")
        assert catalog.get_document(workspace.id, document.id) is None

    def test_put_document_if_expecting_a_status_loses_to_a_status_change(self, catalog: Catalog) -> None:
        """A metadata edit read the document as failed; a retry made it ``created``: the edit must not write
        ``error`` back over it. Both the sequencer and the status have to match."""
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        failed = make_document(workspace, metadata={UPLOAD_SEQUENCER: "01"}, status=DocumentStatus.ERROR)
        catalog.register_document(failed)
        edited = replace(failed, metadata={UPLOAD_SEQUENCER: "01", "fields": {"product": "Z"}})

        retried = catalog.set_document_status(workspace.id, failed.id, DocumentStatus.CREATED)

        assert retried is not None
        assert not catalog.put_document_if(edited, expected_sequencer="01", expected_status=DocumentStatus.ERROR)
        assert catalog.get_document(workspace.id, failed.id) == retried
        assert not catalog.put_document_if(
            replace(edited, status=DocumentStatus.CREATED),
            expected_sequencer="02",
            expected_status=DocumentStatus.CREATED,
        )  # the status matches, the version does not
        assert catalog.get_document(workspace.id, failed.id) == retried
        again = replace(edited, status=DocumentStatus.CREATED, status_reason=None)
        assert catalog.put_document_if(again, expected_sequencer="01", expected_status=DocumentStatus.CREATED)
        assert catalog.get_document(workspace.id, failed.id) == again
        # no status expected: any status will do (a new version replaces the document whatever its state)
        assert catalog.put_document_if(replace(again, status=DocumentStatus.PROCESSED), expected_sequencer="01")

        unversioned = make_document(workspace, status=DocumentStatus.PROCESSED)  # records no sequencer
        catalog.register_document(unversioned)
        tagged = replace(unversioned, metadata={"fields": {"product": "Z"}})
        assert not catalog.put_document_if(tagged, expected_sequencer=None, expected_status=DocumentStatus.ERROR)
        assert catalog.get_document(workspace.id, unversioned.id) == unversioned
        assert catalog.put_document_if(tagged, expected_sequencer=None, expected_status=DocumentStatus.PROCESSED)
        assert catalog.get_document(workspace.id, unversioned.id) == tagged

    def test_put_document_if_has_one_winner_among_concurrent_writers(self, catalog: Catalog) -> None:
        """Writers that all read version 01 race on it: exactly one write lands, and it is the one stored."""
        if not self.threads_race_for_real:
            pytest.skip("the backend's emulator does not make a conditional write atomic across threads")
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        v1 = make_document(workspace, metadata={UPLOAD_SEQUENCER: "01"})
        catalog.register_document(v1)
        candidates = [replace(v1, content_hash=f"v{n}", metadata={UPLOAD_SEQUENCER: f"1{n}"}) for n in range(6)]
        start = threading.Barrier(len(candidates))
        won: dict[str, bool] = {}

        def write(document: Document) -> None:
            start.wait(timeout=10)
            won[str(document.content_hash)] = catalog.put_document_if(document, expected_sequencer="01")

        threads = [threading.Thread(target=write, args=(document,)) for document in candidates]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        winners = [hash_ for hash_, ok in won.items() if ok]
        assert len(won) == len(candidates) and len(winners) == 1
        stored = catalog.get_document(workspace.id, v1.id)
        assert stored is not None and stored.content_hash == winners[0]

    def test_status_transitions_carry_the_reason(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(workspace, created_at=utcnow() - timedelta(minutes=5))
        document = replace(document, updated_at=document.created_at)
        catalog.register_document(document)

        processing = catalog.set_document_status(workspace.id, document.id, DocumentStatus.PROCESSING)
        assert processing is not None
        assert processing.status is DocumentStatus.PROCESSING and processing.status_reason is None
        assert processing.updated_at > document.updated_at
        assert processing.created_at == document.created_at

        failed = catalog.set_document_status(
            workspace.id, document.id, DocumentStatus.ERROR, reason="unreadable PDF: encrypted"
        )
        assert failed is not None and failed.status is DocumentStatus.ERROR
        assert failed.status_reason == "unreadable PDF: encrypted"
        assert catalog.get_document(workspace.id, document.id) == failed

        done = catalog.set_document_status(workspace.id, document.id, DocumentStatus.PROCESSED, chunk_count=12)
        assert done is not None
        assert (done.status, done.status_reason, done.chunk_count) == (DocumentStatus.PROCESSED, None, 12)
        assert done.updated_at >= failed.updated_at
        assert catalog.get_document(workspace.id, document.id) == done

    def test_status_change_keeps_chunk_count_unless_given(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document = make_document(workspace, chunk_count=4)
        catalog.register_document(document)
        updated = catalog.set_document_status(workspace.id, document.id, DocumentStatus.PROCESSING)
        assert updated is not None and updated.chunk_count == 4
        assert updated.name == document.name and updated.metadata == document.metadata

    def test_status_of_missing_document_is_none(self, catalog: Catalog) -> None:
        assert catalog.set_document_status(new_id(), new_id(), DocumentStatus.ERROR, reason="x") is None

    def test_list_documents_pages_through_everything_once(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        start = utcnow()
        documents = [
            make_document(workspace, name=f"{i}.txt", created_at=start + timedelta(seconds=i)) for i in range(7)
        ]
        for document in documents:
            catalog.register_document(document)

        pages = _all_pages(catalog, workspace.id, limit=3)

        assert [len(page) for page in pages] == [3, 3, 1]
        listed = [d.id for page in pages for d in page]
        assert sorted(listed) == sorted(d.id for d in documents)
        assert len(set(listed)) == len(listed)

    def test_list_documents_order_is_creation_then_id_and_survives_status_changes(self, catalog: Catalog) -> None:
        """The documents screen relies on one order for every reload: oldest first, ties by id."""
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        start = utcnow().replace(microsecond=0)
        same_second = [make_document(workspace, name=f"twin-{i}.txt", created_at=start) for i in range(3)]
        later = make_document(workspace, name="later.txt", created_at=start + timedelta(seconds=5))
        earlier = make_document(workspace, name="earlier.txt", created_at=start - timedelta(seconds=5))
        for document in [later, *same_second, earlier]:
            catalog.register_document(document)
        expected = [earlier.id, *sorted(d.id for d in same_second), later.id]

        first = [d.id for page in _all_pages(catalog, workspace.id, limit=2) for d in page]
        catalog.set_document_status(workspace.id, earlier.id, DocumentStatus.PROCESSED, chunk_count=1)
        catalog.set_document_status(workspace.id, same_second[0].id, DocumentStatus.ERROR, reason="x")
        again = [d.id for page in _all_pages(catalog, workspace.id, limit=2) for d in page]

        assert first == expected and again == expected

    def test_list_documents_exact_page_size_ends(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        for _ in range(4):
            catalog.register_document(make_document(workspace))
        pages = _all_pages(catalog, workspace.id, limit=2)
        assert sum(len(page) for page in pages) == 4
        assert all(pages[:2])  # a trailing empty page is allowed, but no short page before the end

    def test_list_documents_filters_by_status(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        documents = [make_document(workspace) for _ in range(5)]
        for document in documents:
            catalog.register_document(document)
        for document in documents[:2]:
            catalog.set_document_status(workspace.id, document.id, DocumentStatus.PROCESSED)

        processed = [
            d for page in _all_pages(catalog, workspace.id, limit=1, status=DocumentStatus.PROCESSED) for d in page
        ]
        created = catalog.list_documents(workspace.id, status=DocumentStatus.CREATED).items

        assert {d.id for d in processed} == {d.id for d in documents[:2]}
        assert {d.id for d in created} == {d.id for d in documents[2:]}
        assert catalog.list_documents(workspace.id, status=DocumentStatus.ERROR).items == []

    def test_list_documents_is_per_workspace(self, catalog: Catalog) -> None:
        one, two = make_workspace(), make_workspace()
        catalog.put_workspace(one)
        catalog.put_workspace(two)
        document = make_document(one)
        catalog.register_document(document)
        assert catalog.list_documents(two.id).items == []
        assert catalog.list_documents(one.id).items == [document]

    def test_forged_cursor_is_invalid_input(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        with pytest.raises(InvalidInput):
            catalog.list_documents(workspace.id, cursor="not a cursor")

    def test_delete_document(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        document, other = make_document(workspace), make_document(workspace)
        catalog.register_document(document, idempotency_key="del-key")
        catalog.register_document(other)

        catalog.delete_document(workspace.id, document.id)

        assert catalog.get_document(workspace.id, document.id) is None
        assert catalog.get_document(workspace.id, other.id) == other
        catalog.delete_document(workspace.id, document.id)  # idempotent
        # the key is free again: the same upload can be registered anew
        assert catalog.register_document(make_document(workspace), idempotency_key="del-key")[1]

    def test_existing_document_ids_answers_for_the_workspace_now(self, catalog: Catalog) -> None:
        workspace, elsewhere = make_workspace(), make_workspace()
        catalog.put_workspace(workspace)
        catalog.put_workspace(elsewhere)
        kept, deleted = make_document(workspace), make_document(workspace)
        foreign = make_document(elsewhere)
        for document in (kept, deleted, foreign):
            catalog.register_document(document)
        catalog.delete_document(workspace.id, deleted.id)

        asked = [kept.id, deleted.id, foreign.id, new_id(), kept.id]  # duplicates and unknown ids are fine
        assert catalog.existing_document_ids(workspace.id, asked) == {kept.id}
        assert catalog.existing_document_ids(workspace.id, []) == set()
        assert catalog.existing_document_ids(elsewhere.id, iter([foreign.id, kept.id])) == {foreign.id}

    def test_existing_document_ids_beyond_one_batch(self, catalog: Catalog) -> None:
        """More ids than one DynamoDB BatchGetItem (100 keys) carries."""
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        stored = [make_document(workspace, name=f"d{n}.txt") for n in range(105)]
        for document in stored:
            catalog.register_document(document)
        missing = [new_id() for _ in range(40)]

        found = catalog.existing_document_ids(workspace.id, [d.id for d in stored] + missing)

        assert found == {d.id for d in stored}

    def test_stale_documents(self, catalog: Catalog) -> None:
        workspace = make_workspace()
        catalog.put_workspace(workspace)
        long_ago = utcnow() - timedelta(hours=2)
        stuck = make_document(workspace, status=DocumentStatus.PROCESSING, created_at=long_ago, updated_at=long_ago)
        fresh = make_document(workspace, status=DocumentStatus.PROCESSING)
        done = make_document(workspace, status=DocumentStatus.PROCESSED, created_at=long_ago, updated_at=long_ago)
        for document in (stuck, fresh, done):
            catalog.put_document(document)

        cutoff = utcnow() - timedelta(hours=1)
        stale = [
            d for d in catalog.stale_documents(DocumentStatus.PROCESSING, cutoff) if d.workspace_id == workspace.id
        ]
        assert stale == [stuck]

        catalog.set_document_status(workspace.id, stuck.id, DocumentStatus.PROCESSING)  # a heartbeat
        assert all(d.id != stuck.id for d in catalog.stale_documents(DocumentStatus.PROCESSING, cutoff))

    # ------------------------------------------------------------------ feedback

    def test_feedback_since(self, catalog: Catalog) -> None:
        session = new_id()
        t0 = utcnow() - timedelta(minutes=10)
        old = Feedback(session, "m1", "alice", 1, None, created_at=t0)
        new = Feedback(session, "m2", "alice", -1, "wrong source", created_at=t0 + timedelta(minutes=5))
        catalog.put_feedback(old)
        catalog.put_feedback(new)

        everything = [f for f in catalog.list_feedback() if f.session_id == session]
        recent = [f for f in catalog.list_feedback(since=t0 + timedelta(minutes=1)) if f.session_id == session]

        assert everything == [old, new]
        assert recent == [new]

    def test_feedback_again_replaces(self, catalog: Catalog) -> None:
        session = new_id()
        catalog.put_feedback(Feedback(session, "m1", "alice", 1))
        changed = Feedback(session, "m1", "alice", -1, "changed my mind")
        catalog.put_feedback(changed)
        catalog.put_feedback(Feedback(session, "m1", "bob", 1))
        mine = [f for f in catalog.list_feedback() if f.session_id == session and f.user == "alice"]
        assert mine == [changed]
        assert len([f for f in catalog.list_feedback() if f.session_id == session]) == 2
