/**
 * The documents screen's state as a pure reducer. Live status comes from `document_status`
 * WebSocket events (never polling); uploads report their progress per file.
 */
import { type UserMetadata, userMetadata } from "../api/metadata";
import type { DocumentOut, DocumentSource, DocumentStatus, DocumentStatusEvent } from "../api/types";

export type UploadPhase = "requesting" | "uploading" | "uploaded" | "failed";

export interface UploadInfo {
  loaded: number;
  total: number;
  phase: UploadPhase;
  error: string | null;
}

export interface DocRow {
  id: string;
  workspaceId: string;
  name: string;
  status: DocumentStatus;
  reason: string | null;
  chunkCount: number;
  source: DocumentSource | null;
  sizeBytes: number | null;
  parentId: string | null;
  updatedAt: string | null;
  upload: UploadInfo | null;
  /** The metadata the user set (`DocumentOut.metadata`). */
  metadata: UserMetadata;
}

/** A file whose upload failed before the server gave it a document id. */
export interface FailedUpload {
  localId: string;
  name: string;
  error: string;
}

export interface DocumentsState {
  workspaceId: string | null;
  rows: DocRow[];
  /** Files waiting for their upload URL: localId -> name. */
  requesting: { localId: string; name: string; size: number }[];
  failed: FailedUpload[];
}

export type DocumentsAction =
  | { type: "reset"; workspaceId: string | null }
  | { type: "loaded"; workspaceId: string; docs: DocumentOut[] }
  | { type: "added"; doc: DocumentOut }
  /** A retry was accepted: the failed row starts again (unless an event already moved it on). */
  | { type: "retried"; doc: DocumentOut }
  | { type: "removed"; id: string }
  | { type: "event"; event: DocumentStatusEvent }
  | { type: "uploadRequested"; localId: string; name: string; size: number }
  | { type: "uploadStarted"; localId: string; documentId: string; name: string; size: number; metadata?: UserMetadata }
  /** The document's metadata was changed (the PATCH's answer). */
  | { type: "metadata"; id: string; metadata: UserMetadata }
  | { type: "uploadProgress"; documentId: string; loaded: number; total: number }
  | { type: "uploadDone"; documentId: string }
  | { type: "uploadFailed"; localId: string; documentId: string | null; name: string; error: string }
  | { type: "dismissFailed"; localId: string };

export const initialDocumentsState: DocumentsState = { workspaceId: null, rows: [], requesting: [], failed: [] };

const RANK: Record<DocumentStatus, number> = { created: 0, processing: 1, processed: 2, error: 2 };

export function rowFromDocument(doc: DocumentOut, upload: UploadInfo | null = null): DocRow {
  return {
    id: doc.id,
    workspaceId: doc.workspace_id,
    name: doc.name,
    status: doc.status,
    reason: doc.status_reason,
    chunkCount: doc.chunk_count,
    source: doc.source,
    sizeBytes: doc.size_bytes,
    parentId: doc.parent_id,
    updatedAt: doc.updated_at,
    upload,
    metadata: userMetadata(doc.metadata),
  };
}

/**
 * Whether time `a` is later than `b`. A retry's answer can arrive after the status events of the run it
 * started (a fast failure): a row updated later than the answer keeps its newer status.
 */
function recordedAfter(a: string | null, b: string | null): boolean {
  if (!a || !b) return false;
  return Date.parse(a) > Date.parse(b);
}

function mapRow(state: DocumentsState, id: string, fn: (r: DocRow) => DocRow): DocumentsState {
  return { ...state, rows: state.rows.map((r) => (r.id === id ? fn(r) : r)) };
}

/** Applies a status event; a late event never moves a document back (processed -> processing). */
export function applyStatusEvent(state: DocumentsState, ev: DocumentStatusEvent): DocumentsState {
  if (ev.workspace_id !== state.workspaceId) return state;
  const row = state.rows.find((r) => r.id === ev.document_id);
  const reason = ev.status === "error" ? (ev.reason ?? "Processing failed (no reason given).") : null;
  if (!row) {
    const fresh: DocRow = {
      id: ev.document_id,
      workspaceId: ev.workspace_id,
      name: ev.name,
      status: ev.status,
      reason,
      chunkCount: ev.chunk_count,
      source: null,
      sizeBytes: null,
      parentId: null,
      updatedAt: ev.updated_at ?? null,
      upload: null,
      metadata: {},
    };
    return { ...state, rows: [fresh, ...state.rows] };
  }
  if (RANK[ev.status] < RANK[row.status]) return state;
  return mapRow(state, ev.document_id, (r) => ({
    ...r,
    name: ev.name || r.name,
    status: ev.status,
    reason,
    chunkCount: ev.chunk_count,
    // The time the server recorded this status: the Updated column follows live, without a reload.
    updatedAt: ev.updated_at ?? r.updatedAt,
  }));
}

function upsert(state: DocumentsState, row: DocRow): DocumentsState {
  if (state.rows.some((r) => r.id === row.id)) return mapRow(state, row.id, (r) => ({ ...row, upload: r.upload }));
  return { ...state, rows: [row, ...state.rows] };
}

function uploadStarted(state: DocumentsState, a: Extract<DocumentsAction, { type: "uploadStarted" }>): DocumentsState {
  const requesting = state.requesting.filter((r) => r.localId !== a.localId);
  const upload: UploadInfo = { loaded: 0, total: a.size, phase: "uploading", error: null };
  const existing = state.rows.find((r) => r.id === a.documentId);
  if (existing) return { ...mapRow(state, a.documentId, (r) => ({ ...r, upload })), requesting };
  const row: DocRow = {
    id: a.documentId,
    workspaceId: state.workspaceId ?? "",
    name: a.name,
    status: "created",
    reason: null,
    chunkCount: 0,
    source: "file",
    sizeBytes: a.size,
    parentId: null,
    updatedAt: null,
    upload,
    metadata: a.metadata ?? {},
  };
  return { ...state, rows: [row, ...state.rows], requesting };
}

function uploadFailed(state: DocumentsState, a: Extract<DocumentsAction, { type: "uploadFailed" }>): DocumentsState {
  const requesting = state.requesting.filter((r) => r.localId !== a.localId);
  if (a.documentId && state.rows.some((r) => r.id === a.documentId)) {
    return {
      ...mapRow(state, a.documentId, (r) => ({
        ...r,
        upload: { ...(r.upload ?? { loaded: 0, total: 0 }), phase: "failed", error: a.error },
      })),
      requesting,
    };
  }
  return { ...state, requesting, failed: [...state.failed, { localId: a.localId, name: a.name, error: a.error }] };
}

/**
 * A fresh listing, merged with what arrived while it loaded: a row already further along (from a
 * status event) keeps its status, and rows being uploaded that the listing misses are kept.
 */
function mergeLoaded(state: DocumentsState, docs: DocumentOut[]): DocumentsState {
  const known = new Map(state.rows.map((r) => [r.id, r]));
  const listed = new Set(docs.map((d) => d.id));
  const rows = docs.map((d) => {
    const old = known.get(d.id);
    const row = rowFromDocument(d, old?.upload ?? null);
    if (old && RANK[old.status] > RANK[row.status]) {
      return { ...row, status: old.status, reason: old.reason, chunkCount: old.chunkCount, updatedAt: old.updatedAt };
    }
    return row;
  });
  const pending = state.rows.filter((r) => !listed.has(r.id) && r.upload !== null);
  return { ...state, rows: [...pending, ...rows] };
}

export function documentsReducer(state: DocumentsState, action: DocumentsAction): DocumentsState {
  switch (action.type) {
    case "reset":
      return { ...initialDocumentsState, workspaceId: action.workspaceId };
    case "loaded":
      return action.workspaceId === state.workspaceId ? mergeLoaded(state, action.docs) : state;
    case "added":
      return action.doc.workspace_id === state.workspaceId ? upsert(state, rowFromDocument(action.doc)) : state;
    case "retried":
      return mapRow(state, action.doc.id, (r) =>
        r.status === "error" && !recordedAfter(r.updatedAt, action.doc.updated_at) ? rowFromDocument(action.doc, r.upload) : r,
      );
    case "metadata":
      return mapRow(state, action.id, (r) => ({ ...r, metadata: action.metadata }));
    case "removed":
      return { ...state, rows: state.rows.filter((r) => r.id !== action.id) };
    case "event":
      return applyStatusEvent(state, action.event);
    case "uploadRequested":
      return {
        ...state,
        requesting: [...state.requesting, { localId: action.localId, name: action.name, size: action.size }],
      };
    case "uploadStarted":
      return uploadStarted(state, action);
    case "uploadProgress":
      return mapRow(state, action.documentId, (r) =>
        r.upload ? { ...r, upload: { ...r.upload, loaded: action.loaded, total: action.total } } : r,
      );
    case "uploadDone":
      return mapRow(state, action.documentId, (r) =>
        r.upload ? { ...r, upload: { ...r.upload, loaded: r.upload.total, phase: "uploaded" } } : r,
      );
    case "uploadFailed":
      return uploadFailed(state, action);
    case "dismissFailed":
      return { ...state, failed: state.failed.filter((f) => f.localId !== action.localId) };
  }
}
