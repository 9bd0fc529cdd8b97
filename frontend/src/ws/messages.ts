import type { ClientMessage, ServerMessage } from "../api/types";

type Kind = "string" | "number" | "boolean" | "object" | "string|null" | "number|null";

/**
 * The fields the UI relies on, per server message type. `messages.test.ts` checks this table
 * against the `required` lists of schema.json, so a backend change cannot slip by.
 */
export const SERVER_MESSAGE_FIELDS: Record<ServerMessage["type"], Record<string, Kind>> = {
  token: { session_id: "string", message_id: "string", sequence: "number", text: "string" },
  progress: { session_id: "string", message_id: "string", phase: "string", sources: "number|null" },
  final: {
    session_id: "string",
    message_id: "string",
    answer: "string",
    citations: "object",
    usage: "object",
    timings: "object",
    grounded: "boolean",
    standalone_question: "string",
    stopped: "boolean",
  },
  error: { code: "string", message: "string", session_id: "string|null" },
  document_status: {
    workspace_id: "string",
    document_id: "string",
    name: "string",
    status: "string",
    reason: "string|null",
    chunk_count: "number",
    updated_at: "string|null",
  },
  pong: {},
};

/** The one field per type a server may leave out (read as null). */
const OPTIONAL_FIELDS: Partial<Record<ServerMessage["type"], string>> = {
  error: "session_id",
  document_status: "reason",
  progress: "sources",
};

function hasKind(v: unknown, kind: Kind): boolean {
  if (kind === "string|null") return v === null || v === undefined || typeof v === "string";
  if (kind === "number|null") return v === null || v === undefined || typeof v === "number";
  if (kind === "object") return typeof v === "object" && v !== null;
  return typeof v === kind;
}

/** A server frame as a typed message, or null when it is not JSON or not a message we know. */
export function parseServerMessage(data: unknown): ServerMessage | null {
  let obj: unknown = data;
  if (typeof data === "string") {
    try {
      obj = JSON.parse(data);
    } catch {
      return null;
    }
  }
  if (typeof obj !== "object" || obj === null) return null;
  const rec = obj as Record<string, unknown>;
  const fields = SERVER_MESSAGE_FIELDS[rec.type as ServerMessage["type"]];
  if (!fields) return null;
  for (const [key, kind] of Object.entries(fields)) if (!hasKind(rec[key], kind)) return null;
  const optional = OPTIONAL_FIELDS[rec.type as ServerMessage["type"]];
  if (optional) {
    // Optional-in-practice fields are normalised so the UI never sees undefined.
    return { ...rec, [optional]: rec[optional] ?? null } as unknown as ServerMessage;
  }
  return rec as unknown as ServerMessage;
}

export function encodeClientMessage(msg: ClientMessage): string {
  return JSON.stringify(msg);
}
