import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatDate } from "../../lib/format";
import { docStatus, document, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { DocumentsScreen } from "./DocumentsScreen";

/** Generous waits: the suite shares a busy machine. */
const SLOW = { timeout: 10_000 };
const LONG_NAME = "quarterly_financial-statement.2026.consolidated-annex.pdf";
const TEXT = "Spring tides come twice a month.\nNeap tides come in between.";

let server: TestServer;
beforeEach(async () => {
  sessionStorage.clear(); // the chosen sort and filter are kept per tab: every test starts from the default
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/workspaces/w1/documents" && req.method === "GET") {
      return json(200, {
        items: [
          document({ id: "d1", name: "tides.md", status: "processed", chunk_count: 2, updated_at: "2026-01-02T09:00:00Z" }),
          document({
            id: "d2",
            name: "broken.pdf",
            status: "error",
            status_reason: "This PDF is damaged or incomplete. Open it on your computer to check it.",
            updated_at: "2026-01-03T09:00:00Z",
          }),
          document({ id: "d3", name: LONG_NAME, status: "processing", updated_at: "2026-01-01T09:00:00Z" }),
        ],
        cursor: null,
      });
    }
    if (req.url === "/api/workspaces/w1/documents/d1/preview") {
      const doc = document({ id: "d1", name: "tides.md", status: "processed", chunk_count: 2, content_type: "text/markdown" });
      return json(200, { document: doc, text: TEXT, truncated: false, available: true });
    }
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

const names = () => screen.getAllByTestId("document-row").map((r) => r.dataset.documentName);
const row = (name: string) =>
  screen.getAllByTestId("document-row").find((r) => r.dataset.documentName === name) as HTMLElement;

describe("the documents table", () => {
  it("fills the Updated column from a live status event, without a reload", async () => {
    const h = renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("tides.md", {}, SLOW);
    act(() => h.socket.start());
    await waitFor(() => expect(h.sockets).toHaveLength(1), SLOW);

    act(() => {
      h.ws().serverOpens();
      h.ws().serverSends(
        docStatus({ document_id: "new", name: "fresh.txt", status: "processing", updated_at: "2026-02-01T12:30:00Z" }),
      );
    });

    const updated = within(row("fresh.txt")).getByTestId("document-updated");
    expect(updated.textContent).toBe(formatDate("2026-02-01T12:30:00Z"));
    expect(updated.textContent).not.toBe("—");
    expect(server.requests.filter((r) => r.url === "/api/workspaces/w1/documents")).toHaveLength(1);
  });

  it("sorts by the column header the user clicks, with aria-sort on that header", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("tides.md", {}, SLOW);
    expect(names()).toEqual(["broken.pdf", LONG_NAME, "tides.md"]);
    expect(screen.getByTestId("sort-name").getAttribute("aria-sort")).toBe("ascending");

    await user.click(screen.getByRole("button", { name: /^Updated/ }));
    expect(names()).toEqual(["broken.pdf", "tides.md", LONG_NAME]);
    expect(screen.getByTestId("sort-updated").getAttribute("aria-sort")).toBe("descending");
    expect(screen.getByTestId("sort-name").getAttribute("aria-sort")).toBe("none");

    await user.click(screen.getByRole("button", { name: /^Updated/ }));
    expect(names()).toEqual([LONG_NAME, "tides.md", "broken.pdf"]);

    await user.click(screen.getByRole("button", { name: /^Status/ }));
    expect(names()).toEqual(["broken.pdf", LONG_NAME, "tides.md"]);
    expect(screen.getByTestId("sort-status").getAttribute("aria-sort")).toBe("ascending");
  });

  it("keeps the chosen sort when the screen is opened again (a reload)", async () => {
    const user = userEvent.setup();
    const first = renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("tides.md", {}, SLOW);
    await user.click(screen.getByRole("button", { name: /^Updated/ }));
    const chosen = names();
    first.unmount();

    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("tides.md", {}, SLOW);
    expect(names()).toEqual(chosen);
    expect(screen.getByTestId("sort-updated").getAttribute("aria-sort")).toBe("descending");
  });

  it("filters by status, with counts, and offers a way back when nothing matches", async () => {
    const user = userEvent.setup();
    const h = renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("tides.md", {}, SLOW);
    const filter = screen.getByRole("combobox", { name: "Show" });

    await user.selectOptions(filter, "error");
    expect(names()).toEqual(["broken.pdf"]);
    expect(screen.getByTestId("document-count").textContent).toBe("1 of 3 documents");
    expect(within(filter).getByRole("option", { name: "Failed (1)" })).toBeTruthy();

    // The failed document is retried elsewhere and processed: it leaves the "Failed" view live.
    act(() => h.socket.start());
    await waitFor(() => expect(h.sockets).toHaveLength(1), SLOW);
    act(() => {
      h.ws().serverOpens();
      h.ws().serverSends(docStatus({ document_id: "d2", name: "broken.pdf", status: "processed", chunk_count: 1 }));
    });
    expect(screen.queryAllByTestId("document-row")).toHaveLength(0);
    await user.click(screen.getByRole("button", { name: "Show all documents" }));
    expect(names()).toHaveLength(3);
  });

  it("shows Retry as a labelled button on the failed row only, next to the reason in words", async () => {
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("broken.pdf", {}, SLOW);
    const retry = within(row("broken.pdf")).getByRole("button", { name: "Retry document broken.pdf" });
    expect(retry.textContent).toBe("Retry");
    expect(within(row("broken.pdf")).getByTestId("document-reason").textContent).toMatch(/^This PDF is damaged/);
    expect(within(row("tides.md")).queryByRole("button", { name: /Retry/ })).toBeNull();
  });

  it("previews a processed document: its details and extracted text, closed with Escape", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("tides.md", {}, SLOW);
    expect(within(row("broken.pdf")).queryByRole("button", { name: /Preview/ })).toBeNull();
    expect(within(row(LONG_NAME)).queryByRole("button", { name: /Preview/ })).toBeNull();

    await user.click(within(row("tides.md")).getByRole("button", { name: "Preview document tides.md" }));

    const panel = await screen.findByTestId("document-preview", {}, SLOW);
    expect(within(panel).getByRole("heading", { name: "Preview: tides.md" })).toBe(window.document.activeElement);
    expect(await within(panel).findByTestId("document-preview-text", {}, SLOW)).toHaveProperty("textContent", TEXT);
    const details = within(panel).getByTestId("document-preview-details").textContent;
    expect(details).toContain("text/markdown");
    expect(details).toContain("Chunks2");
    expect(server.requests.map((r) => r.url)).toContain("/api/workspaces/w1/documents/d1/preview");

    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("document-preview")).toBeNull();
  });

  it("shows why a preview cannot be loaded", async () => {
    const user = userEvent.setup();
    await server.close();
    server = await startServer((req) => {
      if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
      if (req.url === "/api/workspaces/w1/documents") {
        return json(200, { items: [document({ id: "d1", name: "tides.md", status: "processed" })], cursor: null });
      }
      return json(409, { error: { code: "conflict", message: "“tides.md” is not processed yet" } });
    });
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await user.click(await screen.findByRole("button", { name: "Preview document tides.md" }, SLOW));
    const alert = await within(await screen.findByTestId("document-preview")).findByRole("alert", {}, SLOW);
    expect(alert.textContent).toContain("is not processed yet");
  });

  it("wraps a long file name only after separators, keeping the whole name for tooltips and screen readers", async () => {
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("tides.md", {}, SLOW);
    const header = within(row(LONG_NAME)).getByRole("rowheader");
    const name = header.querySelector(".file-name") as HTMLElement;
    expect(name.title).toBe(LONG_NAME);
    expect(header.textContent).toBe(LONG_NAME);
    const pieces = Array.from(name.childNodes)
      .filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent);
    expect(pieces).toEqual(["quarterly_", "financial-", "statement.", "2026.", "consolidated-", "annex.", "pdf"]);
    expect(name.querySelectorAll("wbr")).toHaveLength(pieces.length - 1);
  });
});
