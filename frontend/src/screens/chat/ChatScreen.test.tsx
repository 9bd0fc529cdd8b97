import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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
beforeEach(async () => {
  window.location.hash = "";
  localStorage.clear();
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/sessions") return json(200, { items: [sessionDetail().session], cursor: null });
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
