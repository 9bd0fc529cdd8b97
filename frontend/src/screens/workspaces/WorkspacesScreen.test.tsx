import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { NO_RERANKER } from "../../state/rerankerOption";
import { NO_RERANKER_MODELS, RERANKER_MODELS } from "../../test/modelFixtures";
import { WithModels } from "../../test/withModels";
import { WorkspacesScreen } from "./WorkspacesScreen";

let server: TestServer;
beforeEach(async () => {
  server = await startServer((req) => {
    if (req.url === "/api/workspaces" && req.method === "GET") {
      return json(200, { items: [workspace({ document_count: null, chunk_count: null })], cursor: null });
    }
    if (req.url === "/api/workspaces/w1" && req.method === "GET") return json(200, workspace({ document_count: 3, chunk_count: 42 }));
    if (req.url === "/api/workspaces" && req.method === "POST") {
      const body = JSON.parse(req.body.toString()) as { name: string };
      return json(201, workspace({ id: "w2", name: body.name, document_count: 0, chunk_count: 0 }));
    }
    if (req.url === "/api/workspaces/w1" && req.method === "DELETE") return { status: 204 };
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

describe("WorkspacesScreen", () => {
  it("lists workspaces with counts filled in from the detail endpoint", async () => {
    renderWithServices(<WorkspacesScreen />, server);
    const row = await screen.findByTestId("workspace-row");
    await waitFor(() => expect(within(row).getByTestId("workspace-document-count").textContent).toBe("3"));
    expect(row.textContent).toContain("42");
  });

  it("validates chunking before creating, then creates", async () => {
    const user = userEvent.setup();
    renderWithServices(<WorkspacesScreen />, server);
    await screen.findByTestId("workspace-row");
    await user.type(screen.getByTestId("workspace-name"), "Legal");
    await user.clear(screen.getByTestId("workspace-chunk-overlap"));
    await user.type(screen.getByTestId("workspace-chunk-overlap"), "300");
    await user.click(screen.getByTestId("workspace-create"));
    expect(screen.getByText("Overlap must be smaller than the chunk size.")).toBeTruthy();
    expect(server.requests.filter((r) => r.method === "POST")).toHaveLength(0);

    await user.clear(screen.getByTestId("workspace-chunk-overlap"));
    await user.type(screen.getByTestId("workspace-chunk-overlap"), "40");
    await user.click(screen.getByTestId("workspace-create"));
    await waitFor(() => expect(screen.getAllByTestId("workspace-row")).toHaveLength(2));
    const post = server.requests.find((r) => r.method === "POST");
    expect(JSON.parse(post?.body.toString() ?? "{}")).toMatchObject({ name: "Legal", chunk_size: 256, chunk_overlap: 40 });
  });

  it("deletes only after confirmation", async () => {
    const user = userEvent.setup();
    renderWithServices(<WorkspacesScreen />, server);
    await screen.findByTestId("workspace-row");
    await user.click(screen.getByTestId("workspace-delete"));
    expect(server.requests.some((r) => r.method === "DELETE")).toBe(false);
    await user.click(screen.getByTestId("workspace-delete-confirm"));
    await waitFor(() => expect(screen.queryByTestId("workspace-row")).toBeNull());
    expect(server.requests.some((r) => r.method === "DELETE" && r.url === "/api/workspaces/w1")).toBe(true);
  });

  it("creates a workspace with the deployment's reranker when it has one", async () => {
    const user = userEvent.setup();
    renderWithServices(
      <WithModels models={RERANKER_MODELS}>
        <WorkspacesScreen />
      </WithModels>,
      server,
    );
    await screen.findByTestId("workspace-row");
    const reranker = screen.getByRole<HTMLSelectElement>("combobox", { name: "Reranker" });
    expect(reranker.disabled).toBe(false);
    expect(screen.queryByTestId("workspace-reranker-reason")).toBeNull();
    await user.selectOptions(reranker, "BGE reranker (sagemaker)");
    await user.type(screen.getByTestId("workspace-name"), "Ranked");
    await user.click(screen.getByTestId("workspace-create"));
    await waitFor(() => expect(screen.getAllByTestId("workspace-row")).toHaveLength(2));
    const post = server.requests.find((r) => r.method === "POST");
    expect(JSON.parse(post?.body.toString() ?? "{}")).toMatchObject({ name: "Ranked", reranker: "bge-reranker" });
  });

  it("disables the reranker choice with the reason when none is configured, and creates without one", async () => {
    const user = userEvent.setup();
    renderWithServices(
      <WithModels models={NO_RERANKER_MODELS}>
        <WorkspacesScreen />
      </WithModels>,
      server,
    );
    await screen.findByTestId("workspace-row");
    const reranker = screen.getByRole<HTMLSelectElement>("combobox", { name: "Reranker" });
    expect(reranker.disabled).toBe(true);
    expect([...reranker.options].map((o) => o.textContent)).toEqual(["None"]);
    const reason = screen.getByTestId("workspace-reranker-reason");
    expect(reason.textContent).toBe(NO_RERANKER);
    expect(reranker.getAttribute("aria-describedby")).toBe(reason.id);
    await user.type(screen.getByTestId("workspace-name"), "Plain");
    await user.click(screen.getByTestId("workspace-create"));
    await waitFor(() => expect(screen.getAllByTestId("workspace-row")).toHaveLength(2));
    const post = server.requests.find((r) => r.method === "POST");
    expect(JSON.parse(post?.body.toString() ?? "{}")).toMatchObject({ name: "Plain", reranker: null });
  });
});
