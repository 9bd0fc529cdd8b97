"""What an upload is, and how its text is encoded.

The byte signature decides first (via ``filetype``), then the file extension, then
the declared content type: an executable called ``notes.pdf`` is refused, a DOCX
called ``report.bin`` is read as DOCX. Text is UTF-8 (or BOM-marked UTF-16/32)
first, then whatever charset-normalizer can name with confidence.
"""

from __future__ import annotations

import codecs
from enum import StrEnum
from pathlib import PurePath

from quarry.errors import UnreadableDocument, UnsupportedDocument

__all__ = ["BINARY_KINDS", "DocumentKind", "decode_text", "detect_kind"]


class DocumentKind(StrEnum):
    TXT = "txt"
    MD = "md"
    HTML = "html"
    PDF = "pdf"
    DOCX = "docx"
    PPTX = "pptx"
    XLSX = "xlsx"
    CSV = "csv"
    JSON = "json"
    EML = "eml"
    MSG = "msg"


_DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_BY_EXTENSION: dict[str, DocumentKind] = {
    ".txt": DocumentKind.TXT,
    ".text": DocumentKind.TXT,
    ".log": DocumentKind.TXT,
    ".md": DocumentKind.MD,
    ".markdown": DocumentKind.MD,
    ".html": DocumentKind.HTML,
    ".htm": DocumentKind.HTML,
    ".xhtml": DocumentKind.HTML,
    ".pdf": DocumentKind.PDF,
    ".docx": DocumentKind.DOCX,
    ".pptx": DocumentKind.PPTX,
    ".xlsx": DocumentKind.XLSX,
    ".csv": DocumentKind.CSV,
    ".json": DocumentKind.JSON,
    ".eml": DocumentKind.EML,
    ".msg": DocumentKind.MSG,
}

_BY_MIME: dict[str, DocumentKind] = {
    "text/plain": DocumentKind.TXT,
    "text/markdown": DocumentKind.MD,
    "text/x-markdown": DocumentKind.MD,
    "text/html": DocumentKind.HTML,
    "application/xhtml+xml": DocumentKind.HTML,
    "application/pdf": DocumentKind.PDF,
    _DOCX_MIME: DocumentKind.DOCX,
    _PPTX_MIME: DocumentKind.PPTX,
    _XLSX_MIME: DocumentKind.XLSX,
    "text/csv": DocumentKind.CSV,
    "application/csv": DocumentKind.CSV,
    "application/json": DocumentKind.JSON,
    "message/rfc822": DocumentKind.EML,
    "application/vnd.ms-outlook": DocumentKind.MSG,
}

# Kinds whose bytes have a signature (the rest are text, recognised by name or declared type).
BINARY_KINDS = {DocumentKind.PDF, DocumentKind.DOCX, DocumentKind.PPTX, DocumentKind.XLSX, DocumentKind.MSG}
_ZIP_KINDS = {DocumentKind.DOCX, DocumentKind.PPTX, DocumentKind.XLSX}
_OLE_MIMES = {
    "application/x-ole-storage",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_GENERIC_MIMES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _sniff(data: bytes) -> str | None:
    """MIME type from the leading bytes, for formats with a signature."""
    import filetype

    kind = filetype.guess(data[:8192])
    if kind is not None:
        return str(kind.mime)
    return "application/x-ole-storage" if data.startswith(_OLE_MAGIC) else None


def _unsupported(filename: str, mime: str) -> UnsupportedDocument:
    return UnsupportedDocument(f"{filename}: unsupported type {mime or 'application/octet-stream'}")


def detect_kind(data: bytes, *, filename: str, content_type: str | None = None) -> DocumentKind:
    """What the bytes are, from their signature first, then the file extension, then the declared type.

    A signature beats a name: a PE executable called ``notes.pdf`` is refused, a DOCX
    called ``report.bin`` is read as DOCX.
    """
    declared = _media_type(content_type)
    by_name = _BY_EXTENSION.get(PurePath(filename).suffix.lower())
    named = by_name or _BY_MIME.get(declared)
    sniffed = _sniff(data)
    if sniffed is None:
        if named is not None:
            return named
        if declared.startswith("text/"):
            return DocumentKind.TXT
        if declared in _GENERIC_MIMES and not PurePath(filename).suffix and b"\x00" not in data[:8192]:
            return DocumentKind.TXT
        raise _unsupported(filename, declared or _guess_mime(filename))
    if sniffed in _BY_MIME and _BY_MIME[sniffed] in BINARY_KINDS:
        return _BY_MIME[sniffed]
    if named is not None and named not in BINARY_KINDS and _looks_like_text(data):
        return named  # some signatures are two bytes long: a text file may start with "MZ"
    if sniffed == "application/zip" and named in _ZIP_KINDS:
        return named  # an OOXML container filetype could not place; the partitioner will judge it
    if sniffed in _OLE_MIMES and named is DocumentKind.MSG:
        return DocumentKind.MSG
    raise _unsupported(filename, sniffed)


def _looks_like_text(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _guess_mime(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


# --------------------------------------------------------------------------- decoding

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# When several single-byte code pages explain the bytes equally well, prefer the common ones.
_PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15", "cp1251", "koi8_r", "shift_jis", "euc_jp", "gb18030", "big5")
_MAX_CHAOS = 0.1


def decode_text(data: bytes, *, filename: str) -> str:
    """UTF-8 (or a BOM-marked Unicode) first; else charset-normalizer when it is confident."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _normalise_newlines(data.decode(encoding))
            except UnicodeDecodeError as exc:
                raise UnreadableDocument(f"{filename}: invalid {encoding} text: {exc.reason}") from exc
    try:
        return _normalise_newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise UnreadableDocument(f"{filename}: binary data, not text")
    detected = _detect_encoding(data)
    if detected is None:
        raise UnreadableDocument(f"{filename}: text is not UTF-8 and its encoding could not be detected confidently")
    return _normalise_newlines(data.decode(detected, errors="strict"))


def _detect_encoding(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    matches = [m for m in from_bytes(data) if m.chaos <= _MAX_CHAOS]
    if not matches:
        return None
    best = min(matches, key=lambda m: (m.chaos, -m.coherence))
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    candidates = {enc for m in tied for enc in [m.encoding, *m.could_be_from_charset]}
    for preferred in _PREFERRED_ENCODINGS:
        if preferred in candidates:
            return preferred
    return str(best.encoding)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
