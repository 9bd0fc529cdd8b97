"""The document types Quarry accepts, by extension, with the content type the upload policy enforces."""

from __future__ import annotations

from pathlib import PurePath

from quarry.errors import UnsupportedDocument

__all__ = ["SUPPORTED_TYPES", "content_type_for"]

SUPPORTED_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".json": "application/json",
    ".eml": "message/rfc822",
}

# Browsers and tools disagree on a few types; these aliases are accepted and mapped to the canonical one.
_ALIASES = {
    "application/x-markdown": "text/markdown",
    "text/x-markdown": "text/markdown",
    "application/csv": "text/csv",
    "text/json": "application/json",
}


def content_type_for(filename: str, declared: str | None = None) -> str:
    """The canonical content type for a file name; the declared type must agree when given."""
    suffix = PurePath(filename).suffix.lower()
    expected = SUPPORTED_TYPES.get(suffix)
    if expected is None:
        known = ", ".join(sorted(SUPPORTED_TYPES))
        raise UnsupportedDocument(f"{filename}: unsupported file type {suffix or '(none)'} (supported: {known})")
    if declared:
        base = declared.split(";")[0].strip().lower()
        base = _ALIASES.get(base, base)
        if base not in (expected, "application/octet-stream"):
            raise UnsupportedDocument(f"{filename}: content type {declared} does not match {expected}")
    return expected
