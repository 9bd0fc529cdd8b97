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

  it("takes the time the server recorded each status, so Updated follows without a reload", () => {
    const processing = run([
      { type: "reset", workspaceId: "w1" },
      { type: "event", event: docStatus({ document_id: "new", status: "processing", updated_at: "2026-12-05T10:00:00Z" }) },
    ]);
    expect(processing.rows[0]).toMatchObject({ id: "new", updatedAt: "2026-12-05T10:00:00Z" });

    const processed = run(
      [{ type: "event", event: docStatus({ document_id: "new", status: "processed", updated_at: "2026-12-05T10:01:30Z" }) }],
      processing,
    );
    expect(processed.rows[0]).toMatchObject({ status: "processed", updatedAt: "2026-12-05T10:01:30Z" });

    // An older server sends no time: the row keeps the one it had.
    const older = run([{ type: "event", event: docStatus({ document_id: "new", status: "processed", updated_at: null }) }], processed);
    expect(older.rows[0]?.updatedAt).toBe("2026-12-05T10:01:30Z");
  });

  it("keeps a run's failure that arrived before the answer to the retry that started it", () => {
    const failed = document({ id: "d1", status: "error", status_reason: "damaged", updated_at: "2026-12-05T10:00:00Z" });
    const s = run([
      { type: "reset", workspaceId: "w1" },
      { type: "loaded", workspaceId: "w1", docs: [failed] },
      // The new run fails fast: its events come first...
      { type: "event", event: docStatus({ status: "processing", updated_at: "2026-12-05T10:05:01Z" }) },
      { type: "event", event: docStatus({ status: "error", reason: "damaged again", updated_at: "2026-12-05T10:05:02Z" }) },
      // ...then the 202 of the retry, with the document as it was when the run started.
      { type: "retried", doc: { ...failed, status: "created", status_reason: null, updated_at: "2026-12-05T10:05:00Z" } },
    ]);
    expect(s.rows[0]).toMatchObject({ status: "error", reason: "damaged again", updatedAt: "2026-12-05T10:05:02Z" });
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
