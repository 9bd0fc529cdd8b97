import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { HitOut } from "../../api/types";
import { document, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, startServer, type TestServer } from "../../test/server";
import { SearchScreen } from "./SearchScreen";

const SLOW = { timeout: 10_000 };

const hit: HitOut = {
  chunk_id: "c1",
  document_id: "d1",
  document_name: "review.txt",
  page: null,
  title: "",
  text: "Fast and cheap.",
  start: 0,
  end: 15,
  score: 0.8,
  dense_rank: 1,
  keyword_rank: null,
  rerank_score: null,
  metadata: {},
};

let server: TestServer;
beforeEach(async () => {
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/workspaces/w1/documents") {
      return json(200, {
        items: [
          document({ id: "d1", metadata: { product: "X", rating: 5 } }),
          document({ id: "d2", metadata: { product: "Y", rating: 2, verified: true } }),
        ],
        cursor: null,
      });
    }
    if (req.url === "/api/workspaces/w1/search") return json(200, { hits: [hit], mode: "hybrid", took_ms: 3 });
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

const searches = () => server.requests.filter((r) => r.url === "/api/workspaces/w1/search").map((r) => JSON.parse(r.body.toString()) as unknown);
const options = (input: HTMLElement) =>
  Array.from(window.document.getElementById(input.getAttribute("list") ?? "")?.querySelectorAll("option") ?? []).map((o) => o.value);

async function openFilter() {
  const user = userEvent.setup();
  renderWithServices(<SearchScreen workspaceId="w1" />, server);
  await user.type(await screen.findByTestId("search-input", {}, SLOW), "battery");
  const toggle = screen.getByRole("button", { name: "Filter" });
  expect(toggle.getAttribute("aria-expanded")).toBe("false");
  await user.click(toggle);
  expect(toggle.getAttribute("aria-expanded")).toBe("true");
  const builder = screen.getByRole("group", { name: "Filter by metadata" });
  return { user, builder };
}

describe("Search with a metadata filter", () => {
  it("builds the filter from rows, with keys suggested from the workspace's documents, and sends it", async () => {
    const { user, builder } = await openFilter();
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    const key = within(builder).getByLabelText("Key of condition 1");
    await waitFor(() => expect(options(key)).toEqual(["product", "rating", "verified"]), SLOW);
    await user.type(key, "rating");
    await user.selectOptions(within(builder).getByLabelText("Operator of condition 1"), "gte");
    await user.type(within(builder).getByLabelText("Value of condition 1"), "4");
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 2"), "product");
    expect(options(within(builder).getByLabelText("Value of condition 2"))).toEqual(["X", "Y"]);
    await user.selectOptions(within(builder).getByLabelText("Operator of condition 2"), "is one of");
    await user.type(within(builder).getByLabelText("Value of condition 2"), "X, Y");

    const summary = screen.getByTestId("filter-summary");
    expect(summary.textContent).toContain("Only documents where rating >= 4 and product in (X, Y)");
    await user.click(screen.getByTestId("search-submit"));
    await screen.findAllByTestId("search-hit", {}, SLOW);
    expect(searches().at(-1)).toEqual({
      query: "battery",
      mode: "hybrid",
      rerank: false,
      top_k: 5,
      filters: { rating: { gte: 4 }, product: { in: ["X", "Y"] } },
    });

    await user.click(within(summary).getByRole("button", { name: "Clear filter" }));
    expect(screen.queryByTestId("filter-summary")).toBeNull();
    expect(within(builder).queryAllByTestId("filter-row")).toHaveLength(0);
    await user.click(screen.getByTestId("search-submit"));
    await waitFor(() => expect(searches()).toHaveLength(2), SLOW);
    expect(searches().at(-1)).not.toHaveProperty("filters");
  });

  it("ORs the rows with “match any”, and types yes/no keys", async () => {
    const { user, builder } = await openFilter();
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 1"), "verified");
    await waitFor(() => expect(options(within(builder).getByLabelText("Value of condition 1"))).toEqual(["yes", "no"]), SLOW);
    await user.type(within(builder).getByLabelText("Value of condition 1"), "yes");
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 2"), "reviewed");
    await user.selectOptions(within(builder).getByLabelText("Operator of condition 2"), "exists");
    await user.click(within(builder).getByRole("checkbox", { name: "Match any condition (or)" }));

    expect(screen.getByTestId("filter-description").textContent).toBe("verified = yes or reviewed is set");
    await user.click(screen.getByTestId("search-submit"));
    await waitFor(() => expect(searches()).toHaveLength(1), SLOW);
    expect(searches()[0]).toMatchObject({ filters: { $or: [{ verified: true }, { reviewed: { exists: true } }] } });
  });

  it("does not search while a condition has a problem, and says which", async () => {
    const { user, builder } = await openFilter();
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 1"), "rating");
    await waitFor(() => expect(options(within(builder).getByLabelText("Key of condition 1"))).toContain("rating"), SLOW);
    await user.type(within(builder).getByLabelText("Value of condition 1"), "high");
    expect(screen.queryByTestId("filter-summary")).toBeNull();
    await user.click(screen.getByTestId("search-submit"));

    const error = within(builder).getByTestId("filter-error");
    expect(error.textContent).toBe("“rating” holds numbers: enter a number.");
    expect(within(builder).getByLabelText("Value of condition 1").getAttribute("aria-describedby")).toBe(error.id);
    expect(screen.getByRole("alert").textContent).toContain("The filter has a problem");
    expect(searches()).toHaveLength(0);
  });
});
