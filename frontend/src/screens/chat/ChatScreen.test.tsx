import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WorkspaceOut } from "../../api/types";
import { citation, final, sessionDetail, token, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { useRoute } from "../../app/router";
import { ChatScreen } from "./ChatScreen";

/** The chat screen driven by the address, as in the app. */
function RoutedChat() {
  const route = useRoute();
  return <ChatScreen sessionId={route.screen === "chat" ? route.sessionId : null} />;
}

let server: TestServer;
let workspaces: WorkspaceOut[];
beforeEach(async () => {
  window.location.hash = "";
  localStorage.clear();
  workspaces = [workspace()];
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: workspaces, cursor: null });
    if (req.url === "/api/sessions") return json(200, { items: [sessionDetail().session], cursor: null });
    if (req.url === "/api/sessions/s9" && req.method === "PATCH") {
      const { title } = JSON.parse(req.body.toString()) as { title: string };
      if (title === "boom") return json(503, { error: { code: "unavailable", message: "The database is asleep" } });
      return json(200, { ...sessionDetail().session, title });
    }
    if (req.url === "/api/sessions/s9") return json(200, sessionDetail());
    if (req.url === "/api/feedback") return { status: 204 };
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

async function openChat() {
  const h = renderWithServices(<RoutedChat />, server);
  act(() => h.socket.start());
  await waitFor(() => expect(h.sockets).toHaveLength(1));
  act(() => h.ws().serverOpens());
  return h;
}

describe("ChatScreen", () => {
  it("streams an answer, shows the final with a citation, opens it and takes feedback", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    await user.selectOptions(await screen.findByTestId("workspace-picker"), "w1");
    await user.type(screen.getByTestId("chat-input"), "What is Quarry?");
    await user.click(screen.getByTestId("send-button"));

    expect(h.ws().sentMessages()).toEqual([
      { action: "chat", text: "What is Quarry?", session_id: null, workspace_id: "w1", model: null },
    ]);
    expect(screen.getByTestId("stop-button")).toBeTruthy();

    act(() => {
      h.ws().serverSends(token(1, " serverless"));
      h.ws().serverSends(token(0, "Quarry is"));
    });
    expect(screen.getByTestId("answer-text").textContent?.trim()).toBe("Quarry is serverless");

    act(() =>
      h.ws().serverSends(final("Quarry is a **serverless** RAG platform [1].", { citations: [citation(1, { title: "Design" })] })),
    );
    const answer = screen.getByTestId("answer-text");
    expect(answer.textContent).toContain("Quarry is a serverless RAG platform");
    expect(answer.dataset.final).toBe("true");
    expect(screen.queryByTestId("stop-button")).toBeNull();
    expect(window.location.hash).toBe("#/chat/s1");

    await user.click(within(answer).getByTestId("citation-link"));
    const panel = screen.getByTestId("citation-panel");
    expect(within(panel).getByTestId("citation-title").textContent).toBe("Design");
    expect(within(panel).getByTestId("citation-text").textContent).toBe("Passage number 1.");
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("citation-panel")).toBeNull();

    await user.click(screen.getByTestId("thumbs-up"));
    await screen.findByTestId("feedback-thanks");
    const fb = server.requests.find((r) => r.url === "/api/feedback");
    expect(JSON.parse(fb?.body.toString() ?? "{}")).toEqual({ session_id: "s1", message_id: "m1", rating: 1, comment: null });
    expect(screen.getByTestId("thumbs-up").getAttribute("aria-pressed")).toBe("true");
  });

  it("stop sends a cancel for the streaming answer", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    await user.type(screen.getByTestId("chat-input"), "Long question{Enter}");
    act(() => h.ws().serverSends(token(0, "Partial", { session: "s3", message: "m3" })));
    await user.click(screen.getByTestId("stop-button"));
    expect(h.ws().sentMessages()[1]).toEqual({ action: "cancel", session_id: "s3", message_id: "m3" });
    act(() => h.ws().serverSends(token(1, " more", { session: "s3", message: "m3" })));
    expect(screen.getByTestId("answer-text").textContent?.trim()).toBe("Partial");
    expect(screen.getByTestId("send-button")).toBeTruthy();
  });

  it("shows a server error on the answer", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    await user.type(screen.getByTestId("chat-input"), "Hi{Enter}");
    act(() => h.ws().serverSends({ type: "error", code: "model_unavailable", message: "The model is not loaded", session_id: null }));
    expect(screen.getByTestId("answer-error").textContent).toContain("The model is not loaded");
  });

  it("says plainly that the daily allowance is used up, without the error code", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    await user.type(screen.getByTestId("chat-input"), "Hi{Enter}");
    const message = "You have used your daily allowance of 500,000 tokens; it renews at 00:00 UTC (in 3h 12m).";
    act(() => h.ws().serverSends({ type: "error", code: "budget_exhausted", message, session_id: null }));
    const shown = screen.getByTestId("answer-error").textContent ?? "";
    expect(shown).toBe(`Daily limit reached. ${message}`);
    expect(shown).not.toContain("budget_exhausted");
    expect(screen.getByTestId("send-button")).toBeTruthy(); // the composer is usable again
  });

  it("shows the allowance refusal in the banner too when no answer is waiting", async () => {
    const h = await openChat();
    const message = "You have used your daily allowance of 300 tokens; it renews at 00:00 UTC (in 0h 5m).";
    act(() => h.ws().serverSends({ type: "error", code: "budget_exhausted", message, session_id: null }));
    const banner = screen.getByTestId("chat-error").textContent ?? "";
    expect(banner).toContain(`Daily limit reached. ${message}`);
    expect(banner).not.toContain("budget_exhausted");
  });

  it("cannot send while offline, and marks an interrupted answer", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    await user.type(screen.getByTestId("chat-input"), "Hi{Enter}");
    act(() => h.ws().serverSends(token(0, "Hal")));
    act(() => h.ws().serverDrops());
    expect(screen.getByTestId("assistant-message").dataset.status).toBe("interrupted");
    await user.type(screen.getByTestId("chat-input"), "again");
    expect(screen.getByTestId<HTMLButtonElement>("send-button").disabled).toBe(true);
    expect(screen.getByText("Offline: reconnecting…")).toBeTruthy();
  });

  it("reopens a past session from the list", async () => {
    const user = userEvent.setup();
    await openChat();
    const item = await screen.findByTestId("session-item");
    await user.click(within(item).getByTestId("session-open"));
    await waitFor(() => expect(screen.getAllByTestId("answer-text")).toHaveLength(1));
    expect(screen.getByTestId("user-message").textContent).toBe("Hi?");
    expect(screen.getByTestId("answer-text").textContent).toContain("Hello");
    expect(screen.getByTestId("citation-link")).toBeTruthy();
  });
});

/** Sends a question and lets the server answer it (ids s1/m1 unless told). */
async function askAndAnswer(
  h: Awaited<ReturnType<typeof openChat>>,
  text: string,
  answer = "Quarry is serverless [1].",
  messageId = "m1",
) {
  const user = userEvent.setup();
  await user.type(screen.getByTestId("chat-input"), `${text}{Enter}`);
  act(() => h.ws().serverSends(final(answer, { message_id: messageId })));
  return user;
}

describe("ChatScreen: which workspace answers", () => {
  it("a fresh browser uses the only workspace, not 'no documents'", async () => {
    const h = await openChat();
    await waitFor(() => expect(screen.getByTestId<HTMLSelectElement>("workspace-picker").value).toBe("w1"));
    expect(screen.queryByTestId("no-documents-banner")).toBeNull();
    await askAndAnswer(h, "Hi");
    expect(h.ws().sentMessages()[0]).toMatchObject({ workspace_id: "w1" });
  });

  it("with several workspaces takes the most recently created, and remembers the one picked", async () => {
    workspaces = [
      workspace({ id: "old", name: "Old", created_at: "2025-01-01T00:00:00Z" }),
      workspace({ id: "new", name: "New", created_at: "2025-05-01T00:00:00Z" }),
    ];
    const user = userEvent.setup();
    const first = await openChat();
    const picker = screen.getByTestId<HTMLSelectElement>("workspace-picker");
    await waitFor(() => expect(picker.value).toBe("new"));
    await user.selectOptions(picker, "old");
    first.unmount();

    await openChat(); // a later visit in the same browser
    await waitFor(() => expect(screen.getByTestId<HTMLSelectElement>("workspace-picker").value).toBe("old"));
  });

  it("'no documents' is an explicit choice with a banner, sent as no workspace and remembered", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    const picker = screen.getByTestId<HTMLSelectElement>("workspace-picker");
    await waitFor(() => expect(picker.value).toBe("w1"));
    await user.selectOptions(picker, "");
    expect(screen.getByTestId("no-documents-banner").textContent).toContain("Answering without documents");
    await askAndAnswer(h, "Capital of France?", "Paris.");
    expect(h.ws().sentMessages()[0]).toMatchObject({ workspace_id: null });
    h.unmount();
    window.location.hash = ""; // a new chat on a later visit

    await openChat();
    await screen.findByTestId("no-documents-banner");
    expect(screen.getByTestId<HTMLSelectElement>("workspace-picker").value).toBe("");
  });

  it("without any workspace says how to get answers with sources", async () => {
    workspaces = [];
    await openChat();
    const banner = await screen.findByTestId("no-documents-banner");
    expect(banner.textContent).toContain("Create a workspace");
  });

  it("sends nothing until the workspaces are known, and offers to load them again", async () => {
    let failures = 1;
    await server.close();
    server = await startServer((req) => {
      if (req.url === "/api/workspaces" && failures-- > 0) return json(400, { error: { code: "bad", message: "no list" } });
      if (req.url === "/api/workspaces") return json(200, { items: workspaces, cursor: null });
      return json(200, { items: [], cursor: null });
    });
    const user = userEvent.setup();
    await openChat();
    const error = await screen.findByTestId("workspaces-error");
    await user.type(screen.getByTestId("chat-input"), "Hi");
    expect(screen.getByTestId<HTMLButtonElement>("send-button").disabled).toBe(true);
    expect(screen.queryByTestId("no-documents-banner")).toBeNull(); // not a choice: the list is unknown
    await user.click(within(error).getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(screen.getByTestId<HTMLSelectElement>("workspace-picker").value).toBe("w1"));
    expect(screen.getByTestId<HTMLButtonElement>("send-button").disabled).toBe(false);
  });

  it("a reopened conversation restores its workspace and keeps it", async () => {
    workspaces = [workspace({ id: "w1" }), workspace({ id: "w2", name: "Other", created_at: "2026-01-01T00:00:00Z" })];
    const user = userEvent.setup();
    const h = await openChat();
    await waitFor(() => expect(screen.getByTestId<HTMLSelectElement>("workspace-picker").value).toBe("w2"));
    await user.click(within(await screen.findByTestId("session-item")).getByTestId("session-open"));
    await screen.findByTestId("workspace-locked");
    const picker = screen.getByTestId<HTMLSelectElement>("workspace-picker");
    expect(picker.value).toBe("w1");
    expect(picker.disabled).toBe(true);
    await user.type(screen.getByTestId("chat-input"), "More?{Enter}");
    expect(h.ws().sentMessages()[0]).toMatchObject({ session_id: "s9", workspace_id: "w1" });
    expect(within(screen.getByTestId("session-item")).getByTestId("session-workspace").textContent).toBe("Handbook");
  });
});

describe("ChatScreen: answers you can act on", () => {
  it("copies the answer and says so", async () => {
    const h = await openChat();
    const user = await askAndAnswer(h, "What is Quarry?"); // user-event's clipboard stands in for the browser's
    await user.click(screen.getByTestId("copy-answer"));
    await waitFor(() => expect(screen.getByTestId("copy-status").textContent).toBe("Copied"));
    expect(await navigator.clipboard.readText()).toBe("Quarry is serverless [1].");
  });

  it("says when the clipboard refuses", async () => {
    const h = await openChat();
    const user = await askAndAnswer(h, "What is Quarry?");
    vi.spyOn(navigator.clipboard, "writeText").mockRejectedValue(new DOMException("denied", "NotAllowedError"));
    await user.click(screen.getByTestId("copy-answer"));
    await waitFor(() => expect(screen.getByTestId("copy-status").textContent).toContain("Could not copy"));
  });

  it("regenerate asks the same question again and keeps the earlier answer", async () => {
    const h = await openChat();
    const user = await askAndAnswer(h, "What is Quarry?", "First answer.");
    await user.click(screen.getByTestId("regenerate-answer"));
    expect(h.ws().sentMessages()[1]).toEqual({
      action: "chat",
      text: "What is Quarry?",
      session_id: "s1",
      workspace_id: "w1",
      model: null,
    });
    expect(screen.getAllByTestId("user-message")).toHaveLength(1);
    act(() => h.ws().serverSends(final("Second answer.", { message_id: "m2" })));
    expect(screen.getByTestId("answer-text").textContent).toContain("Second answer.");
    expect(screen.getByTestId("earlier-answer").textContent).toBe("First answer.");
  });

  it("only the last answer offers regenerate and edit", async () => {
    const h = await openChat();
    await askAndAnswer(h, "One?", "A.", "m1");
    await askAndAnswer(h, "Two?", "B.", "m2");
    expect(screen.getAllByTestId("copy-answer")).toHaveLength(2);
    expect(screen.getAllByTestId("regenerate-answer")).toHaveLength(1);
    expect(screen.getAllByTestId("edit-question")).toHaveLength(1);
  });

  it("edit puts the last question in the message box to change and resend", async () => {
    const h = await openChat();
    const user = await askAndAnswer(h, "How long is leaev?");
    await user.click(screen.getByTestId("edit-question"));
    const box = screen.getByTestId<HTMLTextAreaElement>("chat-input");
    expect(box.value).toBe("How long is leaev?");
    expect(document.activeElement).toBe(box);
    await user.clear(box);
    await user.type(box, "How long is leave?{Enter}");
    expect(h.ws().sentMessages()[1]).toMatchObject({ text: "How long is leave?", session_id: "s1" });
  });
});

describe("ChatScreen: stopped answers, progress, announcements", () => {
  it("marks a stopped answer and offers no feedback for it", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    await user.type(screen.getByTestId("chat-input"), "Long question{Enter}");
    act(() => h.ws().serverSends(token(0, "Partial")));
    await user.click(screen.getByTestId("stop-button"));
    act(() => h.ws().serverSends(final("Partial answer", { stopped: true })));
    expect(screen.getByTestId("assistant-message").dataset.status).toBe("cancelled");
    expect(screen.getByTestId("answer-stopped").textContent).toContain("Stopped");
    expect(screen.queryByTestId("thumbs-up")).toBeNull();
    expect(screen.getByTestId("copy-answer")).toBeTruthy();
  });

  it("shows what the server is doing until the first token", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    await user.type(screen.getByTestId("chat-input"), "Hi{Enter}");
    expect(screen.getByTestId("answer-phase").textContent).toContain("Sending");
    const ids = { session_id: "s1", message_id: "m1" };
    act(() => h.ws().serverSends({ type: "progress", ...ids, phase: "searching", sources: null }));
    expect(screen.getByTestId("answer-phase").textContent).toContain("Searching your documents");
    act(() => h.ws().serverSends({ type: "progress", ...ids, phase: "reading", sources: 3 }));
    expect(screen.getByTestId("answer-phase").textContent).toContain("Reading 3 sources");
    act(() => h.ws().serverSends({ type: "progress", ...ids, phase: "writing", sources: 3 }));
    expect(screen.getByTestId("answer-phase").dataset.phase).toBe("writing");
    act(() => h.ws().serverSends(token(0, "Hello")));
    expect(screen.queryByTestId("answer-phase")).toBeNull();
  });

  it("announces the finished answer once, politely, not while it streams", async () => {
    const user = userEvent.setup();
    const h = await openChat();
    const region = screen.getByTestId("answer-announcer");
    expect(region.getAttribute("aria-live")).toBe("polite");
    await user.type(screen.getByTestId("chat-input"), "Hi{Enter}");
    act(() => h.ws().serverSends(token(0, "Hel")));
    expect(region.textContent).toBe("");
    act(() => h.ws().serverSends(final("Hello there.")));
    expect(region.textContent).toBe("Answer: Hello there.");
  });

  it("does not announce a conversation opened from history", async () => {
    const user = userEvent.setup();
    await openChat();
    await user.click(within(await screen.findByTestId("session-item")).getByTestId("session-open"));
    await waitFor(() => expect(screen.getAllByTestId("answer-text")).toHaveLength(1));
    expect(screen.getByTestId("answer-announcer").textContent).toBe("");
  });
});

describe("ChatScreen: conversations", () => {
  it("renames a conversation in place and keeps the server's title", async () => {
    const user = userEvent.setup();
    await openChat();
    const item = await screen.findByTestId("session-item");
    await user.click(within(item).getByTestId("session-rename"));
    const input = within(item).getByTestId<HTMLInputElement>("session-title-input");
    expect(document.activeElement).toBe(input);
    await user.clear(input);
    await user.type(input, "Leave policy{Enter}");
    await waitFor(() => expect(within(item).getByTestId("session-title").textContent).toBe("Leave policy"));
    const patch = server.requests.find((r) => r.method === "PATCH");
    expect(patch?.url).toBe("/api/sessions/s9");
    expect(JSON.parse(patch?.body.toString() ?? "{}")).toEqual({ title: "Leave policy" });
  });

  it("a failed rename says why and keeps the form; Escape leaves the title as it was", async () => {
    const user = userEvent.setup();
    await openChat();
    const item = await screen.findByTestId("session-item");
    await user.click(within(item).getByTestId("session-rename"));
    const input = within(item).getByTestId<HTMLInputElement>("session-title-input");
    await user.clear(input);
    expect(within(item).getByTestId<HTMLButtonElement>("session-title-save").disabled).toBe(true);
    await user.type(input, "boom{Enter}");
    await waitFor(() => expect(within(item).getByRole("alert").textContent).toContain("Not renamed"));
    await user.keyboard("{Escape}");
    expect(within(item).getByTestId("session-title").textContent).toBe("Old chat");
  });

  it("on a narrow screen the list is a drawer: the button opens it, Escape closes it, focus comes back", async () => {
    const user = userEvent.setup();
    await openChat();
    const toggle = screen.getByTestId("conversations-toggle");
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    await user.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    expect(screen.getByTestId("session-drawer").classList.contains("drawer-open")).toBe(true);
    expect(document.activeElement).toBe(screen.getByTestId("drawer-close"));
    await user.keyboard("{Escape}");
    expect(screen.getByTestId("session-drawer").classList.contains("drawer-open")).toBe(false);
    expect(document.activeElement).toBe(toggle);
    await user.click(toggle);
    await user.click(screen.getByTestId("drawer-close"));
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    await user.click(toggle);
    await user.click(within(await screen.findByTestId("session-item")).getByTestId("session-open"));
    expect(toggle.getAttribute("aria-expanded")).toBe("false"); // opening a conversation closes the drawer
  });
});
