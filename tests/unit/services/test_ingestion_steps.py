"""IngestionSteps (the state machine's SetProcessing / SetProcessed / SetError and the sweeper) on the fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.errors import NotFound
from quarry.models import Chunk, DocumentStatus
from quarry.services.failure_reasons import reason_for
from tests.unit.services.ingestion_fixtures import OWNER, READER, STRANGER, IngestionRig, build_rig


@pytest.fixture
def rig() -> IngestionRig:
    rig = build_rig()
    for connection_id, user in (("c-owner", OWNER), ("c-reader", READER), ("c-stranger", STRANGER)):
        rig.connections.add(connection_id, user)
    return rig


def _chunks(rig: IngestionRig, document_id: str, n: int) -> list[Chunk]:
    vector = tuple(rig.embedder.embed_query("tides"))
    return [Chunk(rig.workspace.id, document_id, i, "tides", 0, 5, embedding=vector) for i in range(n)]


def test_each_step_records_the_status_and_tells_every_reader_of_the_workspace(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides reach 4.2 metres.")

    processing = rig.steps.set_processing(rig.workspace.id, document.id)
    processed = rig.steps.set_processed(rig.workspace.id, document.id, 3)

    assert processing.status is DocumentStatus.PROCESSING
    assert (processed.status, processed.chunk_count) == (DocumentStatus.PROCESSED, 3)
    assert rig.catalog.get_document(rig.workspace.id, document.id) == processed
    expected = [(document.id, "processing", None, 0), (document.id, "processed", None, 3)]
    assert rig.statuses("c-owner") == rig.statuses("c-reader") == expected
    assert rig.statuses("c-stranger") == []


def test_set_processed_without_a_count_counts_what_the_job_wrote(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides.")
    rig.index.replace_document(rig.workspace.id, document.id, _chunks(rig, document.id, 4))

    assert rig.steps.set_processed(rig.workspace.id, document.id).chunk_count == 4


def test_repeating_a_step_gives_the_same_state(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides.")

    first = rig.steps.set_processed(rig.workspace.id, document.id, 2)
    again = rig.steps.set_processed(rig.workspace.id, document.id, 2)

    assert (again.status, again.chunk_count, again.status_reason) == (first.status, first.chunk_count, None)


def test_an_error_keeps_its_reason_up_to_a_thousand_characters(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides.")

    failed = rig.steps.set_error(rig.workspace.id, document.id, "x" * 1500)

    assert failed is not None and failed.status is DocumentStatus.ERROR
    assert failed.status_reason == "x" * 1000
    assert rig.statuses("c-owner") == [(document.id, "error", "x" * 1000, 0)]


def test_the_state_machines_error_step_keeps_the_reason_the_job_wrote(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides.")
    rig.steps.set_error(rig.workspace.id, document.id, "tides.pdf: the file is encrypted")

    kept = rig.steps.set_error(rig.workspace.id, document.id, "Essential container exited", keep_recorded=True)

    assert kept is not None and kept.status_reason == "tides.pdf: the file is encrypted"


def test_the_state_machines_error_step_writes_its_reason_when_the_job_wrote_none(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides.")
    rig.steps.set_processing(rig.workspace.id, document.id)

    failed = rig.steps.set_error(rig.workspace.id, document.id, "Essential container exited", keep_recorded=True)

    assert failed is not None and (failed.status, failed.status_reason) == (
        DocumentStatus.ERROR,
        "Essential container exited",
    )


def test_steps_for_a_deleted_document_never_bring_it_back(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides.")
    rig.catalog.delete_document(rig.workspace.id, document.id)

    with pytest.raises(NotFound, match=f"document {document.id} not found"):
        rig.steps.set_processing(rig.workspace.id, document.id)
    with pytest.raises(NotFound):
        rig.steps.set_processed(rig.workspace.id, document.id, 1)
    assert rig.steps.set_error(rig.workspace.id, document.id, "late", keep_recorded=True) is None
    assert rig.catalog.get_document(rig.workspace.id, document.id) is None
    assert rig.notifier.sent == []


def test_the_sweeper_fails_only_documents_processing_past_the_timeout(rig: IngestionRig) -> None:
    stuck = rig.add_text("stuck", "a")
    waiting = rig.add_text("waiting", "b")
    done = rig.add_text("done", "c")
    rig.steps.set_processing(rig.workspace.id, stuck.id)
    rig.steps.set_processed(rig.workspace.id, done.id, 1)

    assert rig.steps.sweep_stale(timedelta(hours=1)) == []  # not stale yet
    swept = rig.steps.sweep_stale(timedelta(0))

    timed_out = reason_for(FailureKind.TIMED_OUT, stuck.name)
    assert [(d.id, d.status, d.status_reason) for d in swept] == [(stuck.id, DocumentStatus.ERROR, timed_out)]
    assert timed_out.startswith("Processing took too long")
    left = {d.id: d.status for d in rig.catalog.documents.values()}
    assert (left[waiting.id], left[done.id]) == (DocumentStatus.CREATED, DocumentStatus.PROCESSED)
    assert rig.steps.sweep_stale(timedelta(0)) == []  # a second run finds nothing left to fail


def test_every_status_event_carries_the_time_it_was_recorded(rig: IngestionRig) -> None:
    document = rig.add_text("tides", "Spring tides.")

    processing = rig.steps.set_processing(rig.workspace.id, document.id)
    processed = rig.steps.set_processed(rig.workspace.id, document.id, 1)

    events = [e for e in rig.notifier.to("c-reader") if e["type"] == "document_status"]
    assert [(e["status"], e["updated_at"]) for e in events] == [
        ("processing", processing.updated_at.isoformat().replace("+00:00", "Z")),
        ("processed", processed.updated_at.isoformat().replace("+00:00", "Z")),
    ]


def test_a_failed_run_records_a_sentence_not_the_parser_error(rig: IngestionRig) -> None:
    document = rig.add_text("tides.pdf", "Spring tides.")
    damaged = UnreadableFile(
        "tides.pdf: corrupt or unreadable PDF (PDFSyntaxError: No /Root object!)", kind=FailureKind.DAMAGED_PDF
    )

    failed = rig.steps.fail(rig.workspace.id, document.id, damaged)

    assert failed is not None and failed.status is DocumentStatus.ERROR
    assert failed.status_reason is not None and failed.status_reason.startswith("This PDF is damaged or incomplete.")
    assert [reason for _, _, reason, _ in rig.statuses("c-reader")] == [failed.status_reason]
