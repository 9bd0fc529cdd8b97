import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { HitOut, SearchIn } from "../../api/types";
import { workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { ApiError } from "../../api/errors";
import { NO_RERANKER } from "../../state/rerankerOption";
import { NO_RERANKER_MODELS, RERANKER_MODELS } from "../../test/modelFixtures";
import { WithModels } from "../../test/withModels";
import { SearchScreen } from "./SearchScreen";

function hit(id: string, score: number): HitOut {
  return {
    chunk_id: id,
    document_id: "d1",
    document_name: "",
    page: null,
    title: `Title ${id}`,
    text: `Text ${id}`,
    start: 0,
    end: 10,
    score,
    dense_rank: 1,
    keyword_rank: null,
    rerank_score: null,
    metadata: {},
  };
}

let server: TestServer;
beforeEach(async () => {
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/workspaces/w1/search") {
      const body = JSON.parse(req.body.toString()) as SearchIn;
      if (body.mode === "keyword") return json(503, { error: { code: "unavailable", message: "Keyword index offline" } });
      return json(200, { hits: [hit(`${body.mode}-a`, 0.9), hit(`${body.mode}-b`, 0.5)], mode: body.mode, took_ms: 4 });
    }
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

describe("SearchScreen", () => {
  it("runs one mode and ranks the passages with scores", async () => {
    const user = userEvent.setup();
    renderWithServices(
      <WithModels models={RERANKER_MODELS}>
        <SearchScreen workspaceId="w1" />
      </WithModels>,
      server,
    );
    await user.type(await screen.findByTestId("search-input"), "leave");
    await user.click(screen.getByLabelText("dense"));
    await user.click(screen.getByTestId("search-rerank"));
    await user.click(screen.getByTestId("search-submit"));
    const hits = await screen.findAllByTestId("search-hit");
    expect(hits.map((h) => within(h).getByTestId("hit-score").textContent)).toEqual(["0.900", "0.500"]);
    const body: unknown = JSON.parse(server.requests.find((r) => r.url.endsWith("/search"))?.body.toString() ?? "{}");
    expect(body).toEqual({ query: "leave", mode: "dense", rerank: true, top_k: 5 });
  });

  it("compares the three modes side by side, with a failing one shown as an error", async () => {
    const user = userEvent.setup();
    renderWithServices(<SearchScreen workspaceId="w1" />, server);
    await user.type(await screen.findByTestId("search-input"), "leave");
    await user.click(screen.getByTestId("search-compare"));
    await user.click(screen.getByTestId("search-submit"));
    await waitFor(() => expect(screen.getByTestId("search-results")).toBeTruthy());
    const results = screen.getByTestId("search-results");
    expect(within(results).getByRole("region", { name: "dense results" }).textContent).toContain("Title dense-a");
    expect(within(results).getByRole("region", { name: "hybrid results" }).textContent).toContain("Title hybrid-a");
    expect(within(results).getByRole("region", { name: "keyword results" }).textContent).toContain("Keyword index offline");
  });

  it("offers reranking when the deployment has a reranker", async () => {
    renderWithServices(
      <WithModels models={RERANKER_MODELS}>
        <SearchScreen workspaceId="w1" />
      </WithModels>,
      server,
    );
    const rerank = await screen.findByRole<HTMLInputElement>("checkbox", { name: "Rerank" });
    expect(rerank.disabled).toBe(false);
    expect(rerank.getAttribute("aria-describedby")).toBeNull();
    expect(screen.queryByTestId("search-rerank-reason")).toBeNull();
  });

  it("disables reranking with the reason when no reranker is configured, and never asks for it", async () => {
    const user = userEvent.setup();
    renderWithServices(
      <WithModels models={NO_RERANKER_MODELS}>
        <SearchScreen workspaceId="w1" />
      </WithModels>,
      server,
    );
    const rerank = await screen.findByRole<HTMLInputElement>("checkbox", { name: "Rerank" });
    expect(rerank.disabled).toBe(true);
    expect(rerank.checked).toBe(false);
    expect(screen.getByTestId("search-rerank-reason").textContent).toBe(NO_RERANKER);
    expect(rerank.getAttribute("aria-describedby")).toBe(screen.getByTestId("search-rerank-reason").id);
    await user.click(rerank);
    expect(rerank.checked).toBe(false);

    await user.type(screen.getByTestId("search-input"), "leave");
    await user.click(screen.getByTestId("search-submit"));
    await screen.findAllByTestId("search-hit");
    const body: unknown = JSON.parse(server.requests.find((r) => r.url.endsWith("/search"))?.body.toString() ?? "{}");
    expect(body).toMatchObject({ query: "leave", rerank: false });
  });

  it("says why reranking is off when the models could not be read", async () => {
    renderWithServices(
      <WithModels models={NO_RERANKER_MODELS} error={new ApiError(503, "unavailable", "Model service down")}>
        <SearchScreen workspaceId="w1" />
      </WithModels>,
      server,
    );
    const rerank = await screen.findByRole<HTMLInputElement>("checkbox", { name: "Rerank" });
    expect(rerank.disabled).toBe(true);
    expect(screen.getByTestId("search-rerank-reason").textContent).toContain("Model service down");
  });
});
