import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { UserMetadata } from "../../api/metadata";
import type { DocumentOut } from "../../api/types";
import { document, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, type Recorded, startServer, type TestServer } from "../../test/server";
import { DocumentsScreen } from "./DocumentsScreen";

/** Generous waits: the suite shares a busy machine. */
const SLOW = { timeout: 10_000 };

let server: TestServer;
let docs: DocumentOut[];
beforeEach(async () => {
  docs = [
    document({ id: "d1", name: "review.txt", status: "processed", metadata: { product: "X", rating: 4, tags: ["a", "b"] } }),
    document({ id: "d2", name: "plain.pdf", status: "processed" }),
  ];
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/workspaces/w1/documents" && req.method === "GET") return json(200, { items: docs, cursor: null });
    if (req.url === "/api/workspaces/w1/documents/d1" && req.method === "PATCH") {
      const { metadata } = JSON.parse(req.body.toString()) as { metadata: Record<string, unknown> };
      if ("color" in metadata) {
        return json(422, { error: { code: "invalid_input", message: "metadata.color: strings are at most 1000 characters" } });
      }
      const merged: Record<string, unknown> = { ...(docs[0]?.metadata ?? {}) };
      for (const [k, v] of Object.entries(metadata)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      return json(200, { ...docs[0], metadata: merged });
    }
    if (req.url === "/api/workspaces/w1/documents/upload-url") {
      const { filename } = JSON.parse(req.body.toString()) as { filename: string };
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
    if (req.url === "/api/workspaces/w1/documents" && req.method === "POST") {
      const body = JSON.parse(req.body.toString()) as { title: string; metadata?: UserMetadata };
      return json(201, document({ id: "t1", name: body.title || "text", source: "text", metadata: body.metadata ?? {} }));
    }
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

const row = (name: string) =>
  screen.getAllByTestId("document-row").find((r) => r.dataset.documentName === name) as HTMLElement;
const chips = (name: string) => within(row(name)).queryAllByTestId("metadata-chip").map((c) => c.textContent);
const bodyOf = (r: Recorded | undefined): unknown => JSON.parse(r?.body.toString() ?? "null");
const lastRequest = (method: string, url: string) => server.requests.filter((r) => r.method === method && r.url === url).at(-1);

describe("Document metadata", () => {
  it("shows each document's metadata as chips in its row", async () => {
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("review.txt", {}, SLOW);
    expect(chips("review.txt")).toEqual(["product X", "rating 4", "tags a, b"]);
    expect(within(row("review.txt")).getByRole("list", { name: "Metadata of review.txt" })).toBeTruthy();
    expect(chips("plain.pdf")).toEqual([]);
    expect(within(row("plain.pdf")).getByRole("button", { name: "Edit metadata of plain.pdf" }).textContent).toBe("Edit");
  });

  it("edits metadata: changes a value, removes a key, adds a typed one, and sends a merge patch", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await user.click(await screen.findByRole("button", { name: "Edit metadata of review.txt" }, SLOW));

    const editor = screen.getByTestId("metadata-editor");
    expect(within(editor).getByRole("heading", { name: "Metadata: review.txt" })).toBe(window.document.activeElement);
    expect(within(editor).getByLabelText<HTMLInputElement>("Field 1 name").value).toBe("product");
    expect(within(editor).getByRole<HTMLSelectElement>("combobox", { name: "Field 2 type" }).value).toBe("number");
    const save = within(editor).getByRole<HTMLButtonElement>("button", { name: "Save metadata" });
    expect(save.disabled).toBe(true);

    const rating = within(editor).getByRole("spinbutton", { name: "Field 2 value" });
    await user.clear(rating);
    await user.type(rating, "5");
    await user.click(within(editor).getByRole("button", { name: "Remove field 3 (tags)" }));
    await user.click(within(editor).getByRole("button", { name: "Add field" }));
    await user.type(within(editor).getByLabelText("Field 3 name"), "verified");
    await user.selectOptions(within(editor).getByRole("combobox", { name: "Field 3 type" }), "Yes/no");
    await user.selectOptions(within(editor).getByRole("combobox", { name: "Field 3 value" }), "Yes");
    await user.click(save);

    await within(editor).findByText("Saved.", {}, SLOW);
    expect(bodyOf(lastRequest("PATCH", "/api/workspaces/w1/documents/d1"))).toEqual({
      metadata: { rating: 5, tags: null, verified: true },
    });
    expect(chips("review.txt")).toEqual(["product X", "rating 5", "verified yes"]);
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("metadata-editor")).toBeNull();
  });

  it("shows the server's 422 next to the field it names", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await user.click(await screen.findByRole("button", { name: "Edit metadata of review.txt" }, SLOW));
    const editor = screen.getByTestId("metadata-editor");
    await user.click(within(editor).getByRole("button", { name: "Add field" }));
    await user.type(within(editor).getByLabelText("Field 4 name"), "color");
    await user.type(within(editor).getByLabelText("Field 4 value"), "red");
    await user.click(within(editor).getByRole("button", { name: "Save metadata" }));

    const entry = (await within(editor).findAllByTestId("metadata-entry", {}, SLOW)).find((e) => e.dataset.key === "color") as HTMLElement;
    const error = await within(entry).findByRole("alert", {}, SLOW);
    expect(error.textContent).toBe("strings are at most 1000 characters");
    const value = within(entry).getByLabelText("Field 4 value");
    expect(value.getAttribute("aria-invalid")).toBe("true");
    expect(value.getAttribute("aria-describedby")).toBe(error.id);
    expect(chips("review.txt")).toEqual(["product X", "rating 4", "tags a, b"]);
  });

  it("checks names and values before sending", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await user.click(await screen.findByRole("button", { name: "Edit metadata of plain.pdf" }, SLOW));
    const editor = screen.getByTestId("metadata-editor");
    await user.click(within(editor).getByRole("button", { name: "Add field" }));
    await user.type(within(editor).getByLabelText("Field 1 name"), "source");
    await user.type(within(editor).getByLabelText("Field 1 value"), "mine");
    await user.click(within(editor).getByRole("button", { name: "Save metadata" }));
    expect(within(editor).getByTestId("metadata-error").textContent).toBe("“source” is a system field and cannot be set.");
    expect(server.requests.filter((r) => r.method === "PATCH")).toHaveLength(0);
  });

  it("sends the metadata set under the upload zone with every uploaded file", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("review.txt", {}, SLOW);
    const fields = screen.getByTestId("upload-metadata");
    await user.click(within(fields).getByText("Metadata for uploaded files (optional)"));
    await user.click(within(fields).getByRole("button", { name: "Add field" }));
    // The key is suggested from the workspace's documents and takes its type from them.
    expect(within(fields).getByLabelText("Field 1 name").getAttribute("list")).toBeTruthy();
    await user.type(within(fields).getByLabelText("Field 1 name"), "rating");
    expect(within(fields).getByRole<HTMLSelectElement>("combobox", { name: "Field 1 type" }).value).toBe("number");
    await user.type(within(fields).getByRole("spinbutton", { name: "Field 1 value" }), "3");

    await user.upload(screen.getByTestId("upload-input"), [new File(["hi"], "new.txt", { type: "text/plain" })]);
    await waitFor(() => expect(server.requests.some((r) => r.url === "/upload")).toBe(true), SLOW);
    expect(bodyOf(lastRequest("POST", "/api/workspaces/w1/documents/upload-url"))).toEqual({
      filename: "new.txt",
      content_type: "text/plain",
      size_bytes: 2,
      metadata: { rating: 3 },
    });
    expect(chips("new.txt")).toEqual(["rating 3"]);
  });

  it("refuses an upload while its metadata has a problem", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("review.txt", {}, SLOW);
    const fields = screen.getByTestId("upload-metadata");
    await user.click(within(fields).getByText("Metadata for uploaded files (optional)"));
    await user.click(within(fields).getByRole("button", { name: "Add field" }));
    await user.type(within(fields).getByLabelText("Field 1 name"), "2nd");
    await user.type(within(fields).getByLabelText("Field 1 value"), "x");
    await user.upload(screen.getByTestId("upload-input"), [new File(["hi"], "new.txt", { type: "text/plain" })]);
    expect(within(fields).getByTestId("metadata-error").textContent).toMatch(/start with a letter/);
    expect(server.requests.some((r) => r.url.endsWith("/upload-url"))).toBe(false);
  });

  it("adds a text with its metadata (a date here)", async () => {
    const user = userEvent.setup();
    renderWithServices(<DocumentsScreen workspaceId="w1" />, server);
    await screen.findByText("review.txt", {}, SLOW);
    await user.click(screen.getByText("Add text", { selector: "summary" }));
    const form = screen.getByTestId("add-text-form");
    await user.type(within(form).getByRole("textbox", { name: "Title" }), "Note");
    await user.type(within(form).getByRole("textbox", { name: "Text" }), "Great product.");
    await user.click(within(form).getByText("Metadata (optional)"));
    await user.click(within(form).getByRole("button", { name: "Add field" }));
    await user.type(within(form).getByLabelText("Field 1 name"), "published");
    await user.selectOptions(within(form).getByRole("combobox", { name: "Field 1 type" }), "Date");
    await user.type(within(form).getByLabelText("Field 1 value"), "2024-05-01");
    await user.click(within(form).getByRole("button", { name: "Add text" }));

    await within(form).findByText(/Added “Note”/, {}, SLOW);
    expect(bodyOf(lastRequest("POST", "/api/workspaces/w1/documents"))).toEqual({
      type: "text",
      title: "Note",
      text: "Great product.",
      metadata: { published: "2024-05-01" },
    });
    expect(chips("Note")).toEqual(["published 2024-05-01"]);
  });
});
