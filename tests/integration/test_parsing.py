"""UnstructuredParser on real files generated here: every supported type, and every way to fail."""

from __future__ import annotations

import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from quarry.errors import PayloadTooLarge, UnreadableDocument, UnsupportedDocument
from quarry.models import ChunkingConfig
from quarry.ports import DocumentParser, ParsedDocument
from quarry.text.chunking import RecursiveChunker
from quarry.text.parsing import DocumentKind, UnstructuredParser, decode_text, detect_kind
from quarry.text.tokens import HFTokenizer
from tests.sample_files import (
    handwritten_pdf,
    make_docx,
    make_eml,
    make_image_only_pdf,
    make_pdf,
    make_pptx,
    make_xlsx,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Parsing is offline: any attempt to reach beyond loopback (telemetry, model download) fails the test.

    Attempts are recorded as well as refused, because libraries swallow their own network errors.
    """
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if not (str(host).startswith("127.") or host in ("::1", "localhost") or self.family == socket.AF_UNIX):
            attempts.append(f"connect {address}")
            raise OSError(f"network is off in this test: {address}")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            attempts.append(f"resolve {host}")
            raise OSError(f"network is off in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert attempts == [], f"the parser reached for the network: {attempts}"


@pytest.fixture(scope="module")
def parser() -> UnstructuredParser:
    return UnstructuredParser(max_bytes=5 * 1024 * 1024)


# --------------------------------------------------------------------------- types


def test_implements_the_port(parser: UnstructuredParser) -> None:
    assert isinstance(parser, DocumentParser)


def test_plain_text(parser: UnstructuredParser) -> None:
    doc = parser.parse(b"\xef\xbb\xbfFirst line.\r\n\r\nSecond paragraph.\r\n", filename="notes.txt")
    assert doc.text == "First line.\n\nSecond paragraph."
    assert doc.title == "notes"


def test_latin1_text_is_detected_and_decoded(parser: UnstructuredParser) -> None:
    original = "Le garçon était très fâché à cause de la pluie. Les élèves ont mangé des crêpes à Noël. " * 3
    doc = parser.parse(original.encode("latin-1"), filename="lettre.txt")
    assert doc.text == original.strip()


def test_utf16_with_bom(parser: UnstructuredParser) -> None:
    assert parser.parse("Grüße aus Köln".encode("utf-16"), filename="g.txt").text == "Grüße aus Köln"


def test_markdown_keeps_headings_and_sections(parser: UnstructuredParser) -> None:
    source = "Intro text.\n\n# Guide\n\nSome words.\n\n```\n# not a heading\n```\n\n## Install\n\nRun it.\n"
    doc = parser.parse(source.encode(), filename="guide.md")
    assert doc.text == source.strip()
    assert doc.title == "Guide"
    headings = [(doc.text[s.start : s.end].split("\n")[0], s.metadata) for s in doc.sections]
    assert headings == [
        ("Intro text.", {}),
        ("# Guide", {"heading": "Guide"}),
        ("## Install", {"heading": "Install"}),
    ]


def test_html(parser: UnstructuredParser) -> None:
    page = (
        "<html><head><title>Tide &amp; Times</title></head><body><h1>Tides</h1>"
        "<p>High tide comes twice a day.</p><ul><li>Spring tides</li><li>Neap tides</li></ul>"
        "<table><tr><th>Port</th><th>Range</th></tr><tr><td>Brest</td><td>7 m</td></tr></table></body></html>"
    )
    doc = parser.parse(page.encode(), filename="tides.html", content_type="text/html; charset=utf-8")
    assert doc.title == "Tide & Times"
    assert doc.text.split("\n\n") == [
        "Tides",
        "High tide comes twice a day.",
        "- Spring tides",
        "- Neap tides",
        "Port | Range\nBrest | 7 m",
    ]


def test_pdf_text_pages_and_title(parser: UnstructuredParser) -> None:
    data = make_pdf(
        [["Lighthouses of Brittany", "The Phare du Creach guards Ushant."], ["Second page about fog signals."]],
        title="Lighthouse Survey",
    )
    doc = parser.parse(data, filename="survey.pdf", content_type="application/pdf")
    assert doc.title == "Lighthouse Survey"
    assert "The Phare du Creach guards Ushant." in doc.text
    assert "Second page about fog signals." in doc.text
    assert doc.metadata == {"page_count": 2}
    pages = {s.metadata["page_number"]: doc.text[s.start : s.end] for s in doc.sections}
    assert set(pages) == {1, 2}
    assert "Ushant" in pages[1]
    assert "fog" in pages[2]


def test_handwritten_pdf_and_text_inside_form_xobjects(parser: UnstructuredParser) -> None:
    page = b"BT /F1 12 Tf 72 700 Td (Tidal power is predictable.) Tj ET"
    plain = parser.parse(handwritten_pdf([page]), filename="plain.pdf")
    assert plain.text == "Tidal power is predictable."
    assert plain.title == "plain"
    in_form = parser.parse(handwritten_pdf([page, page.replace(b"Tidal", b"Wave")], in_form=True), filename="f.pdf")
    assert in_form.text == "Tidal power is predictable.\n\nWave power is predictable."
    assert [s.metadata for s in in_form.sections] == [{"page_number": 1}, {"page_number": 2}]


def test_pdf_without_any_text_or_image(parser: UnstructuredParser) -> None:
    with pytest.raises(UnreadableDocument, match=re.escape("blank.pdf: the PDF has no text")):
        parser.parse(handwritten_pdf([b"0 0 m 100 100 l S"]), filename="blank.pdf")


def test_pdf_title_falls_back_to_filename(parser: UnstructuredParser) -> None:
    doc = parser.parse(make_pdf([["Just one line of text."]]), filename="memo-2024.pdf")
    assert doc.title == "memo-2024"


def test_docx(parser: UnstructuredParser) -> None:
    doc = parser.parse(make_docx(), filename="guide.docx")
    assert doc.title == "Field Guide"
    assert doc.text.split("\n\n") == [
        "Birds of the Marsh",
        "The heron waits in shallow water. It strikes fast.",
        "Reed warblers nest in dense stands of reeds.",
        "Bird | Weight\nHeron | 1.5 kg",
    ]


def test_pptx_slides_are_pages(parser: UnstructuredParser) -> None:
    doc = parser.parse(make_pptx(), filename="plan.pptx")
    by_page = {s.metadata["page_number"]: doc.text[s.start : s.end] for s in doc.sections}
    assert by_page == {1: "Roadmap\n\nShip the parser in May.", 2: "Risks\n\nScanned PDFs need OCR."}
    assert doc.title == "Roadmap"


def test_xlsx_sheets(parser: UnstructuredParser) -> None:
    doc = parser.parse(make_xlsx(), filename="book.xlsx")
    by_sheet = {s.metadata["sheet"]: doc.text[s.start : s.end] for s in doc.sections}
    assert by_sheet == {"Sales": "Fruit | Quantity\napple | 3\npear | 7", "Staff": "Name | Role\nAda | Engineer"}


def test_csv_fast_path(parser: UnstructuredParser) -> None:
    doc = parser.parse(b'name;city\n"Smith; John";Paris\n\nLee;Oslo\n', filename="people.csv")
    assert doc.text == "name | city\nSmith; John | Paris\nLee | Oslo"


def test_json_fast_path(parser: UnstructuredParser) -> None:
    payload = {"title": "Catalogue", "items": [{"name": "lamp", "price": 12.5}, {"name": "desk", "tags": ["oak"]}]}
    doc = parser.parse(json.dumps(payload).encode(), filename="catalogue.json")
    assert doc.title == "Catalogue"
    assert doc.text.splitlines() == [
        "title: Catalogue",
        "items[0].name: lamp",
        "items[0].price: 12.5",
        "items[1].name: desk",
        "items[1].tags[0]: oak",
    ]


def test_email(parser: UnstructuredParser) -> None:
    doc = parser.parse(make_eml(), filename="report.eml")
    assert doc.title == "Quarterly report"
    assert doc.text.startswith("Subject: Quarterly report\nFrom: Alice <alice@example.com>\nTo: bob@example.com")
    assert "Revenue grew by 12 percent in the third quarter." in doc.text
    assert all(s.metadata == {"subject": "Quarterly report", "from": "Alice <alice@example.com>"} for s in doc.sections)


def test_unstructured_runs_without_spacy_torch_or_network() -> None:
    code = (
        "import socket, sys\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit(f'network used: {args!r}')\n"
        "socket.getaddrinfo = refuse\n"
        "socket.socket.connect = refuse\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_parsing import make_docx, make_eml, make_pptx\n"
        "from quarry.text.parsing import UnstructuredParser\n"
        "p = UnstructuredParser()\n"
        "p.parse(make_docx(), filename='a.docx'); p.parse(make_pptx(), filename='a.pptx')\n"
        "p.parse(make_eml(), filename='a.eml'); p.parse(b'<p>Hello there.</p>', filename='a.html')\n"
        "import unstructured.nlp.tokenize as nlp\n"
        "print(nlp.__doc__.startswith('Offline'), sorted(m for m in ('spacy', 'torch', 'thinc') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True []"


def test_an_already_imported_spacy_tokenizer_is_kept_from_downloading() -> None:
    code = (
        "import socket, sys\n"
        "import unstructured.nlp.tokenize as real\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit(f'network used: {args!r}')\n"
        "socket.getaddrinfo = refuse\n"
        "socket.socket.connect = refuse\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_parsing import make_docx\n"
        "from quarry.text.parsing import UnstructuredParser\n"
        "doc = UnstructuredParser().parse(make_docx(), filename='a.docx')\n"
        "print(sys.modules['unstructured.nlp.tokenize'] is real, real._get_nlp().pipe_names, 'heron' in doc.text)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True ['sentencizer'] True"


def test_offline_tokenizers_split_words_and_sentences() -> None:
    from quarry.text import parsing

    assert parsing._sent_tokenize("One sentence. Another one!  Third?") == ["One sentence.", "Another one!", "Third?"]
    assert parsing._word_tokenize("It's well-known, isn't it?") == ["It's", "well-known", ",", "isn't", "it", "?"]
    assert ("was", "VBZ") in parsing._pos_tag("The report was finished")


def test_fast_paths_do_not_import_unstructured() -> None:
    code = (
        "import sys\n"
        "from quarry.text.parsing import UnstructuredParser\n"
        "p = UnstructuredParser()\n"
        "p.parse(b'# T\\n\\nx', filename='a.md'); p.parse(b'a,b\\n1,2', filename='a.csv')\n"
        "p.parse(b'{\"a\": 1}', filename='a.json'); p.parse(b'hi', filename='a.txt')\n"
        "print('unstructured' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- detection


def test_signature_beats_extension(parser: UnstructuredParser) -> None:
    doc = parser.parse(make_docx(), filename="upload.bin", content_type="application/octet-stream")
    assert "heron" in doc.text
    assert detect_kind(make_pdf([["x"]]), filename="x.txt") is DocumentKind.PDF


def test_declared_type_is_used_without_extension() -> None:
    assert detect_kind(b"<p>hi</p>", filename="page", content_type="text/html") is DocumentKind.HTML
    assert detect_kind(b"hello", filename="README") is DocumentKind.TXT
    assert detect_kind(b"a: b", filename="data.yaml", content_type="text/yaml") is DocumentKind.TXT


def test_executable_is_unsupported(parser: UnstructuredParser) -> None:
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)
    with pytest.raises(UnsupportedDocument) as caught:
        parser.parse(exe, filename="report.exe")
    assert caught.value.message == "report.exe: unsupported type application/x-msdownload"
    with pytest.raises(UnsupportedDocument, match=re.escape("invoice.pdf: unsupported type application/x-msdownload")):
        parser.parse(exe, filename="invoice.pdf", content_type="application/pdf")


def test_text_that_happens_to_start_like_a_signature_is_still_text(parser: UnstructuredParser) -> None:
    assert parser.parse(b"MZ was the band's name.", filename="bands.txt").text == "MZ was the band's name."
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(64)
    with pytest.raises(UnsupportedDocument, match=re.escape("fake.txt: unsupported type application/x-msdownload")):
        parser.parse(exe, filename="fake.txt")


def test_images_and_unknown_binaries_are_unsupported(parser: UnstructuredParser) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    with pytest.raises(UnsupportedDocument, match=re.escape("scan.png: unsupported type image/png")):
        parser.parse(png, filename="scan.png")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(UnsupportedDocument, match=re.escape("bundle.zip: unsupported type application/zip")):
        parser.parse(zipped.getvalue(), filename="bundle.zip")
    blob = random.Random(3).randbytes(4096)
    with pytest.raises(UnsupportedDocument, match=re.escape("blob.bin: unsupported type application/octet-stream")):
        parser.parse(blob, filename="blob.bin")


# --------------------------------------------------------------------------- failures


def test_random_bytes_called_txt_are_unreadable(parser: UnstructuredParser) -> None:
    blob = bytes(b for b in random.Random(5).randbytes(4096) if b)  # no NULs: force encoding detection
    with pytest.raises(
        UnreadableDocument, match=re.escape("noise.txt: text is not UTF-8 and its encoding could not be detected")
    ):
        parser.parse(blob, filename="noise.txt")
    with pytest.raises(UnreadableDocument, match=re.escape("nul.txt: binary data, not text")):
        parser.parse(b"abc\x00\xff\xfe\x00def" * 10, filename="nul.txt")


def test_empty_files_are_unreadable(parser: UnstructuredParser) -> None:
    for name in ["empty.txt", "empty.pdf", "empty.docx"]:
        with pytest.raises(UnreadableDocument, match=re.escape(f"{name}: the file is empty")):
            parser.parse(b"", filename=name)
    with pytest.raises(UnreadableDocument, match=re.escape("blank.txt: the file is empty")):
        parser.parse(b" \n\n\t", filename="blank.txt")
    with pytest.raises(UnreadableDocument, match=re.escape("nothing.json: the document has no text")):
        parser.parse(b'{"a": null, "b": []}', filename="nothing.json")
    with pytest.raises(UnreadableDocument, match=re.escape("tags.html: the document has no text")):
        parser.parse(b"<html><body><div></div></body></html>", filename="tags.html")


def test_image_only_pdf_needs_ocr(parser: UnstructuredParser) -> None:
    with pytest.raises(UnreadableDocument) as caught:
        parser.parse(make_image_only_pdf(), filename="scan.pdf")
    assert caught.value.message == "scan.pdf: no extractable text; OCR is not available"


def test_corrupt_pdfs_are_unreadable(parser: UnstructuredParser) -> None:
    with pytest.raises(UnreadableDocument, match=re.escape("broken.pdf: corrupt or unreadable PDF")):
        parser.parse(b"%PDF-1.7\n" + random.Random(1).randbytes(2000), filename="broken.pdf")
    whole = make_pdf([["Some text"]])
    with pytest.raises(UnreadableDocument, match=re.escape("half.pdf: ")):
        parser.parse(whole[: len(whole) // 3], filename="half.pdf")


def test_corrupt_office_files_are_unreadable(parser: UnstructuredParser) -> None:
    docx_bytes = make_docx()
    with pytest.raises(UnreadableDocument, match=re.escape("cut.docx: corrupt or unreadable docx")):
        parser.parse(docx_bytes[: len(docx_bytes) // 2], filename="cut.docx")
    fake = io.BytesIO()
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("word/document.xml", "<not-really")
    with pytest.raises(UnreadableDocument, match=re.escape("fake.docx: corrupt or unreadable docx")):
        parser.parse(fake.getvalue(), filename="fake.docx")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + random.Random(2).randbytes(1000)
    with pytest.raises(UnreadableDocument, match=re.escape("mail.msg: corrupt or unreadable msg")):
        parser.parse(ole, filename="mail.msg")


def test_invalid_json_is_unreadable(parser: UnstructuredParser) -> None:
    with pytest.raises(UnreadableDocument, match=re.escape("bad.json: invalid JSON")):
        parser.parse(b'{"a": ', filename="bad.json")


def test_size_limit(parser: UnstructuredParser) -> None:
    small = UnstructuredParser(max_bytes=1000)
    with pytest.raises(PayloadTooLarge, match=re.escape("big.txt: 1001 bytes is over the 1000-byte limit")):
        small.parse(b"a" * 1001, filename="big.txt")
    assert small.parse(b"a" * 1000, filename="ok.txt").text == "a" * 1000
    with pytest.raises(ValueError):
        UnstructuredParser(max_bytes=0)


def test_decode_text_prefers_utf8() -> None:
    assert decode_text("naïve".encode(), filename="x") == "naïve"


# --------------------------------------------------------------------------- with the chunker


def _chunk(doc: ParsedDocument) -> list[Any]:
    return RecursiveChunker(HFTokenizer(), ChunkingConfig(size=24, overlap=4)).split(
        "d", "w", doc, base_metadata={"name": "x"}
    )


def test_pdf_chunks_carry_page_numbers(parser: UnstructuredParser) -> None:
    long_line = "Fog horns sound every thirty seconds in thick weather near the reef."
    doc = parser.parse(make_pdf([[long_line] * 4, [long_line.replace("Fog", "Bells")] * 4]), filename="f.pdf")
    chunks = _chunk(doc)
    assert {c.metadata["page_number"] for c in chunks} == {1, 2}
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.metadata["name"] == "x"
        assert c.metadata["page_count"] == 2
        if "page_number_end" not in c.metadata:
            assert ("Bells" in c.text) == (c.metadata["page_number"] == 2)


@pytest.fixture(scope="module")
def timings() -> Iterator[dict[str, float]]:
    found: dict[str, float] = {}
    yield found
    if os.environ.get("QUARRY_PRINT_TIMINGS"):
        print("\nparse timings (s):", json.dumps(found))


def test_parse_time_of_typical_files(parser: UnstructuredParser, timings: dict[str, float]) -> None:
    import time

    paragraph = "The committee reviewed the annual budget and approved the new research programme. " * 8
    pdf = make_pdf([[paragraph[i : i + 90] for i in range(0, len(paragraph), 90)]] * 5)
    files = {"survey.pdf": pdf, "guide.docx": make_docx(), "plan.pptx": make_pptx(), "book.xlsx": make_xlsx()}
    for name, data in files.items():
        parser.parse(data, filename=name)  # first call pays the imports
        begin = time.perf_counter()
        parser.parse(data, filename=name)
        timings[name] = round(time.perf_counter() - begin, 4)
    assert all(seconds < 5 for seconds in timings.values()), timings


# --------------------------------------------------------------------------- zip archives (issue #13)


def _office_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_archive_limits_refuse_ratio_and_member_count_but_not_real_office_files() -> None:
    from quarry.text.parsing import ArchiveLimits, check_archive

    limits = ArchiveLimits(max_expanded_bytes=64 * 1024 * 1024, max_ratio=50, max_members=100)
    for real in (make_docx(), make_pptx(), make_xlsx()):
        check_archive("real", real, limits)  # no exception
    zeros = _office_zip({"word/document.xml": b"\0" * (8 * 1024 * 1024)})
    with pytest.raises(UnreadableDocument, match=r"^dense\.docx: archive expands \d+ times its size"):
        check_archive("dense.docx", zeros, limits)
    many = _office_zip({f"word/part{i}.xml": b"<p/>" for i in range(120)})
    with pytest.raises(UnreadableDocument, match=r"^many\.docx: archive holds more than 100 files$"):
        UnstructuredParser(archive_limits=limits).parse(many, filename="many.docx")


def test_an_archive_that_under_declares_its_sizes_is_not_inflated_beyond_them() -> None:
    """The central directory says 1 KB; the deflated stream holds 8 MB. Nothing trusts the stream's length."""
    from quarry.text.parsing import ArchiveLimits, check_archive

    data = bytearray(_office_zip({"word/document.xml": b"A" * (8 * 1024 * 1024)}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("word/document.xml")
    offset = data.find(info.filename.encode(), data.index(b"PK\x01\x02")) - 46  # that member's directory record
    assert data[offset : offset + 4] == b"PK\x01\x02"
    data[offset + 24 : offset + 28] = (1024).to_bytes(4, "little")  # uncompressed size
    with pytest.raises(UnreadableDocument, match=r"^liar\.docx: corrupt or unreadable archive \(BadZipFile"):
        check_archive("liar.docx", bytes(data), ArchiveLimits(max_expanded_bytes=4 * 1024 * 1024, max_ratio=10_000))
