"""Ingestion failures reach the reader as sentences: real damaged and encrypted PDFs through the real parser."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfWriter

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.errors import InvalidInput, QuarryError, UnsupportedDocument
from quarry.services.failure_reasons import explain_failure, reason_for
from quarry.text.parsing import UnstructuredParser


def _blank_pdf(*, password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if password is not None:
        writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _parse_failure(data: bytes, filename: str, *, max_bytes: int = 1_000_000) -> QuarryError:
    with pytest.raises(QuarryError) as caught:
        UnstructuredParser(max_bytes=max_bytes).parse(data, filename=filename)
    return caught.value


def test_a_damaged_pdf_says_so_and_keeps_the_parser_error_as_detail() -> None:
    truncated = _blank_pdf()[:120]  # cut before its cross-reference table and trailer: no /Root
    explained = explain_failure(_parse_failure(truncated, "report.pdf"), filename="report.pdf")

    assert explained.kind is FailureKind.DAMAGED_PDF
    assert explained.reason.startswith("This PDF is damaged or incomplete.")
    assert "PDFSyntaxError" not in explained.reason and "upload the new copy" in explained.reason
    assert explained.detail is not None and "PDFSyntaxError: No /Root object!" in explained.detail


def test_a_password_protected_pdf_asks_for_a_copy_without_the_password() -> None:
    explained = explain_failure(_parse_failure(_blank_pdf(password="s3cret"), "locked.pdf"), filename="locked.pdf")

    assert explained.kind is FailureKind.ENCRYPTED_PDF
    assert explained.reason == "This PDF is password-protected. Save a copy without the password and upload that copy."


def test_a_pdf_without_text_and_an_empty_file_are_told_apart() -> None:
    no_text = explain_failure(_parse_failure(_blank_pdf(), "blank.pdf"), filename="blank.pdf")
    empty = explain_failure(_parse_failure(b"  \n", "empty.txt"), filename="empty.txt")

    assert (no_text.kind, empty.kind) == (FailureKind.NO_TEXT, FailureKind.EMPTY)
    assert no_text.reason.startswith("No text was found in this file.")
    assert empty.reason.startswith("This file is empty.")


def test_undecodable_text_too_large_and_unsupported_files() -> None:
    garbled = explain_failure(_parse_failure(b"\xff\xfeA\x00\x00\xd8", "notes.txt"), filename="notes.txt")
    too_big = explain_failure(_parse_failure(b"x" * 64, "big.txt", max_bytes=10), filename="big.txt")
    unsupported = explain_failure(UnsupportedDocument("x.exe: unsupported file type .exe"), filename="x.exe")

    assert garbled.kind is FailureKind.ENCODING and "UTF-8" in garbled.reason
    assert too_big.kind is FailureKind.TOO_LARGE and too_big.reason.startswith("This file is too large")
    assert unsupported.kind is FailureKind.UNSUPPORTED_TYPE and ".exe" not in unsupported.reason


def test_a_failure_is_classified_through_its_cause() -> None:
    try:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as exc:
            raise RuntimeError("embedding batch failed") from exc
    except RuntimeError as wrapped:
        explained = explain_failure(wrapped, filename="slow.pdf")

    assert explained.kind is FailureKind.TIMED_OUT
    assert explained.reason == reason_for(FailureKind.TIMED_OUT, "slow.pdf")
    assert explained.detail == "RuntimeError: embedding batch failed"


def test_an_unknown_failure_names_the_file_and_says_what_to_do_without_the_exception() -> None:
    explained = explain_failure(KeyError("vector"), filename="q3 plan.docx")

    assert explained.kind is FailureKind.UNKNOWN
    assert "“q3 plan.docx”" in explained.reason and "Retry" in explained.reason
    assert "KeyError" not in explained.reason and explained.detail == "KeyError: 'vector'"


def test_a_tagged_failure_keeps_its_kind() -> None:
    tagged = UnreadableFile("a.csv: invalid CSV: bad quoting", kind=FailureKind.DAMAGED_FILE)

    explained = explain_failure(tagged, filename="a.csv")

    assert explained.kind is FailureKind.DAMAGED_FILE and explained.detail == "a.csv: invalid CSV: bad quoting"
    assert explained.reason.startswith("This file is damaged")


def test_a_refusal_written_for_the_reader_is_kept_as_it_is() -> None:
    refused = InvalidInput("cannot crawl http://169.254.169.254/: the address is link-local")

    explained = explain_failure(refused, filename="169.254.169.254")

    assert explained.kind is FailureKind.REFUSED
    assert explained.reason == "cannot crawl http://169.254.169.254/: the address is link-local"
