import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { rowFromDocument } from "../../state/documents";
import { DEFAULT_VIEW } from "../../state/documentView";
import { document } from "../../test/fixtures";
import { DocumentTable } from "./DocumentTable";

const REASON = "This PDF is damaged or incomplete. Open it on your computer to check it.";

function renderTable() {
  const rows = [
    rowFromDocument(document({ id: "d1", name: "tides.md", status: "processed", chunk_count: 2, metadata: { team: "harbour" } })),
    rowFromDocument(document({ id: "d2", name: "broken.pdf", status: "error", status_reason: REASON })),
    rowFromDocument(document({ id: "d3", name: "upload.txt", status: "created" }), { phase: "uploading", loaded: 5, total: 10, error: null }),
  ];
  render(
    <DocumentTable
      rows={rows}
      view={DEFAULT_VIEW}
      onSort={() => undefined}
      onDelete={() => Promise.resolve()}
      onRetry={() => Promise.resolve()}
      onPreview={() => undefined}
      onMetadata={() => undefined}
    />,
  );
}

describe("the documents table stacked as cards (a narrow screen)", () => {
  it("labels each cell with the header of its own column, in every row, out of the screen reader's way", () => {
    renderTable();
    const headers = within(screen.getByTestId("document-table")).getAllByRole("columnheader");
    // A sortable header's text is its button's first text node (then the sort mark and the screen-reader hint).
    const headerTexts = headers.map((h) => h.querySelector("button")?.firstChild?.textContent ?? h.textContent);
    expect(headerTexts.slice(1, -1)).toEqual(["Source", "Status", "Metadata", "Chunks", "Size", "Updated"]);
    for (const row of screen.getAllByTestId("document-row")) {
      const labels = Array.from(row.children, (cell) => cell.querySelector(".cell-label"));
      expect(labels).toHaveLength(headers.length);
      // The name is the card's title and the buttons need no label; every other cell says which column it is.
      expect(labels[0]).toBeNull();
      expect(labels.at(-1)).toBeNull();
      expect(labels.slice(1, -1).map((label) => label?.textContent)).toEqual(headerTexts.slice(1, -1));
      // Hidden from screen readers: they announce the column header already.
      expect(labels.slice(1, -1).map((label) => label?.getAttribute("aria-hidden"))).toEqual(Array(6).fill("true"));
    }
  });
});
