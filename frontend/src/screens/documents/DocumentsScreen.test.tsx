import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { docStatus, document, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { DocumentsScreen } from "./DocumentsScreen";

let server: TestServer;
beforeEach(async () => {
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/workspaces/w1/documents" && req.method === "GET") {
      return json(200, { items: [document({ id: "d1", name: "old.pdf", status: "processed", chunk_count: 7 })], cursor: null });
    }
    if (req.url === "/api/workspaces/w1/documents/upload-url") {
      const { filename } = JSON.parse(req.body.toString()) as { filename: string };
      if (filename.endsWith(".exe")) return json(400, { error: { code: "unsupported_type", message: "Unsupported file type" } });
      return json(200, {
        document_id: `doc-${filename}`,
        url: `${server.url}/upload`,
        fields: { key: `w1/${filename}` },
        key: `w1/${filename}`,
        expires_at: "2030-01-01T00:00:00Z",
        max_bytes: 1_000_000,
      });
    }
    if (req.url === "/upload") return { status: 204 };
    if (req.url === "/api/workspaces/w1/usage") {
      const zero = { day: "", model: "", requests: 4, prompt_tokens: 900, completion_tokens: 120, cost_usd: 0.0021 };
      return json(200, {
        scope: "workspace", id: "w1", since: "2026-03-01", until: "2026-03-30", currency: "USD",
        prices_as_of: "2025-06-01", total: zero, by_model: [{ ...zero, model: "amazon.nova-lite-v1:0" }], days: [],
      });
    }
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

const row = (name: string) =>
  screen.getAllByTestId("document-row").find((r) => r.dataset.documentName === name) as HTMLElement;

describe("DocumentsScreen", () => {
  it("uploads several files and shows live status from WebSocket events, with the failure reason", async () => {
    const user = userEvent.setup();
    const h = renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("old.pdf");
    expect(within(row("old.pdf")).getByTestId("document-status").dataset.status).toBe("processed");

    const files = [new File(["hello"], "a.txt", { type: "text/plain" }), new File(["%PDF"], "b.pdf", { type: "application/pdf" })];
    await user.upload(screen.getByTestId("upload-input"), files);
    await waitFor(() => expect(server.requests.filter((r) => r.url === "/upload")).toHaveLength(2));
    await waitFor(() => expect(within(row("a.txt")).getByTestId("document-status").dataset.status).toBe("created"));

    act(() => h.socket.start());
    await waitFor(() => expect(h.sockets).toHaveLength(1));
    act(() => {
      h.ws().serverOpens();
      h.ws().serverSends(docStatus({ document_id: "doc-a.txt", name: "a.txt", status: "processing" }));
      h.ws().serverSends(docStatus({ document_id: "doc-b.pdf", name: "b.pdf", status: "processing" }));
    });
    expect(within(row("a.txt")).getByTestId("document-status").dataset.status).toBe("processing");
    act(() => {
      h.ws().serverSends(docStatus({ document_id: "doc-a.txt", name: "a.txt", status: "processed", chunk_count: 1 }));
      h.ws().serverSends(docStatus({ document_id: "doc-b.pdf", name: "b.pdf", status: "error", reason: "The PDF has no text layer" }));
    });
    expect(within(row("a.txt")).getByTestId("document-status").dataset.status).toBe("processed");
    expect(within(row("b.pdf")).getByTestId("document-status").dataset.status).toBe("error");
    expect(within(row("b.pdf")).getByTestId("document-reason").textContent).toBe("The PDF has no text layer");
    // the listing was fetched once: status comes from events, not polling
    expect(server.requests.filter((r) => r.url === "/api/workspaces/w1/documents")).toHaveLength(1);
  });

  it("shows why a file was refused before upload", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("old.pdf");
    await user.upload(screen.getByTestId("upload-input"), new File(["MZ"], "tool.exe"));
    const failed = await screen.findByTestId("upload-failed");
    expect(failed.textContent).toContain("tool.exe");
    expect(failed.textContent).toContain("Unsupported file type");
  });

  it("shows the owner what chatting in this workspace cost", async () => {
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    const panel = await screen.findByTestId("usage-panel");
    expect(within(panel).getByRole("heading").textContent).toBe("Workspace usage");
    await waitFor(() => expect(within(panel).getByTestId("usage-total").textContent).toContain("4 answers"));
    expect(within(panel).getByTestId("usage-row").textContent).toContain("amazon.nova-lite-v1:0");
  });
});
