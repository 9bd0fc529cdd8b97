import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { docStatus, document, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { DocumentsScreen } from "./DocumentsScreen";

/** Generous waits: the suite shares a busy machine. */
const SLOW = { timeout: 10_000 };

let server: TestServer;
let retryAnswers: Record<string, () => ReturnType<typeof json>>;
beforeEach(async () => {
  retryAnswers = {
    "/api/workspaces/w1/documents/d1/retry": () => json(202, document({ id: "d1", name: "report.pdf", status: "created" })),
    "/api/workspaces/w1/documents/d3/retry": () =>
      json(409, { error: { code: "conflict", message: "document 'late.pdf' is processing; only a failed document is retried" } }),
  };
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/workspaces/w1/documents" && req.method === "GET") {
      return json(200, {
        items: [
          document({ id: "d1", name: "report.pdf", status: "error", status_reason: "timed out" }),
          document({ id: "d2", name: "ok.pdf", status: "processed", chunk_count: 3 }),
          document({ id: "d3", name: "late.pdf", status: "error", status_reason: "timed out" }),
          document({ id: "p1", name: "page", status: "error", status_reason: "HTTP 500", parent_id: "site" }),
        ],
        cursor: null,
      });
    }
    const answer = req.method === "POST" ? retryAnswers[req.url] : undefined;
    if (answer) return answer();
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

const row = (name: string) =>
  screen.getAllByTestId("document-row").find((r) => r.dataset.documentName === name) as HTMLElement;
const status = (name: string) => within(row(name)).getByTestId("document-status").dataset.status;

describe("Retry on a failed document", () => {
  it("is offered only on failed documents that are not pages of a crawl", async () => {
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("report.pdf", {}, SLOW);
    expect(within(row("report.pdf")).getByRole("button", { name: "Retry document report.pdf" })).toBeTruthy();
    expect(within(row("ok.pdf")).queryByTestId("document-retry")).toBeNull();
    expect(within(row("page")).queryByTestId("document-retry")).toBeNull();
  });

  it("starts the ingestion again and follows it to processed over the WebSocket", async () => {
    const user = userEvent.setup();
    const h = renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("report.pdf", {}, SLOW);
    expect(within(row("report.pdf")).getByTestId("document-reason").textContent).toBe("timed out");

    await user.click(within(row("report.pdf")).getByTestId("document-retry"));

    await waitFor(() => expect(status("report.pdf")).toBe("created"), SLOW);
    expect(server.requests.filter((r) => r.method === "POST").map((r) => r.url)).toEqual([
      "/api/workspaces/w1/documents/d1/retry",
    ]);
    expect(within(row("report.pdf")).queryByTestId("document-reason")).toBeNull();
    expect(within(row("report.pdf")).queryByTestId("document-retry")).toBeNull();

    act(() => h.socket.start());
    await waitFor(() => expect(h.sockets).toHaveLength(1), SLOW);
    act(() => {
      h.ws().serverOpens();
      h.ws().serverSends(docStatus({ document_id: "d1", name: "report.pdf", status: "processing" }));
    });
    expect(status("report.pdf")).toBe("processing");
    act(() => h.ws().serverSends(docStatus({ document_id: "d1", name: "report.pdf", status: "processed", chunk_count: 4 })));
    expect(status("report.pdf")).toBe("processed");
  });

  it("shows why the server refused a retry and leaves the row as it was", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("late.pdf", {}, SLOW);

    await user.click(within(row("late.pdf")).getByTestId("document-retry"));

    const error = await within(row("late.pdf")).findByTestId("document-retry-error", {}, SLOW);
    expect(error.textContent).toContain("only a failed document is retried");
    expect(status("late.pdf")).toBe("error");
  });
});
