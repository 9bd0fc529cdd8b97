"""Ingestion failures in plain words: what a reader sees on a failed document, and what to do about it.

Parsers and the pipeline raise technical errors ("broken.pdf: corrupt or unreadable PDF (PDFSyntaxError:
No /Root object! ...)"). ``explain_failure`` turns one into a ``FailureReason``: a sentence for the
document's status, and the technical message, which the caller logs and never shows as the reason.
Pure: no I/O, no logging here.
"""

from __future__ import annotations

from dataclasses import dataclass

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.errors import InvalidInput, PayloadTooLarge, QuarryError, UnsupportedDocument

__all__ = ["FailureReason", "explain_failure", "reason_for"]

_SENTENCES: dict[FailureKind, str] = {
    FailureKind.DAMAGED_PDF: (
        "This PDF is damaged or incomplete. Open it on your computer to check it, save or export it again, "
        "and upload the new copy."
    ),
    FailureKind.ENCRYPTED_PDF: (
        "This PDF is password-protected. Save a copy without the password and upload that copy."
    ),
    FailureKind.IMAGE_ONLY: (
        "This PDF holds only images (probably a scan), so there is no text to read. "
        "Run it through text recognition (OCR) and upload the result."
    ),
    FailureKind.NO_TEXT: "No text was found in this file. Check that it has text in it, then upload it again.",
    FailureKind.EMPTY: "This file is empty. Upload a copy that has content.",
    FailureKind.UNSUPPORTED_TYPE: (
        "This type of file cannot be read. Save it as PDF, Word, Markdown or plain text and upload that."
    ),
    FailureKind.TOO_LARGE: "This file is too large to process. Split it into smaller files and upload those.",
    FailureKind.TIMED_OUT: (
        "Processing took too long and was stopped. Retry; if it stops again, split the file into smaller parts."
    ),
    FailureKind.ENCODING: (
        "The text in this file uses a character encoding that could not be recognised. "
        "Save it as UTF-8 text and upload it again."
    ),
    FailureKind.DAMAGED_FILE: (
        "This file is damaged, or is not the type its name says. Open it to check it, save it again "
        "and upload the new copy."
    ),
}


@dataclass(frozen=True, slots=True)
class FailureReason:
    kind: FailureKind
    #: What the reader sees: a sentence that says what happened and what to do.
    reason: str
    #: The technical message (for the logs), or None when there is none.
    detail: str | None


def reason_for(kind: FailureKind, filename: str) -> str:
    """The sentence for ``kind``; the fallback names the file, since it cannot say what went wrong."""
    sentence = _SENTENCES.get(kind)
    if sentence is not None:
        return sentence
    name = f"“{filename}”" if filename else "this document"
    return (
        f"Something went wrong while processing {name}. Retry; if it fails again, save the file in another "
        "format (PDF or plain text) and upload that."
    )


# The first matching type wins, so a subclass comes before its base (PayloadTooLarge before InvalidInput).
_KIND_OF_TYPE: tuple[tuple[type[BaseException], FailureKind], ...] = (
    (PayloadTooLarge, FailureKind.TOO_LARGE),
    (UnsupportedDocument, FailureKind.UNSUPPORTED_TYPE),
    (InvalidInput, FailureKind.REFUSED),
    (TimeoutError, FailureKind.TIMED_OUT),
    (UnicodeError, FailureKind.ENCODING),
)


def _kind_of(exc: BaseException) -> FailureKind:
    if isinstance(exc, UnreadableFile):
        return exc.kind
    kind = next((kind for kinds, kind in _KIND_OF_TYPE if isinstance(exc, kinds)), None)
    if kind is not None:
        return kind
    cause = exc.__cause__
    return _kind_of(cause) if cause is not None and cause is not exc else FailureKind.UNKNOWN


def explain_failure(exc: BaseException, *, filename: str) -> FailureReason:
    """The reader's sentence for ``exc`` (raised while ingesting ``filename``), and its technical detail."""
    kind = _kind_of(exc)
    detail = exc.message if isinstance(exc, QuarryError) else f"{type(exc).__name__}: {exc}"
    if kind is FailureKind.REFUSED and isinstance(exc, QuarryError):  # its message is already for the reader
        return FailureReason(kind=kind, reason=exc.message, detail=None)
    return FailureReason(kind=kind, reason=reason_for(kind, filename), detail=detail or None)
