"""Why a document could not be ingested, as a kind the services can put into words.

The parser raises ``UnreadableFile`` (an ``UnreadableDocument``, so every existing handler still
catches it) tagged with a ``FailureKind``; ``quarry.services.failure_reasons`` turns the kind into the
sentence a reader sees, and keeps the technical message for the logs.
"""

from __future__ import annotations

from enum import StrEnum

from quarry.errors import UnreadableDocument

__all__ = ["FailureKind", "UnreadableFile"]


class FailureKind(StrEnum):
    DAMAGED_PDF = "damaged_pdf"
    ENCRYPTED_PDF = "encrypted_pdf"
    IMAGE_ONLY = "image_only"
    NO_TEXT = "no_text"
    EMPTY = "empty"
    UNSUPPORTED_TYPE = "unsupported_type"
    TOO_LARGE = "too_large"
    TIMED_OUT = "timed_out"
    ENCODING = "encoding"
    DAMAGED_FILE = "damaged_file"
    #: A source refused, or a crawl that found nothing, with a message already written for the reader.
    REFUSED = "refused"
    UNKNOWN = "unknown"


class UnreadableFile(UnreadableDocument):
    """An unreadable document whose failure is known: ``message`` is technical, ``kind`` says which case."""

    def __init__(self, message: str, *, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind = kind
