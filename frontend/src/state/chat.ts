/**
 * The chat screen's state as a pure reducer: (state, action) -> state.
 * Server messages arrive as `{type: "server", msg}` actions; everything here is unit-tested.
 */
import type {
  CitationOut,
  FinalEvent,
  ProgressEvent,
  ServerMessage,
  SessionDetailOut,
  TokenEvent,
  UsageOut,
} from "../api/types";

export type TurnStatus = "streaming" | "done" | "cancelled" | "error" | "interrupted";

export interface UserTurn {
  kind: "user";
  id: string;
  text: string;
}

export interface TokenChunk {
  sequence: number;
  text: string;
}

/** What the server is doing before the first token (a `progress` event). */
export interface AnswerProgress {
  phase: ProgressEvent["phase"];
  sources: number | null;
}

/** An answer replaced by "Regenerate": kept, so the user can compare (the server keeps it in history too). */
export interface EarlierAnswer {
  id: string;
  text: string;
  stopped: boolean;
}

export interface AssistantTurn {
  kind: "assistant";
  /** Local id (stable React key). */
  id: string;
  /** Server ids, known from the first token or final event. */
  messageId: string | null;
  sessionId: string | null;
  /** Streamed tokens, sorted by sequence, without duplicates. */
  chunks: TokenChunk[];
  /** What the UI shows: the ordered tokens, then the final answer. */
  text: string;
  final: boolean;
  citations: CitationOut[];
  grounded: boolean | null;
  usage: UsageOut | null;
  timings: Record<string, number | undefined>;
  standaloneQuestion: string | null;
  status: TurnStatus;
  error: { code: string; message: string } | null;
  /** A stop was requested and the cancel message went out to the server. */
  cancelSent: boolean;
  feedback: -1 | 1 | null;
  /** The latest phase before the first token, null once text arrives or when unknown. */
  progress: AnswerProgress | null;
  /** Earlier answers to the same question, oldest first. */
  earlier: EarlierAnswer[];
}

export type Turn = UserTurn | AssistantTurn;

export interface ChatState {
  sessionId: string | null;
  /**
   * The conversation's workspace once it has one: `{ id: null }` is a conversation without documents;
   * null is a new conversation (nothing sent yet), which takes the workspace picked on screen.
   */
  workspace: { id: string | null } | null;
  turns: Turn[];
  /** An error not tied to an answer (shown above the composer). */
  banner: { code: string; message: string } | null;
}

export type ChatAction =
  | { type: "send"; id: string; text: string; workspaceId: string | null }
  | { type: "regenerate"; id: string }
  | { type: "server"; msg: ServerMessage }
  | { type: "stop" }
  | { type: "cancelSent"; turnId: string }
  | { type: "sendFailed"; message: string }
  | { type: "disconnected" }
  | { type: "loadSession"; detail: SessionDetailOut }
  | { type: "reset" }
  | { type: "feedback"; messageId: string; rating: -1 | 1 }
  | { type: "dismissBanner" };

export const initialChatState: ChatState = { sessionId: null, workspace: null, turns: [], banner: null };

export function newAssistantTurn(id: string, patch: Partial<AssistantTurn> = {}): AssistantTurn {
  return {
    kind: "assistant",
    id,
    messageId: null,
    sessionId: null,
    chunks: [],
    text: "",
    final: false,
    citations: [],
    grounded: null,
    usage: null,
    timings: {},
    standaloneQuestion: null,
    status: "streaming",
    error: null,
    cancelSent: false,
    feedback: null,
    progress: null,
    earlier: [],
    ...patch,
  };
}

/** The answer being produced now, if any. */
export function activeTurn(state: ChatState): AssistantTurn | null {
  const last = state.turns[state.turns.length - 1];
  return last?.kind === "assistant" && last.status === "streaming" ? last : null;
}

export function isBusy(state: ChatState): boolean {
  return activeTurn(state) !== null;
}

/** Inserts a chunk at its place by sequence; a repeated sequence is ignored. */
export function insertChunk(chunks: TokenChunk[], chunk: TokenChunk): TokenChunk[] {
  let i = chunks.length;
  while (i > 0 && (chunks[i - 1] as TokenChunk).sequence > chunk.sequence) i--;
  if (i > 0 && (chunks[i - 1] as TokenChunk).sequence === chunk.sequence) return chunks;
  return [...chunks.slice(0, i), chunk, ...chunks.slice(i)];
}

function replaceTurn(state: ChatState, turn: AssistantTurn): ChatState {
  return { ...state, turns: state.turns.map((t) => (t.id === turn.id ? turn : t)) };
}

/**
 * The turn a token/final event belongs to: the one with its message id, or else the last
 * answer still waiting for its ids (streaming or stopped early) when the session matches.
 */
type AnswerEvent = TokenEvent | ProgressEvent | FinalEvent;

function ownerOf(state: ChatState, ev: AnswerEvent): AssistantTurn | null {
  for (let i = state.turns.length - 1; i >= 0; i--) {
    const t = state.turns[i] as Turn;
    if (t.kind === "assistant" && t.messageId === ev.message_id) return t;
  }
  const last = state.turns[state.turns.length - 1];
  if (last?.kind !== "assistant" || last.messageId !== null) return null;
  if (last.status !== "streaming" && last.status !== "cancelled") return null;
  if (state.sessionId !== null && state.sessionId !== ev.session_id) return null;
  return last;
}

/** Records the server ids on the turn, and adopts a new session's id. */
function adopt(state: ChatState, turn: AssistantTurn, ev: AnswerEvent): [ChatState, AssistantTurn] {
  const t = turn.messageId ? turn : { ...turn, messageId: ev.message_id, sessionId: ev.session_id };
  return [{ ...state, sessionId: state.sessionId ?? ev.session_id }, t];
}

function onToken(state: ChatState, ev: TokenEvent): ChatState {
  const owner = ownerOf(state, ev);
  if (!owner) return state;
  const [next, turn] = adopt(state, owner, ev);
  if (turn.final || turn.status !== "streaming") return replaceTurn(next, turn);
  const chunks = insertChunk(turn.chunks, { sequence: ev.sequence, text: ev.text });
  if (chunks === turn.chunks) return replaceTurn(next, turn);
  return replaceTurn(next, { ...turn, chunks, text: chunks.map((c) => c.text).join(""), progress: null });
}

/** A phase shown until the first token; its ids also let a stop reach the server before any token. */
function onProgress(state: ChatState, ev: ProgressEvent): ChatState {
  const owner = ownerOf(state, ev);
  if (!owner) return state;
  const [next, turn] = adopt(state, owner, ev);
  if (turn.status !== "streaming" || turn.text) return replaceTurn(next, turn);
  return replaceTurn(next, { ...turn, progress: { phase: ev.phase, sources: ev.sources ?? null } });
}

function onFinal(state: ChatState, ev: FinalEvent): ChatState {
  const owner = ownerOf(state, ev);
  if (!owner) return state;
  const [next, turn] = adopt(state, owner, ev);
  // The server says whether the answer was stopped: a stop that came too late leaves a complete answer.
  return replaceTurn(next, {
    ...turn,
    text: ev.answer,
    final: true,
    citations: ev.citations,
    grounded: ev.grounded,
    usage: ev.usage,
    timings: ev.timings,
    standaloneQuestion: ev.standalone_question,
    status: ev.stopped ? "cancelled" : "done",
    error: null,
    cancelSent: true, // the answer has ended: nothing left to stop
    progress: null,
  });
}

function onError(state: ChatState, code: string, message: string, sessionId: string | null): ChatState {
  const turn = activeTurn(state);
  const related = sessionId === null || state.sessionId === null || sessionId === state.sessionId;
  if (turn && related) {
    const status: TurnStatus = code === "cancelled" ? "cancelled" : "error";
    return replaceTurn(
      { ...state, sessionId: state.sessionId ?? sessionId },
      { ...turn, status, error: status === "error" ? { code, message } : null },
    );
  }
  if (code === "cancelled") return state; // the answer the user stopped is already marked
  if (sessionId !== null && state.sessionId !== null && sessionId !== state.sessionId) return state;
  return { ...state, banner: { code, message } };
}

function onServer(state: ChatState, msg: ServerMessage): ChatState {
  switch (msg.type) {
    case "token":
      return onToken(state, msg);
    case "progress":
      return onProgress(state, msg);
    case "final":
      return onFinal(state, msg);
    case "error":
      return onError(state, msg.code, msg.message, msg.session_id ?? null);
    default:
      return state;
  }
}

function asEarlier(turn: AssistantTurn): EarlierAnswer[] {
  return [...turn.earlier, { id: turn.id, text: turn.text, stopped: turn.status === "cancelled" }];
}

/**
 * A stored conversation as turns. The same question asked again right after its answer is a
 * regeneration: it shows as one question whose answer keeps the earlier ones, as it did live.
 */
function fromDetail(detail: SessionDetailOut): ChatState {
  const turns: Turn[] = [];
  let replaced: AssistantTurn | null = null;
  for (const m of detail.messages) {
    if (m.role === "user") {
      if (replaced) turns.push(replaced); // asked again without an answer: keep the earlier one in place
      replaced = null;
      const [prevQuestion, prevAnswer] = turns.slice(-2);
      if (prevQuestion?.kind === "user" && prevQuestion.text === m.content && prevAnswer?.kind === "assistant") {
        replaced = turns.pop() as AssistantTurn;
        continue;
      }
      turns.push({ kind: "user", id: `u-${m.id}`, text: m.content });
    }
    if (m.role === "assistant") {
      const stopped = m.stopped === true;
      turns.push(
        newAssistantTurn(`a-${m.id}`, {
          messageId: m.id,
          sessionId: m.session_id,
          text: m.content,
          final: true,
          citations: m.citations,
          status: stopped ? "cancelled" : "done",
          cancelSent: true,
          earlier: replaced ? asEarlier(replaced) : [],
        }),
      );
      replaced = null;
    }
  }
  if (replaced) turns.push(replaced);
  return { sessionId: detail.session.id, workspace: { id: detail.session.workspace_id }, turns, banner: null };
}

/** The question the last answer replies to, when that answer is over (what Regenerate and Edit act on). */
export function lastQuestion(state: ChatState): string | null {
  const [question, answer] = state.turns.slice(-2);
  if (question?.kind !== "user" || answer?.kind !== "assistant" || answer.status === "streaming") return null;
  return question.text;
}

function updateActive(state: ChatState, patch: (t: AssistantTurn) => AssistantTurn): ChatState {
  const turn = activeTurn(state);
  return turn ? replaceTurn(state, patch(turn)) : state;
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case "send":
      if (isBusy(state)) return state;
      return {
        ...state,
        workspace: state.workspace ?? { id: action.workspaceId },
        banner: null,
        turns: [
          ...state.turns,
          { kind: "user", id: `u-${action.id}`, text: action.text },
          newAssistantTurn(`a-${action.id}`, { sessionId: state.sessionId }),
        ],
      };
    case "regenerate": {
      if (lastQuestion(state) === null) return state;
      const old = state.turns[state.turns.length - 1] as AssistantTurn;
      const turn = newAssistantTurn(`a-${action.id}`, { sessionId: state.sessionId, earlier: asEarlier(old) });
      return { ...state, banner: null, turns: [...state.turns.slice(0, -1), turn] };
    }
    case "server":
      return onServer(state, action.msg);
    case "stop":
      return updateActive(state, (t) => ({ ...t, status: "cancelled" }));
    case "cancelSent": {
      const t = state.turns.find((x) => x.id === action.turnId);
      return t?.kind === "assistant" ? replaceTurn(state, { ...t, cancelSent: true }) : state;
    }
    case "sendFailed":
      return updateActive(state, (t) => ({ ...t, status: "error", error: { code: "offline", message: action.message } }));
    case "disconnected":
      return updateActive(state, (t) => ({
        ...t,
        status: "interrupted",
        error: { code: "disconnected", message: "The connection dropped while the answer was streaming." },
      }));
    case "loadSession":
      return fromDetail(action.detail);
    case "reset":
      return initialChatState;
    case "feedback":
      return {
        ...state,
        turns: state.turns.map((t) =>
          t.kind === "assistant" && t.messageId === action.messageId ? { ...t, feedback: action.rating } : t,
        ),
      };
    case "dismissBanner":
      return { ...state, banner: null };
  }
}

/** Turns stopped by the user whose cancel still has to go to the server (ids now known). */
export function pendingCancels(state: ChatState): AssistantTurn[] {
  return state.turns.filter(
    (t): t is AssistantTurn =>
      t.kind === "assistant" && t.status === "cancelled" && !t.cancelSent && t.sessionId !== null,
  );
}
