import { describe, expect, it } from "vitest";
import { docStatus, document } from "../test/fixtures";
import { type DocumentsAction, type DocumentsState, documentsReducer, initialDocumentsState } from "./documents";

function run(actions: DocumentsAction[], start: DocumentsState = initialDocumentsState): DocumentsState {
  return actions.reduce(documentsReducer, start);
}

const opened: DocumentsAction[] = [
  { type: "reset", workspaceId: "w1" },
  { type: "loaded", workspaceId: "w1", docs: [document({ id: "d1", name: "a.pdf", status: "created" })] },
];

describe("document status events", () => {
  it("moves a document through processing to processed with its chunk count", () => {
    const s = run([
      ...opened,
      { type: "event", event: docStatus({ status: "processing" }) },
      { type: "event", event: docStatus({ status: "processed", chunk_count: 12 }) },
    ]);
    expect(s.rows[0]).toMatchObject({ id: "d1", status: "processed", chunkCount: 12, reason: null });
  });

  it("keeps the failure reason of a failed document", () => {
    const s = run([...opened, { type: "event", event: docStatus({ status: "error", reason: "PDF is encrypted" }) }]);
    expect(s.rows[0]).toMatchObject({ status: "error", reason: "PDF is encrypted" });
  });

  it("gives a failed document a reason even when the server sent none", () => {
    const s = run([...opened, { type: "event", event: docStatus({ status: "error", reason: null }) }]);
    expect(s.rows[0]?.reason).toMatch(/failed/i);
  });

  it("never moves a document back when events arrive late", () => {
    const s = run([
      ...opened,
      { type: "event", event: docStatus({ status: "processed", chunk_count: 3 }) },
      { type: "event", event: docStatus({ status: "processing" }) },
    ]);
    expect(s.rows[0]?.status).toBe("processed");
  });

  it("ignores events of other workspaces", () => {
    const start = run(opened);
    const s = documentsReducer(start, { type: "event", event: docStatus({ workspace_id: "w2", status: "processed" }) });
    expect(s).toBe(start);
  });

  it("adds a row for a document it did not know (e.g. a crawled page)", () => {
    const s = run([...opened, { type: "event", event: docStatus({ document_id: "d2", name: "page.html", status: "processing" }) }]);
    expect(s.rows.map((r) => r.id)).toEqual(["d2", "d1"]);
    expect(s.rows[0]?.name).toBe("page.html");
  });

  it("a listing that loads after an event keeps the newer status", () => {
    const s = run([
      { type: "reset", workspaceId: "w1" },
      { type: "event", event: docStatus({ status: "processed", chunk_count: 4 }) },
      { type: "loaded", workspaceId: "w1", docs: [document({ status: "processing" })] },
    ]);
    expect(s.rows).toHaveLength(1);
    expect(s.rows[0]).toMatchObject({ status: "processed", chunkCount: 4 });
  });

  it("a listing for a workspace no longer shown is ignored", () => {
    const start = run(opened);
    expect(documentsReducer(start, { type: "loaded", workspaceId: "w2", docs: [] })).toBe(start);
  });
});

describe("uploads", () => {
  it("tracks a file from its upload URL to uploaded, then status events take over", () => {
    const s = run([
      ...opened,
      { type: "uploadRequested", localId: "u1", name: "b.txt", size: 100 },
      { type: "uploadStarted", localId: "u1", documentId: "d2", name: "b.txt", size: 100 },
      { type: "uploadProgress", documentId: "d2", loaded: 40, total: 100 },
    ]);
    expect(s.requesting).toHaveLength(0);
    expect(s.rows[0]).toMatchObject({ id: "d2", status: "created", upload: { loaded: 40, total: 100, phase: "uploading" } });
    const done = run(
      [
        { type: "uploadDone", documentId: "d2" },
        { type: "event", event: docStatus({ document_id: "d2", name: "b.txt", status: "processed", chunk_count: 1 }) },
      ],
      s,
    );
    expect(done.rows[0]).toMatchObject({ status: "processed", upload: { phase: "uploaded", loaded: 100 } });
  });

  it("a file refused before it got an id is listed with its reason", () => {
    const s = run([
      ...opened,
      { type: "uploadRequested", localId: "u1", name: "x.exe", size: 1 },
      { type: "uploadFailed", localId: "u1", documentId: null, name: "x.exe", error: "Unsupported file type" },
    ]);
    expect(s.failed).toEqual([{ localId: "u1", name: "x.exe", error: "Unsupported file type" }]);
    expect(run([{ type: "dismissFailed", localId: "u1" }], s).failed).toHaveLength(0);
  });

  it("a failed transfer marks its row", () => {
    const s = run([
      ...opened,
      { type: "uploadStarted", localId: "u1", documentId: "d2", name: "b.txt", size: 100 },
      { type: "uploadFailed", localId: "u1", documentId: "d2", name: "b.txt", error: "EntityTooLarge" },
    ]);
    expect(s.rows[0]?.upload).toMatchObject({ phase: "failed", error: "EntityTooLarge" });
  });

  it("a listing keeps rows still uploading that it does not contain yet", () => {
    const s = run([
      ...opened,
      { type: "uploadStarted", localId: "u1", documentId: "d2", name: "b.txt", size: 100 },
      { type: "loaded", workspaceId: "w1", docs: [document()] },
    ]);
    expect(s.rows.map((r) => r.id)).toEqual(["d2", "d1"]);
  });

  it("added and removed documents", () => {
    const s = run([...opened, { type: "added", doc: document({ id: "d3", name: "note", source: "text" }) }]);
    expect(s.rows.map((r) => r.id)).toEqual(["d3", "d1"]);
    expect(run([{ type: "removed", id: "d3" }], s).rows.map((r) => r.id)).toEqual(["d1"]);
  });
});
