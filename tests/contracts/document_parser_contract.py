"""Behaviour every DocumentParser adapter must have (fixture: ``parser``, built with ``max_bytes=1 MiB``).

What the ingestion pipeline relies on, whatever turns bytes into text: sections are ordered spans of the
text, a title is always there, and every refusal is one of the two document errors (a status with a
reason), or ``PayloadTooLarge`` for a file over the limit — never a crash from inside a library.
"""

from __future__ import annotations

from typing import Any

import pytest

from quarry.errors import PayloadTooLarge, UnreadableDocument, UnsupportedDocument
from quarry.ports import DocumentParser, ParsedDocument

MAX_BYTES = 1024 * 1024

MARKDOWN = b"""# Enzymes

Kinases add phosphate groups to proteins.

## Regulation

Phosphatases remove them again, which switches the signal off.
"""


def _assert_well_formed(parsed: ParsedDocument) -> None:
    assert parsed.title.strip(), "every document has a title (its own, or one from the file name)"
    previous_end = 0
    for section in parsed.sections:
        assert 0 <= section.start <= section.end <= len(parsed.text)
        assert section.start >= previous_end, "sections are ordered and do not overlap"
        previous_end = section.end


class DocumentParserContract:
    def test_is_a_document_parser(self, parser: Any) -> None:
        assert isinstance(parser, DocumentParser)

    def test_plain_text_keeps_every_word(self, parser: Any) -> None:
        text = "Aspirin inhibits cyclooxygenase.\n\nIbuprofen does too, reversibly."
        parsed = parser.parse(text.encode(), filename="drugs.txt")
        _assert_well_formed(parsed)
        assert parsed.text.split() == text.split()

    def test_markdown_sections_cover_their_headings(self, parser: Any) -> None:
        parsed = parser.parse(MARKDOWN, filename="enzymes.md", content_type="text/markdown")
        _assert_well_formed(parsed)
        assert "Phosphatases remove them again" in parsed.text
        spans = [parsed.text[s.start : s.end] for s in parsed.sections]
        assert any("Phosphatases" in span for span in spans)

    def test_the_declared_type_is_honoured_without_an_extension(self, parser: Any) -> None:
        parsed = parser.parse(MARKDOWN, filename="notes", content_type="text/markdown")
        _assert_well_formed(parsed)
        assert "Kinases add phosphate groups" in parsed.text

    def test_an_empty_file_is_unreadable_with_a_reason(self, parser: Any) -> None:
        with pytest.raises(UnreadableDocument, match="empty"):
            parser.parse(b"  \n ", filename="blank.txt")

    def test_an_executable_is_unsupported(self, parser: Any) -> None:
        elf = b"\x7fELF\x02\x01\x01" + bytes(200)
        with pytest.raises(UnsupportedDocument):
            parser.parse(elf, filename="tool.txt")

    def test_a_file_over_the_limit_is_refused_before_parsing(self, parser: Any) -> None:
        with pytest.raises(PayloadTooLarge):
            parser.parse(b"a" * (MAX_BYTES + 1), filename="big.txt")

    def test_malformed_structured_text_is_unreadable_not_a_crash(self, parser: Any) -> None:
        with pytest.raises((UnreadableDocument, UnsupportedDocument)):
            parser.parse(b'{"open": [1, 2', filename="broken.json", content_type="application/json")
