import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { citation } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { CitationPanel } from "./CitationPanel";

const PASSAGE = "# Returns\nRefunds are **possible** within 27 days. Shipping is free.";
const SUPPORT = "Refunds are possible within 27 days.";

const cited = citation(1, {
  document_id: "doc-9",
  workspace_id: "ws-1",
  document_name: "returns-policy.pdf",
  title: "about:blank",
  page: 4,
  text: PASSAGE,
  highlight_start: PASSAGE.indexOf("Refunds"),
  highlight_end: PASSAGE.indexOf("days.") + 5,
  score: 0.0331,
  start: 0,
  end: 784,
});

let server: TestServer;
beforeEach(async () => {
  server = await startServer((req) =>
    req.url.startsWith("/api/workspaces/ws-1/documents/doc-9/source")
      ? json(200, { url: "http://files.test/returns-policy.pdf?sig=abc#page=4", expires_at: "2030-01-01T00:00:00Z" })
      : json(404, { error: { code: "not_found", message: "not found" } }),
  );
});
afterEach(() => server.close());

describe("CitationPanel", () => {
  it("shows the document's name and page, not its embedded title or internals", () => {
    renderWithServices(<CitationPanel citation={cited} onClose={() => undefined} />, server);
    const panel = screen.getByTestId("citation-panel");
    expect(within(panel).getByTestId("citation-title").textContent).toBe("returns-policy.pdf");
    expect(within(panel).getByTestId("citation-page").textContent).toBe("Page 4");
    expect(within(panel).queryByTestId("citation-subtitle")).toBeNull(); // "about:blank" says nothing
    expect(panel.textContent).not.toContain("doc-9");
  });

  it("renders the passage as Markdown with the supporting sentence highlighted", () => {
    renderWithServices(<CitationPanel citation={cited} onClose={() => undefined} />, server);
    const text = screen.getByTestId("citation-text");
    expect(text.querySelector("h1")?.textContent).toBe("Returns");
    expect(text.querySelector("strong")?.textContent).toBe("possible");
    expect(text.textContent).not.toContain("**");
    const marks = within(text).getAllByTestId("citation-highlight");
    expect(marks.map((m) => m.textContent).join("")).toBe(SUPPORT);
  });

  it("keeps the score and offsets behind a Details toggle, closed until opened", async () => {
    const user = userEvent.setup();
    renderWithServices(<CitationPanel citation={cited} onClose={() => undefined} />, server);
    const details = screen.getByTestId<HTMLDetailsElement>("citation-details");
    expect(details.open).toBe(false);
    expect(details.contains(screen.getByTestId("citation-score"))).toBe(true);
    await user.click(within(details).getByText("Details"));
    expect(details.open).toBe(true);
    expect(screen.getByTestId("citation-score").textContent).toBe("0.033");
  });

  it("links to the document itself, at the cited page", async () => {
    renderWithServices(<CitationPanel citation={cited} onClose={() => undefined} />, server);
    const link = await screen.findByTestId("citation-source-link");
    expect(link.getAttribute("href")).toBe("http://files.test/returns-policy.pdf?sig=abc#page=4");
    expect(link.getAttribute("target")).toBe("_blank");
    expect(link.textContent).toContain("Open returns-policy.pdf, page 4");
    expect(server.requests.map((r) => r.url)).toContain("/api/workspaces/ws-1/documents/doc-9/source?page=4");
  });

  it("says so when the document cannot be opened", async () => {
    const gone = { ...cited, document_id: "deleted" };
    renderWithServices(<CitationPanel citation={gone} onClose={() => undefined} />, server);
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("cannot be opened"));
    expect(screen.queryByTestId("citation-source-link")).toBeNull();
  });

  it("shows a meaningful embedded title as secondary text, and closes on Escape", async () => {
    const user = userEvent.setup();
    const onClose = vi.fn();
    const readme = { ...cited, document_name: "README.md", title: "Quarry", page: null };
    renderWithServices(<CitationPanel citation={readme} onClose={onClose} />, server);
    expect(screen.getByTestId("citation-subtitle").textContent).toBe("“Quarry”");
    expect(screen.queryByTestId("citation-page")).toBeNull();
    await user.keyboard("{Escape}");
    expect(onClose).toHaveBeenCalled();
  });
});
