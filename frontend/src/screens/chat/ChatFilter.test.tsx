import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { document, final, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { ChatScreen } from "./ChatScreen";

const SLOW = { timeout: 10_000 };

let server: TestServer;
beforeEach(async () => {
  window.location.hash = "";
  localStorage.clear();
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/sessions") return json(200, { items: [], cursor: null });
    if (req.url === "/api/workspaces/w1/documents") {
      return json(200, { items: [document({ metadata: { product: "X", rating: 4 } })], cursor: null });
    }
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

async function openChat() {
  const user = userEvent.setup();
  const h = renderWithServices(<ChatScreen sessionId={null} />, server);
  act(() => h.socket.start());
  await waitFor(() => expect(h.sockets).toHaveLength(1), SLOW);
  act(() => h.ws().serverOpens());
  await waitFor(() => expect(screen.getByTestId<HTMLSelectElement>("workspace-picker").value).toBe("w1"), SLOW);
  return { h, user };
}

describe("Chat with a metadata filter", () => {
  it("sends the filter with each question, shows it above the conversation, and clears it", async () => {
    const { h, user } = await openChat();
    expect(server.requests.some((r) => r.url === "/api/workspaces/w1/documents")).toBe(false); // read only when asked for
    const toggle = screen.getByRole("button", { name: "Filter" });
    await user.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    const builder = screen.getByRole("group", { name: "Answer only from documents where" });
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 1"), "product");
    await user.type(within(builder).getByLabelText("Value of condition 1"), "X");
    expect(screen.getByTestId("filter-summary").textContent).toContain("Answers only use documents where product = X");

    await user.type(screen.getByTestId("chat-input"), "Is it good?{Enter}");
    expect(h.ws().sentMessages()[0]).toEqual({
      action: "chat",
      text: "Is it good?",
      session_id: null,
      workspace_id: "w1",
      model: null,
      filters: { product: "X" },
    });
    act(() => h.ws().serverSends(final("Yes [1].")));

    // Closing the builder keeps the filter in force, and says so.
    await user.click(toggle);
    expect(screen.queryByRole("group", { name: "Answer only from documents where" })).toBeNull();
    const summary = screen.getByTestId("filter-summary");
    await user.click(within(summary).getByRole("button", { name: "Clear filter" }));
    expect(screen.queryByTestId("filter-summary")).toBeNull();
    await user.type(screen.getByTestId("chat-input"), "And in general?{Enter}");
    expect(h.ws().sentMessages()[1]).not.toHaveProperty("filters");
  });

  it("will not send while the filter has a problem, and says why", async () => {
    const { h, user } = await openChat();
    await user.click(screen.getByRole("button", { name: "Filter" }));
    const builder = screen.getByRole("group", { name: "Answer only from documents where" });
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 1"), "rating");
    await user.selectOptions(within(builder).getByLabelText("Operator of condition 1"), "lte");
    await user.type(within(builder).getByLabelText("Value of condition 1"), "soon");

    expect(within(builder).getByTestId("filter-error").textContent).toBe("Compare with a number or a date (YYYY-MM-DD).");
    await user.type(screen.getByTestId("chat-input"), "Hi");
    expect(screen.getByTestId<HTMLButtonElement>("send-button").disabled).toBe(true);
    expect(screen.getByText("The filter has a problem: fix it above, or clear it, to send.")).toBeTruthy();
    expect(h.ws().sentMessages()).toEqual([]);

    await user.clear(within(builder).getByLabelText("Value of condition 1"));
    await user.type(within(builder).getByLabelText("Value of condition 1"), "2024-12-31");
    await waitFor(() => expect(within(builder).getByTestId("filter-error").textContent).toBe("“rating” holds numbers: compare with a number."), SLOW);
    await user.clear(within(builder).getByLabelText("Value of condition 1"));
    await user.type(within(builder).getByLabelText("Value of condition 1"), "3");
    await user.click(screen.getByTestId("send-button"));
    expect(h.ws().sentMessages()[0]).toMatchObject({ filters: { rating: { lte: 3 } } });
  });
});
