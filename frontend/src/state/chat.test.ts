import { describe, expect, it } from "vitest";
import type { MessageOut, ProgressEvent, ServerMessage, SessionDetailOut } from "../api/types";
import { citation, final, sessionDetail, token } from "../test/fixtures";
import {
  type AssistantTurn,
  type ChatAction,
  type ChatState,
  activeTurn,
  chatReducer,
  initialChatState,
  insertChunk,
  isBusy,
  lastQuestion,
  pendingCancels,
} from "./chat";

function run(actions: ChatAction[], start: ChatState = initialChatState): ChatState {
  return actions.reduce(chatReducer, start);
}

function answer(state: ChatState): AssistantTurn {
  const last = state.turns[state.turns.length - 1];
  if (last?.kind !== "assistant") throw new Error("no answer turn");
  return last;
}

const send = (text = "What is Quarry?", id = "t1", workspaceId: string | null = "w1"): ChatAction => ({
  type: "send",
  id,
  text,
  workspaceId,
});
const server = (msg: ServerMessage): ChatAction => ({ type: "server", msg });

describe("token ordering", () => {
  it("orders tokens by sequence whatever the arrival order", () => {
    const s = run([send(), server(token(2, " world")), server(token(0, "Hello")), server(token(3, "!")), server(token(1, ","))]);
    expect(answer(s).text).toBe("Hello, world!");
    expect(answer(s).chunks.map((c) => c.sequence)).toEqual([0, 1, 2, 3]);
  });

  it("ignores a token delivered twice", () => {
    const s = run([send(), server(token(0, "a")), server(token(1, "b")), server(token(1, "b")), server(token(0, "a"))]);
    expect(answer(s).text).toBe("ab");
  });

  it("insertChunk keeps the array sorted and returns the same array for a duplicate", () => {
    const a = insertChunk([], { sequence: 5, text: "e" });
    const b = insertChunk(a, { sequence: 1, text: "a" });
    const c = insertChunk(b, { sequence: 3, text: "c" });
    expect(c.map((x) => x.sequence)).toEqual([1, 3, 5]);
    expect(insertChunk(c, { sequence: 3, text: "x" })).toBe(c);
  });

  it("adopts the new session's id from the first token", () => {
    const s = run([send(), server(token(0, "Hi", { session: "new-s", message: "new-m" }))]);
    expect(s.sessionId).toBe("new-s");
    expect(answer(s).messageId).toBe("new-m");
    expect(answer(s).sessionId).toBe("new-s");
  });

  it("drops tokens of another session", () => {
    const start = run([send(), server(token(0, "a", { session: "s1" }))]);
    const s = chatReducer(start, { type: "server", msg: token(1, "zzz", { session: "other", message: "m-other" }) });
    expect(answer(s).text).toBe("a");
  });

  it("drops tokens of an older message once the answer has its id", () => {
    const s = run([send(), server(token(0, "a", { message: "m2" })), server(token(1, "late", { message: "m-old" }))]);
    expect(answer(s).text).toBe("a");
  });

  it("does nothing with tokens when no answer is pending", () => {
    const s = chatReducer(initialChatState, { type: "server", msg: token(0, "x") });
    expect(s).toEqual(initialChatState);
  });
});

describe("final message", () => {
  it("replaces the streamed text with the final answer and its citations", () => {
    const s = run([
      send(),
      server(token(0, "Quarry is")),
      server(token(1, " a RAG thing")),
      server(final("Quarry is a serverless RAG platform [1].", { citations: [citation(1), citation(2)] })),
    ]);
    const t = answer(s);
    expect(t.text).toBe("Quarry is a serverless RAG platform [1].");
    expect(t.final).toBe(true);
    expect(t.status).toBe("done");
    expect(t.citations.map((c) => c.n)).toEqual([1, 2]);
    expect(t.grounded).toBe(true);
    expect(isBusy(s)).toBe(false);
  });

  it("ignores tokens that arrive after the final", () => {
    const s = run([send(), server(token(0, "x")), server(final("Final.")), server(token(1, " straggler"))]);
    expect(answer(s).text).toBe("Final.");
  });

  it("works with no token at all and sets the session id", () => {
    const s = run([send(), server(final("Only final.", { session_id: "s7", message_id: "m7" }))]);
    expect(s.sessionId).toBe("s7");
    expect(answer(s).messageId).toBe("m7");
    expect(answer(s).text).toBe("Only final.");
  });

  it("a second question continues the same session", () => {
    const first = run([send(), server(final("One."))]);
    const s = run([send("And?", "t2"), server(token(0, "Two", { message: "m2" })), server(final("Two.", { message_id: "m2" }))], first);
    expect(s.sessionId).toBe("s1");
    expect(s.turns).toHaveLength(4);
    expect(s.turns.map((t) => (t.kind === "assistant" ? t.text : t.text))).toEqual(["What is Quarry?", "One.", "And?", "Two."]);
  });

  it("a send while an answer streams is refused", () => {
    const s = run([send(), send("again", "t2")]);
    expect(s.turns).toHaveLength(2);
  });
});

describe("errors", () => {
  it("an error during an answer marks that answer, with the server's message", () => {
    const s = run([
      send(),
      server(token(0, "Par")),
      server({ type: "error", code: "model_error", message: "The model failed", session_id: "s1" }),
    ]);
    expect(answer(s).status).toBe("error");
    expect(answer(s).error).toEqual({ code: "model_error", message: "The model failed" });
    expect(answer(s).text).toBe("Par");
    expect(isBusy(s)).toBe(false);
  });

  it("an error with no answer pending becomes a banner", () => {
    const s = chatReducer(initialChatState, {
      type: "server",
      msg: { type: "error", code: "throttled", message: "Slow down", session_id: null },
    });
    expect(s.banner).toEqual({ code: "throttled", message: "Slow down" });
    expect(chatReducer(s, { type: "dismissBanner" }).banner).toBeNull();
  });

  it("an error of another session is ignored", () => {
    const start = run([send(), server(final("Done."))]);
    const s = chatReducer(start, { type: "server", msg: { type: "error", code: "x", message: "y", session_id: "other" } });
    expect(s).toBe(start);
  });

  it("a failed send marks the answer as not sent", () => {
    const s = run([send(), { type: "sendFailed", message: "offline" }]);
    expect(answer(s).status).toBe("error");
    expect(answer(s).error?.code).toBe("offline");
  });

  it("a dropped connection interrupts the streaming answer only", () => {
    const done = run([send(), server(final("Done."))]);
    expect(chatReducer(done, { type: "disconnected" })).toBe(done);
    const s = run([send(), server(token(0, "half")), { type: "disconnected" }]);
    expect(answer(s).status).toBe("interrupted");
    expect(answer(s).error?.code).toBe("disconnected");
  });
});

describe("stop", () => {
  it("stops the answer, keeps its text and ignores later tokens", () => {
    const s = run([send(), server(token(0, "Par")), { type: "stop" }, server(token(1, "tial"))]);
    expect(answer(s).status).toBe("cancelled");
    expect(answer(s).text).toBe("Par");
    expect(activeTurn(s)).toBeNull();
  });

  it("asks for a cancel once the ids are known, exactly once", () => {
    const stopped = run([send(), { type: "stop" }]);
    expect(pendingCancels(stopped)).toHaveLength(0); // a new session: no id yet
    const withIds = chatReducer(stopped, { type: "server", msg: token(0, "x", { session: "s5", message: "m5" }) });
    expect(answer(withIds).text).toBe("");
    const [pending] = pendingCancels(withIds);
    expect(pending?.sessionId).toBe("s5");
    expect(pending?.messageId).toBe("m5");
    const sent = chatReducer(withIds, { type: "cancelSent", turnId: pending?.id ?? "" });
    expect(pendingCancels(sent)).toHaveLength(0);
  });

  it("a cancelled error after stop adds no banner", () => {
    const s = run([
      send(),
      server(token(0, "x")),
      { type: "stop" },
      server({ type: "error", code: "cancelled", message: "Cancelled", session_id: "s1" }),
    ]);
    expect(s.banner).toBeNull();
    expect(answer(s).status).toBe("cancelled");
  });
});

describe("sessions and feedback", () => {
  it("loads a past session as finished turns with their citations", () => {
    const s = chatReducer(initialChatState, { type: "loadSession", detail: sessionDetail() });
    expect(s.sessionId).toBe("s9");
    expect(s.turns.map((t) => t.kind)).toEqual(["user", "assistant"]);
    expect(answer(s).citations[0]?.title).toBe("Doc 1");
    expect(answer(s).status).toBe("done");
    expect(chatReducer(s, { type: "reset" })).toEqual(initialChatState);
  });

  it("records a rating on the rated answer", () => {
    const s = run([send(), server(final("Done."))]);
    const rated = chatReducer(s, { type: "feedback", messageId: "m1", rating: -1 });
    expect(answer(rated).feedback).toBe(-1);
  });
});

const progress = (phase: ProgressEvent["phase"], sources: number | null = null): ServerMessage => ({
  type: "progress",
  session_id: "s1",
  message_id: "m1",
  phase,
  sources,
});

describe("progress before the first token", () => {
  it("shows the latest phase until the first token, then the text", () => {
    const s = run([send(), server(progress("searching")), server(progress("reading", 3))]);
    expect(answer(s).progress).toEqual({ phase: "reading", sources: 3 });
    expect(answer(s).messageId).toBe("m1"); // ids known before any token
    const writing = run([server(token(0, "Hi"))], s);
    expect(answer(writing).progress).toBeNull();
    expect(answer(run([server(progress("writing", 3))], writing)).progress).toBeNull(); // too late: ignored
  });

  it("lets a stop reach the server before any token", () => {
    const s = run([send(), { type: "stop" }, server(progress("searching"))]);
    expect(pendingCancels(s).map((t) => t.messageId)).toEqual(["m1"]);
  });

  it("ignores the progress of another session", () => {
    const s = run([send(), server(token(0, "a"))]);
    const other: ServerMessage = { ...(progress("writing") as ProgressEvent), session_id: "s2", message_id: "m2" };
    expect(run([server(other)], s)).toEqual(s);
  });
});

describe("a stopped answer", () => {
  it("stays stopped when its final arrives, with the stored text, and asks no cancel", () => {
    const s = run([send(), server(token(0, "Par")), { type: "stop" }, server(final("Partial", { stopped: true }))]);
    expect(answer(s).status).toBe("cancelled");
    expect(answer(s).text).toBe("Partial");
    expect(answer(s).final).toBe(true);
    expect(pendingCancels(s)).toHaveLength(0);
  });

  it("is complete when the server finished before the stop reached it", () => {
    const s = run([send(), { type: "stop" }, server(final("All of it."))]);
    expect(answer(s).status).toBe("done");
    expect(pendingCancels(s)).toHaveLength(0);
  });

  it("reads back from history as stopped, without asking a cancel again", () => {
    const detail = sessionDetail();
    detail.messages[1] = { ...(detail.messages[1] as MessageOut), stopped: true };
    const s = chatReducer(initialChatState, { type: "loadSession", detail });
    expect(answer(s).status).toBe("cancelled");
    expect(pendingCancels(s)).toHaveLength(0);
  });
});

describe("regenerate and the last question", () => {
  it("asks the last question again, keeping the earlier answer", () => {
    const s = run([send("Why?"), server(final("Because."))]);
    expect(lastQuestion(s)).toBe("Why?");
    const again = chatReducer(s, { type: "regenerate", id: "t2" });
    expect(again.turns.map((t) => t.kind)).toEqual(["user", "assistant"]);
    expect(answer(again).status).toBe("streaming");
    expect(answer(again).earlier.map((e) => e.text)).toEqual(["Because."]);
    expect(lastQuestion(again)).toBeNull(); // nothing to regenerate while it streams
    expect(chatReducer(again, { type: "regenerate", id: "t3" })).toBe(again);
    const done = run([server(final("For this reason.", { message_id: "m2" }))], again);
    expect(answer(done).text).toBe("For this reason.");
    expect(answer(done).earlier).toHaveLength(1);
  });

  it("reads a question asked again in history as one question with its earlier answers", () => {
    const at = "2025-01-01T00:00:00Z";
    const m = (id: string, role: "user" | "assistant", content: string, stopped = false): MessageOut => ({
      id,
      session_id: "s9",
      role,
      content,
      citations: [],
      created_at: at,
      stopped,
    });
    const detail: SessionDetailOut = {
      ...sessionDetail(),
      messages: [
        m("u1", "user", "Why?"),
        m("a1", "assistant", "First.", true),
        m("u2", "user", "Why?"),
        m("a2", "assistant", "Second."),
        m("u3", "user", "And then?"),
        m("a3", "assistant", "Third."),
      ],
    };
    const s = chatReducer(initialChatState, { type: "loadSession", detail });
    expect(s.turns.map((t) => (t.kind === "user" ? `Q:${t.text}` : `A:${t.text}`))).toEqual([
      "Q:Why?",
      "A:Second.",
      "Q:And then?",
      "A:Third.",
    ]);
    const second = s.turns[1];
    expect(second?.kind === "assistant" && second.earlier).toEqual([{ id: "a-a1", text: "First.", stopped: true }]);
  });
});

describe("the conversation's workspace", () => {
  it("is set by the first question and kept by the next ones", () => {
    const first = run([send("One", "t1", "w1"), server(final("A."))]);
    expect(first.workspace).toEqual({ id: "w1" });
    const second = run([send("Two", "t2", "w2")], first);
    expect(second.workspace).toEqual({ id: "w1" });
  });

  it("is restored from a reopened conversation, also when it has none", () => {
    const detail = sessionDetail();
    expect(chatReducer(initialChatState, { type: "loadSession", detail }).workspace).toEqual({ id: "w1" });
    const none = { ...detail, session: { ...detail.session, workspace_id: null } };
    expect(chatReducer(initialChatState, { type: "loadSession", detail: none }).workspace).toEqual({ id: null });
  });
});
