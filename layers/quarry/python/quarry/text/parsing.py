"""Bytes in, ``ParsedDocument`` out: type detection, decoding and extraction, all offline.

* Plain text, Markdown, CSV and JSON take fast paths written here (no partitioner).
* PDF goes through pdfminer directly, which is exactly what unstructured's ``fast``
  strategy runs. (``unstructured.partition.pdf`` cannot even be imported without
  ``unstructured-inference``, which brings torch, onnxruntime and layout models: the
  OCR/hi-res machinery this platform never uses.) No OCR: a PDF without a text layer
  is reported as unreadable.
* HTML, DOCX, PPTX, XLSX, EML and MSG go through unstructured's partitioners, imported
  lazily and only here. Before the first import this module switches off
  unstructured's telemetry ping and usage notice, and stands in for its spaCy-based
  ``unstructured.nlp.tokenize`` (which imports torch through thinc and downloads
  ``en_core_web_sm`` from GitHub at run time when it is missing) with rule-based
  tokenizers, unless that model is installed.

Zip-based formats (DOCX, PPTX, XLSX) are checked before any parser opens them
(:func:`check_archive`): the central directory's total uncompressed size, its ratio to the
file's size and its member count are capped, then every member is inflated once here with
a running byte count against the same cap. The declared sizes are binding for what reads
them after us (CPython's ``ZipExtFile`` stops at a member's declared ``file_size`` and fails
its CRC when the data would go on), so a small file cannot expand to gigabytes in a parser.

Every failure is a typed error naming the file: ``UnsupportedDocument`` for types we
do not read, ``UnreadableDocument`` for corrupt, empty, image-only or undecodable
files and archives that expand too far, ``PayloadTooLarge`` above the size limit.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import sys
import types
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Any

from quarry.document_failures import FailureKind, UnreadableFile
from quarry.errors import PayloadTooLarge, QuarryError, UnreadableDocument
from quarry.ports import ParsedDocument, ParsedSection
from quarry.text.detection import BINARY_KINDS, DocumentKind, decode_text, detect_kind

__all__ = ["ArchiveLimits", "DocumentKind", "UnstructuredParser", "check_archive", "decode_text", "detect_kind"]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_MIB = 1024 * 1024


# --------------------------------------------------------------------------- zip archives


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """How far a zip-based document (DOCX, PPTX, XLSX) may expand before it is refused.

    ``max_ratio`` (uncompressed / file size) applies once the archive expands beyond ``ratio_floor``
    bytes, so a tiny document of very repetitive XML is not refused for its ratio alone.
    """

    max_expanded_bytes: int = 100 * _MIB
    max_ratio: float = 200.0
    max_members: int = 10_000
    ratio_floor: int = _MIB

    def __post_init__(self) -> None:
        if self.max_expanded_bytes <= 0 or self.max_ratio <= 0 or self.max_members <= 0:
            raise ValueError("archive limits must be positive")


_ZIP_KINDS = frozenset({DocumentKind.DOCX, DocumentKind.PPTX, DocumentKind.XLSX})
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error)


def _megabytes(size: int) -> str:
    return f"{size / _MIB:g}" if size % _MIB else str(size // _MIB)


def check_archive(filename: str, data: bytes, limits: ArchiveLimits, *, kind: str = "archive") -> None:
    """Refuse a zip that would expand beyond ``limits``, before any parser inflates it.

    The central directory is checked first (cheap: nothing is inflated); then each member is
    inflated here, in 1 MiB reads, counting the bytes actually produced against the cap, so a
    directory that under-declares its sizes cannot get past the check either.
    """
    too_big = UnreadableFile(
        f"{filename}: archive expands beyond {_megabytes(limits.max_expanded_bytes)} MB", kind=FailureKind.TOO_LARGE
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > limits.max_members:
                raise UnreadableFile(
                    f"{filename}: archive holds more than {limits.max_members} files", kind=FailureKind.TOO_LARGE
                )
            declared = sum(m.file_size for m in members)
            if declared > limits.max_expanded_bytes:
                raise too_big
            ratio = declared / max(len(data), 1)
            if declared > limits.ratio_floor and ratio > limits.max_ratio:
                raise UnreadableFile(
                    f"{filename}: archive expands {ratio:.0f} times its size (the limit is {limits.max_ratio:g})",
                    kind=FailureKind.TOO_LARGE,
                )
            inflated = 0
            for member in members:
                with archive.open(member) as stream:
                    while chunk := stream.read(_MIB):
                        inflated += len(chunk)
                        if inflated > limits.max_expanded_bytes:
                            raise too_big
    except QuarryError:
        raise
    except (*_ARCHIVE_ERRORS, OSError, ValueError) as exc:
        raise UnreadableFile(
            f"{filename}: corrupt or unreadable {kind} ({type(exc).__name__}: {exc})", kind=FailureKind.DAMAGED_FILE
        ) from exc


# --------------------------------------------------------------------------- assembly


@dataclass
class _Assembler:
    """Joins pieces of text with blank lines, tracking each piece's span and metadata."""

    parts: list[str] = field(default_factory=list)
    sections: list[ParsedSection] = field(default_factory=list)
    length: int = 0

    def add(self, text: str, metadata: dict[str, Any] | None = None) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        meta = metadata or {}
        last = self.sections[-1] if self.sections else None
        if last is not None and last.metadata == meta:
            self.sections[-1] = ParsedSection(last.start, self.length, meta)
        else:
            self.sections.append(ParsedSection(start, self.length, meta))

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _document(
    filename: str, text: str, title: str | None, sections: list[ParsedSection], metadata: dict[str, Any]
) -> ParsedDocument:
    if not text.strip():
        raise UnreadableFile(f"{filename}: the document has no text", kind=FailureKind.NO_TEXT)
    return ParsedDocument(
        text=text,
        title=(title or "").strip() or _stem(filename),
        sections=sections,
        metadata=metadata,
    )


def _stem(filename: str) -> str:
    return PurePath(filename).stem or filename


# --------------------------------------------------------------------------- fast paths


def _parse_plain(filename: str, text: str) -> ParsedDocument:
    stripped = text.strip()
    return _document(filename, stripped, None, [ParsedSection(0, len(stripped), {})] if stripped else [], {})


_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _markdown_headings(text: str) -> Iterator[tuple[int, int, str]]:
    """(offset, level, heading text) of ATX headings outside fenced code blocks."""
    offset, fence = 0, ""
    for line in text.splitlines(keepends=True):
        fenced = _FENCE.match(line)
        if fenced and (not fence or fenced.group(1).startswith(fence)):
            fence = "" if fence else fenced.group(1)[:3]
        elif not fence and (match := _HEADING.match(line.rstrip("\n"))):
            yield offset, len(match.group(1)), match.group(2).strip()
        offset += len(line)


def _parse_markdown(filename: str, text: str) -> ParsedDocument:
    text = text.strip()
    headings = list(_markdown_headings(text))
    sections: list[ParsedSection] = []
    if not headings or headings[0][0] > 0:
        first = headings[0][0] if headings else len(text)
        sections.append(ParsedSection(0, first, {}))
    for i, (offset, _, heading) in enumerate(headings):
        end = headings[i + 1][0] if i + 1 < len(headings) else len(text)
        sections.append(ParsedSection(offset, end, {"heading": heading}))
    h1 = next((h for _, level, h in headings if level == 1), None)
    title = h1 or (headings[0][2] if headings else None)
    return _document(filename, text, title, [s for s in sections if s.end > s.start], {})


def _parse_csv(filename: str, text: str) -> ParsedDocument:
    sample = text[:16384]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:
        raise UnreadableFile(f"{filename}: invalid CSV: {exc}", kind=FailureKind.DAMAGED_FILE) from exc
    lines = [" | ".join(row) for row in rows if any(row)]
    return _parse_plain(filename, "\n".join(lines))


def _flatten_json(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten_json(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _flatten_json(item, f"{path}[{i}]")
    elif value is not None and value != "":
        rendered = value if isinstance(value, str) else json.dumps(value)
        yield f"{path}: {rendered}" if path else rendered


def _parse_json(filename: str, text: str) -> ParsedDocument:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"{filename}: invalid JSON: {exc}", kind=FailureKind.DAMAGED_FILE) from exc
    title = value.get("title") if isinstance(value, dict) and isinstance(value.get("title"), str) else None
    parsed = _parse_plain(filename, "\n".join(_flatten_json(value)))
    return ParsedDocument(text=parsed.text, title=title or parsed.title, sections=parsed.sections)


# --------------------------------------------------------------------------- pdf (pdfminer)

_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"})
_CID = re.compile(r"\(cid:\d+\)")
_SPACES = re.compile(r"[ \t\u00a0]+")


def _clean_pdf_box(text: str) -> str:
    text = _CID.sub("", text).translate(_LIGATURES)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return " ".join(line for line in lines if line)


def _pdf_title(document: Any) -> str | None:
    from pdfminer.pdftypes import resolve1
    from pdfminer.utils import decode_text as pdf_decode

    for info in document.info or []:
        raw = resolve1(info.get("Title")) if isinstance(info, dict) else None
        if isinstance(raw, bytes):
            return pdf_decode(raw)
        if isinstance(raw, str):
            return raw
    return None


def _pdf_boxes(container: Any) -> Iterator[str | None]:
    """Text of each text box of a page layout, descending into figures; None for each image."""
    from pdfminer.layout import LTFigure, LTImage, LTTextContainer

    for item in container:
        if isinstance(item, LTTextContainer):
            yield item.get_text()
        elif isinstance(item, LTImage):
            yield None
        elif isinstance(item, LTFigure):
            yield from _pdf_boxes(item)


def _parse_pdf(filename: str, data: bytes) -> ParsedDocument:
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    out = _Assembler()
    saw_image, number = False, 0
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)))
        manager = PDFResourceManager()
        # all_texts: also lay out text drawn inside form XObjects (figures), not only on the page.
        device = PDFPageAggregator(manager, laparams=LAParams(all_texts=True))
        interpreter = PDFPageInterpreter(manager, device)
        for number, page in enumerate(PDFPage.create_pages(document), start=1):
            interpreter.process_page(page)
            for box in _pdf_boxes(device.get_result()):
                if box is None:
                    saw_image = True
                else:
                    out.add(_clean_pdf_box(box), {"page_number": number})
        title = _pdf_title(document)
    except PDFPasswordIncorrect as exc:
        raise UnreadableFile(f"{filename}: the PDF is password-protected", kind=FailureKind.ENCRYPTED_PDF) from exc
    except PDFEncryptionError as exc:  # an encryption scheme pdfminer cannot open
        raise UnreadableFile(
            f"{filename}: encrypted PDF ({type(exc).__name__}: {exc})", kind=FailureKind.ENCRYPTED_PDF
        ) from exc
    except Exception as exc:  # pdfminer raises many unrelated types on damaged files
        raise UnreadableFile(
            f"{filename}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})", kind=FailureKind.DAMAGED_PDF
        ) from exc
    if not out.parts:
        if saw_image:
            raise UnreadableFile(f"{filename}: no extractable text; OCR is not available", kind=FailureKind.IMAGE_ONLY)
        raise UnreadableFile(f"{filename}: the PDF has no text", kind=FailureKind.NO_TEXT)
    return _document(filename, out.text, title, out.sections, {"page_count": number})


# --------------------------------------------------------------------------- unstructured

_TELEMETRY_OPT_OUT = {"SCARF_NO_ANALYTICS": "true", "DO_NOT_TRACK": "true", "UNSTRUCTURED_DISABLE_NOTICE": "1"}
_NLP_MODULE = "unstructured.nlp.tokenize"
_SPACY_MODEL = "en_core_web_sm"

# A rule-based stand-in for the three functions unstructured's element heuristics use
# (``partition.text_type``: is this a title? narrative text?). The real module imports
# spaCy (and with it torch: seconds per cold start) and downloads en_core_web_sm from
# GitHub when it is missing. Element categories only steer our title fallback.
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*|[^\w\s]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_AUXILIARIES = frozenset(
    [
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
    ]
)


def _word_tokenize(text: str) -> list[str]:
    return _WORD.findall(text)


def _sent_tokenize(text: str) -> list[str]:
    return [sentence for sentence in (s.strip() for s in _SENTENCE_BREAK.split(text)) if sentence]


def _guess_tag(word: str) -> str:
    lower = word.lower()
    if lower in _AUXILIARIES:
        return "VBZ"
    if len(lower) > 4 and lower.endswith("ed"):
        return "VBD"
    if len(lower) > 5 and lower.endswith("ing"):
        return "VBG"
    return "NN" if word[:1].isalnum() else "."


def _pos_tag(text: str) -> list[tuple[str, str]]:
    return [(word, _guess_tag(word)) for word in _word_tokenize(text)]


def _blank_spacy() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _install_offline_nlp() -> None:
    """Make sure unstructured never downloads a language model (and skip spaCy when we can)."""
    import importlib.util

    if importlib.util.find_spec(_SPACY_MODEL) is not None:
        return  # installed: the real module loads it from disk
    loaded = sys.modules.get(_NLP_MODULE)
    if loaded is not None:  # someone imported the real module first: keep it, minus the download
        loaded._get_nlp = lru_cache(maxsize=1)(_blank_spacy)  # type: ignore[attr-defined]
        return
    shim = types.ModuleType(_NLP_MODULE, "Offline stand-in installed by quarry.text.parsing.")
    shim.word_tokenize = _word_tokenize  # type: ignore[attr-defined]
    shim.sent_tokenize = _sent_tokenize  # type: ignore[attr-defined]
    shim.pos_tag = _pos_tag  # type: ignore[attr-defined]
    sys.modules[_NLP_MODULE] = shim


@lru_cache(maxsize=1)
def _prepare_unstructured() -> None:
    for name, value in _TELEMETRY_OPT_OUT.items():
        if not os.environ.get(name, "").strip():
            os.environ[name] = value
    _install_offline_nlp()


def _partition(kind: DocumentKind, data: bytes, text: str | None) -> list[Any]:
    _prepare_unstructured()
    common: dict[str, Any] = {"languages": ["eng"]}
    if kind is DocumentKind.HTML:
        from unstructured.partition.html import partition_html

        return list(partition_html(text=text, **common))
    if kind is DocumentKind.DOCX:
        from unstructured.partition.docx import partition_docx

        return list(partition_docx(file=io.BytesIO(data), **common))
    if kind is DocumentKind.PPTX:
        from unstructured.partition.pptx import partition_pptx

        return list(partition_pptx(file=io.BytesIO(data), **common))
    if kind is DocumentKind.XLSX:
        from unstructured.partition.xlsx import partition_xlsx

        return list(partition_xlsx(file=io.BytesIO(data), find_subtable=False, **common))
    if kind is DocumentKind.EML:
        from unstructured.partition.email import partition_email

        return list(partition_email(file=io.BytesIO(data), **common))
    if kind is DocumentKind.MSG:
        from unstructured.partition.msg import partition_msg

        return list(partition_msg(file=io.BytesIO(data), **common))
    raise AssertionError(f"no partitioner for {kind}")


class _TableRows(HTMLParser):
    """Rows of an HTML table as ``cell | cell`` lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _table_text(table_html: str) -> str:
    parser = _TableRows()
    parser.feed(table_html)
    parser.close()
    return "\n".join(" | ".join(row) for row in parser.rows if any(row))


def _element_text(element: Any) -> str:
    table_html = getattr(element.metadata, "text_as_html", None)
    if element.category == "Table" and table_html:
        return _table_text(table_html) or str(element.text)
    if element.category == "ListItem":
        return f"- {element.text}"
    return str(element.text)


def _element_metadata(kind: DocumentKind, element: Any) -> dict[str, Any]:
    meta = element.metadata
    if kind is DocumentKind.XLSX:
        return {"sheet": meta.page_name} if meta.page_name else {}
    if kind in (DocumentKind.EML, DocumentKind.MSG):
        return {
            key: value for key, value in (("subject", meta.subject), ("from", ", ".join(meta.sent_from or []))) if value
        }
    return {"page_number": meta.page_number} if meta.page_number is not None else {}


def _email_header(elements: list[Any]) -> str:
    meta = elements[0].metadata if elements else None
    if meta is None:
        return ""
    lines = [
        f"{label}: {value}"
        for label, value in (
            ("Subject", meta.subject),
            ("From", ", ".join(meta.sent_from or [])),
            ("To", ", ".join(meta.sent_to or [])),
        )
        if value
    ]
    return "\n".join(lines)


def _first_heading(elements: Iterable[Any]) -> str | None:
    for element in elements:
        if element.category == "Title" and str(element.text).strip():
            return str(element.text)
    return None


_OOXML_TITLE = re.compile(rb"<dc:title>(.*?)</dc:title>", re.DOTALL)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _ooxml_title(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            core = archive.read("docProps/core.xml")
    except (zipfile.BadZipFile, KeyError, OSError):
        return None
    match = _OOXML_TITLE.search(core)
    if match is None:
        return None
    return html.unescape(match.group(1).decode("utf-8", "replace")).strip() or None


def _html_title(text: str) -> str | None:
    match = _HTML_TITLE.search(text)
    if match is None:
        return None
    return " ".join(html.unescape(match.group(1)).split()) or None


def _metadata_title(kind: DocumentKind, data: bytes, text: str | None, elements: list[Any]) -> str | None:
    if kind in (DocumentKind.DOCX, DocumentKind.PPTX, DocumentKind.XLSX):
        return _ooxml_title(data)
    if kind is DocumentKind.HTML and text is not None:
        return _html_title(text)
    if kind in (DocumentKind.EML, DocumentKind.MSG) and elements:
        return elements[0].metadata.subject or None
    return None


def _parse_with_unstructured(filename: str, kind: DocumentKind, data: bytes, text: str | None) -> ParsedDocument:
    try:
        elements = _partition(kind, data, text)
    except QuarryError:
        raise
    except Exception as exc:  # partitioners raise whatever their parsers raise on damaged input
        raise UnreadableFile(
            f"{filename}: corrupt or unreadable {kind.value} ({type(exc).__name__}: {exc})",
            kind=FailureKind.DAMAGED_FILE,
        ) from exc
    out = _Assembler()
    is_email = kind in (DocumentKind.EML, DocumentKind.MSG)
    if is_email:
        out.add(_email_header(elements), _element_metadata(kind, elements[0]) if elements else {})
    for element in elements:
        if element.category != "PageBreak":
            out.add(_element_text(element), _element_metadata(kind, element))
    if is_email and len(out.parts) <= 1:
        raise UnreadableFile(f"{filename}: the message has no text", kind=FailureKind.NO_TEXT)
    title = _metadata_title(kind, data, text, elements) or _first_heading(elements)
    return _document(filename, out.text, title, out.sections, {})


# --------------------------------------------------------------------------- the port


class UnstructuredParser:
    """Implements ``ports.DocumentParser``. Stateless and thread-safe; heavy libraries load on first use."""

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES, archive_limits: ArchiveLimits | None = None) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._archive_limits = archive_limits or ArchiveLimits()

    def parse(self, data: bytes, *, filename: str, content_type: str | None = None) -> ParsedDocument:
        if len(data) > self._max_bytes:
            raise PayloadTooLarge(f"{filename}: {len(data)} bytes is over the {self._max_bytes}-byte limit")
        if not data.strip():
            raise UnreadableFile(f"{filename}: the file is empty", kind=FailureKind.EMPTY)
        kind = detect_kind(data, filename=filename, content_type=content_type)
        if kind is DocumentKind.PDF:
            return _parse_pdf(filename, data)
        if kind in _ZIP_KINDS:  # before any parser (or the title reader) opens the archive
            check_archive(filename, data, self._archive_limits, kind=kind.value)
        if kind in BINARY_KINDS or kind is DocumentKind.EML:  # e-mail declares its own charsets
            return _parse_with_unstructured(filename, kind, data, None)
        try:
            text = decode_text(data, filename=filename)
        except UnreadableDocument as exc:
            raise UnreadableFile(exc.message, kind=FailureKind.ENCODING) from exc
        if kind is DocumentKind.TXT:
            return _parse_plain(filename, text)
        if kind is DocumentKind.MD:
            return _parse_markdown(filename, text)
        if kind is DocumentKind.CSV:
            return _parse_csv(filename, text)
        if kind is DocumentKind.JSON:
            return _parse_json(filename, text)
        return _parse_with_unstructured(filename, kind, data, text)
