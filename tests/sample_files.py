"""Real files of every supported type, generated in the test process (nothing is shipped or downloaded)."""

from __future__ import annotations

import io
from email.message import EmailMessage

__all__ = ["handwritten_pdf", "make_docx", "make_eml", "make_image_only_pdf", "make_pdf", "make_pptx", "make_xlsx"]


def make_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": title} if title else None) as pdf:
        for lines in pages:
            figure = Figure(figsize=(8.5, 11))
            for i, line in enumerate(lines):
                figure.text(0.1, 0.9 - 0.05 * i, line, fontsize=12)
            pdf.savefig(figure)
    return buffer.getvalue()


def handwritten_pdf(page_texts: list[bytes], *, in_form: bool = False) -> bytes:
    """A minimal PDF written byte by byte: Helvetica text per page, optionally drawn through a form XObject."""

    def stream(content: bytes, extra: str = "") -> bytes:
        return f"<< {extra} /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"

    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids, next_id = [], 4
    for content in page_texts:
        page_id, contents_id, next_id = next_id, next_id + 1, next_id + 2
        resources = "/Font << /F1 3 0 R >>"
        if in_form:
            form_id, next_id = next_id, next_id + 1
            objects[form_id] = stream(
                content, f"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << {resources} >>"
            )
            resources, content = f"/XObject << /Fm1 {form_id} 0 R >>", b"/Fm1 Do"
        objects[contents_id] = stream(content)
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << {resources} >>"
            f" /Contents {contents_id} 0 R >>"
        ).encode()
        kids.append(f"{page_id} 0 R")
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number in range(1, len(objects) + 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_image_only_pdf() -> bytes:
    import numpy as np
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    with PdfPages(buffer) as pdf:
        figure = Figure(figsize=(4, 4))
        figure.figimage(np.random.default_rng(0).random((64, 64)), xo=20, yo=20)
        pdf.savefig(figure)
    return buffer.getvalue()


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Field Guide"
    document.add_heading("Birds of the Marsh", level=1)
    document.add_paragraph("The heron waits in shallow water. It strikes fast.")
    document.add_paragraph("Reed warblers nest in dense stands of reeds.")
    table = document.add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "Bird", (0, 1): "Weight", (1, 0): "Heron", (1, 1): "1.5 kg"}.items():
        table.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_pptx() -> bytes:
    import pptx

    deck = pptx.Presentation()
    for title, body in [("Roadmap", "Ship the parser in May."), ("Risks", "Scanned PDFs need OCR.")]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def make_xlsx() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sales = workbook.active
    sales.title = "Sales"
    for row in [["Fruit", "Quantity"], ["apple", 3], ["pear", 7]]:
        sales.append(row)
    staff = workbook.create_sheet("Staff")
    for row in [["Name", "Role"], ["Ada", "Engineer"]]:
        staff.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def make_eml() -> bytes:
    message = EmailMessage()
    message["Subject"] = "Quarterly report"
    message["From"] = "Alice <alice@example.com>"
    message["To"] = "bob@example.com"
    message.set_content("Hello Bob,\n\nRevenue grew by 12 percent in the third quarter.\n\nAlice\n", charset="latin-1")
    return bytes(message)
