import { describe, expect, it } from "vitest";
import { document } from "../test/fixtures";
import { type DocRow, rowFromDocument } from "./documents";
import { countByFilter, DEFAULT_VIEW, type DocumentView, loadView, saveView, toggleSort, visibleRows } from "./documentView";

const rows: DocRow[] = [
  rowFromDocument(document({ id: "a", name: "report-10.pdf", status: "processed", updated_at: "2026-01-03T00:00:00Z" })),
  rowFromDocument(document({ id: "b", name: "Report-2.pdf", status: "error", updated_at: "2026-01-01T00:00:00Z" })),
  rowFromDocument(document({ id: "c", name: "notes.md", status: "processing", updated_at: "2026-01-02T00:00:00Z" })),
  rowFromDocument(document({ id: "d", name: "draft.txt", status: "created", updated_at: "2026-01-04T00:00:00Z" })),
];
const names = (view: DocumentView) => visibleRows(rows, view).map((r) => r.name);

describe("visibleRows", () => {
  it("sorts by name by default, case-insensitively and with numbers in number order", () => {
    expect(names(DEFAULT_VIEW)).toEqual(["draft.txt", "notes.md", "Report-2.pdf", "report-10.pdf"]);
    expect(names({ ...DEFAULT_VIEW, direction: "descending" })).toEqual([
      "report-10.pdf",
      "Report-2.pdf",
      "notes.md",
      "draft.txt",
    ]);
  });

  it("sorts by status with failed documents first, ties by name", () => {
    expect(names({ ...DEFAULT_VIEW, sort: "status" })).toEqual(["Report-2.pdf", "draft.txt", "notes.md", "report-10.pdf"]);
  });

  it("sorts by update time, a row without one counting as the newest", () => {
    const fresh = { ...rows[0]!, id: "e", name: "uploading.pdf", updatedAt: null };
    const view: DocumentView = { ...DEFAULT_VIEW, sort: "updated", direction: "descending" };
    expect(visibleRows([...rows, fresh], view).map((r) => r.id)).toEqual(["e", "d", "a", "c", "b"]);
  });

  it("gives the same order whatever order the rows arrived in", () => {
    const view: DocumentView = { ...DEFAULT_VIEW, sort: "status" };
    expect(visibleRows([...rows].reverse(), view)).toEqual(visibleRows(rows, view));
  });

  it("filters by status; created and uploading count as processing", () => {
    expect(names({ ...DEFAULT_VIEW, filter: "processing" })).toEqual(["draft.txt", "notes.md"]);
    expect(names({ ...DEFAULT_VIEW, filter: "error" })).toEqual(["Report-2.pdf"]);
    expect(names({ ...DEFAULT_VIEW, filter: "processed" })).toEqual(["report-10.pdf"]);
    expect(countByFilter(rows)).toEqual({ all: 4, processing: 2, processed: 1, error: 1 });
  });

  it("counts a row whose upload failed as failed", () => {
    const failedUpload = { ...rows[3]!, upload: { loaded: 0, total: 1, phase: "failed" as const, error: "network" } };
    expect(countByFilter([failedUpload]).error).toBe(1);
  });
});

describe("toggleSort", () => {
  it("sorts a new column ascending (updated: newest first) and flips the same column", () => {
    const byStatus = toggleSort(DEFAULT_VIEW, "status");
    expect(byStatus).toMatchObject({ sort: "status", direction: "ascending" });
    expect(toggleSort(byStatus, "status").direction).toBe("descending");
    expect(toggleSort(DEFAULT_VIEW, "updated")).toMatchObject({ sort: "updated", direction: "descending" });
  });
});

describe("loadView / saveView", () => {
  it("keeps the chosen view across a reload and ignores anything it cannot read", () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const chosen: DocumentView = { sort: "status", direction: "descending", filter: "error" };

    saveView(storage, chosen);
    expect(loadView(storage)).toEqual(chosen);

    store.set("quarry.documents.view", JSON.stringify({ sort: "size", direction: "up", filter: "error" }));
    expect(loadView(storage)).toEqual({ ...DEFAULT_VIEW, filter: "error" });
    store.set("quarry.documents.view", "{not json");
    expect(loadView(storage)).toEqual(DEFAULT_VIEW);
    expect(loadView(null)).toEqual(DEFAULT_VIEW);
  });
});
