/** Wire-shaped fixtures (typed by the generated protocol types, so they cannot drift either). */
import type {
  CitationOut,
  DocumentOut,
  DocumentStatusEvent,
  FinalEvent,
  SessionDetailOut,
  TokenEvent,
  WorkspaceOut,
} from "../api/types";

export function token(sequence: number, text: string, ids: { session?: string; message?: string } = {}): TokenEvent {
  return { type: "token", session_id: ids.session ?? "s1", message_id: ids.message ?? "m1", sequence, text };
}

export function citation(n: number, patch: Partial<CitationOut> = {}): CitationOut {
  return {
    n,
    chunk_id: `c${n}`,
    document_id: `d${n}`,
    title: `Doc ${n}`,
    text: `Passage number ${n}.`,
    start: n * 100,
    end: n * 100 + 50,
    score: 0.9 - n / 10,
    document_name: "",
    workspace_id: "",
    page: null,
    highlight_start: null,
    highlight_end: null,
    ...patch,
  };
}

export function final(answer: string, patch: Partial<FinalEvent> = {}): FinalEvent {
  return {
    type: "final",
    session_id: "s1",
    message_id: "m1",
    answer,
    citations: [citation(1)],
    usage: { prompt_tokens: 10, completion_tokens: 5 },
    timings: { total: 1.5 },
    grounded: true,
    standalone_question: "q",
    stopped: false,
    ...patch,
  };
}

export function docStatus(patch: Partial<DocumentStatusEvent> = {}): DocumentStatusEvent {
  return {
    type: "document_status",
    workspace_id: "w1",
    document_id: "d1",
    name: "a.pdf",
    status: "processing",
    reason: null,
    chunk_count: 0,
    updated_at: null,
    ...patch,
  };
}

export function document(patch: Partial<DocumentOut> = {}): DocumentOut {
  return {
    id: "d1",
    workspace_id: "w1",
    name: "a.pdf",
    source: "file",
    status: "created",
    status_reason: null,
    content_type: "application/pdf",
    size_bytes: 1234,
    chunk_count: 0,
    parent_id: null,
    metadata: {},
    system: {},
    created_at: "2025-01-01T00:00:00Z",
    updated_at: "2025-01-01T00:00:00Z",
    ...patch,
  };
}

export function workspace(patch: Partial<WorkspaceOut> = {}): WorkspaceOut {
  return {
    id: "w1",
    name: "Handbook",
    owner: "dev",
    embedding_model: "minilm",
    dimensions: 384,
    chunk_size: 256,
    chunk_overlap: 32,
    hybrid: true,
    reranker: null,
    created_at: "2025-01-01T00:00:00Z",
    document_count: 2,
    chunk_count: 10,
    size_bytes: 2048,
    ...patch,
  };
}

export function sessionDetail(): SessionDetailOut {
  return {
    session: {
      id: "s9",
      owner: "dev",
      workspace_id: "w1",
      title: "Old chat",
      created_at: "2025-01-01T00:00:00Z",
      updated_at: "2025-01-01T00:00:00Z",
    },
    messages: [
      { id: "u1", session_id: "s9", role: "user", content: "Hi?", citations: [], created_at: "2025-01-01T00:00:00Z", stopped: false },
      {
        id: "m9",
        session_id: "s9",
        role: "assistant",
        content: "Hello [1].",
        citations: [citation(1)],
        created_at: "2025-01-01T00:00:01Z",
        stopped: false,
      },
    ],
    cursor: null,
  };
}
