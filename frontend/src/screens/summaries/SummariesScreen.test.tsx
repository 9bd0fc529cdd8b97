import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SummaryJobOut } from "../../api/summaries";
import { document, workspace } from "../../test/fixtures";
import { renderWithServices } from "../../test/harness";
import { json, type Reply, startServer, type TestServer } from "../../test/server";
import { point, summaryJob } from "../../test/summaryFixtures";
import { POLL_MS } from "../../state/summaries";
import { SummariesScreen } from "./SummariesScreen";

const SLOW = { timeout: 10_000 };
/** No polling unless a test wants it. */
const NO_POLL = 600_000;

const progress = (documents_read: number, documents_total: number, batches_done: number, batches_total: number, batches_failed = 0) => ({
  documents_read,
  documents_total,
  batches_done,
  batches_total,
  batches_failed,
});

const finished = summaryJob({
  id: "j1",
  status: "succeeded",
  progress: progress(40, 40, 4, 4),
  result: {
    documents_read: 40,
    evaluation: { faithfulness: 0.96, citation_validity: 1 },
    points: [
      point("pro", "Battery lasts all day", [["d1", "review-1.txt"], ["d2", "review-2.txt"]], 3),
      point("pro", "Light", [["d2", "review-2.txt"]]),
      point("con", "Charger is slow", [["d3", "review-3.txt"]], 1),
    ],
  },
  runs: 1,
  prompt_tokens: 12_000,
  completion_tokens: 800,
  cost_usd: 0.0042,
  started_at: "2026-03-01T10:00:01Z",
  finished_at: "2026-03-01T10:05:00Z",
});

let server: TestServer;
/** What `GET .../summaries` answers next: the first item until only one is left (then it stays). */
let listings: SummaryJobOut[][];
let handlers: Record<string, (body: unknown) => Reply>;
beforeEach(async () => {
  listings = [[finished]];
  handlers = {};
  server = await startServer((req) => {
    if (req.url === "/api/workspaces") return json(200, { items: [workspace()], cursor: null });
    if (req.url === "/api/workspaces/w1/documents") {
      return json(200, { items: [document({ metadata: { product: "X", rating: 4 } })], cursor: null });
    }
    if (req.url === "/api/workspaces/w1/summaries" && req.method === "GET") {
      const items = listings.length > 1 ? (listings.shift() as SummaryJobOut[]) : (listings[0] ?? []);
      return json(200, { items, cursor: null });
    }
    if (req.url === "/api/workspaces/w1/documents/d2/preview") {
      return json(200, {
        available: true,
        truncated: false,
        text: "Light and the battery lasts all day.",
        document: document({ id: "d2", name: "review-2.txt", status: "processed", content_type: "text/plain" }),
      });
    }
    const handler = handlers[`${req.method} ${req.url}`];
    if (handler) return handler(req.body.length ? JSON.parse(req.body.toString()) : null);
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

const listReads = () => server.requests.filter((r) => r.method === "GET" && r.url === "/api/workspaces/w1/summaries").length;
const job = (id: string) => screen.getAllByTestId("summary-job").find((j) => j.dataset.jobId === id) as HTMLElement;

describe("SummariesScreen", () => {
  it("polls every 2 s by default while a job is queued or running", () => {
    expect(POLL_MS).toBe(2000);
  });

  it("follows a running job live, with a named progress bar, until its result", async () => {
    const running = (read: number, done: number) =>
      summaryJob({ id: "j1", status: "running", progress: progress(read, 40, done, 4), started_at: "2026-03-01T10:00:01Z" });
    listings = [[running(10, 1)], [running(30, 3)], [finished]];
    renderWithServices(<SummariesScreen workspaceId="w1" pollMs={20} />, server);

    const bar = await screen.findByRole("progressbar", { name: "Progress of Pros and cons of product = X" }, SLOW);
    expect(bar.getAttribute("max")).toBe("40");
    expect(bar.getAttribute("value")).toBe("10");
    expect(within(job("j1")).getByTestId("summary-progress-text").textContent).toBe("10 of 40 documents read · 1 of 4 batches");
    expect(within(job("j1")).getByTestId("summary-status").textContent).toBe("running");
    expect(within(job("j1")).getByRole("button", { name: "Cancel summary: Pros and cons of product = X" })).toBeTruthy();

    await waitFor(() => expect(job("j1").dataset.status).toBe("succeeded"), SLOW);
    expect(screen.getByTestId("summary-announcement").textContent).toBe("Summary done: Pros and cons of product = X.");
    const card = job("j1");
    const pros = within(card).getByRole("region", { name: "Pros" });
    expect(within(pros).getAllByTestId("summary-point").map((p) => p.querySelector(".summary-point-text")?.textContent)).toEqual([
      "Battery lasts all day",
      "Light",
    ]);
    expect(within(pros).getAllByTestId("summary-point-count").map((c) => c.textContent)).toEqual([
      "mentioned in 3 documents",
      "mentioned in 1 document",
    ]);
    expect(within(within(card).getByRole("region", { name: "Cons" })).getByText("Charger is slow")).toBeTruthy();
    expect(within(card).queryByRole("region", { name: "Themes" })).toBeNull();
    expect(within(card).getByTestId("summary-cost").textContent).toBe("$0.0042 · 12,800 tokens");
    expect(within(card).getByTestId("summary-result").textContent).toContain("Faithfulness 0.96 · Citation validity 1.00");

    // Finished: no more reads.
    const reads = listReads();
    await new Promise((r) => setTimeout(r, 150));
    expect(listReads()).toBe(reads);
  });

  it("opens a cited document's preview from the result", async () => {
    const user = userEvent.setup();
    renderWithServices(<SummariesScreen workspaceId="w1" pollMs={NO_POLL} />, server);
    const pros = await screen.findByRole("region", { name: "Pros" }, SLOW);
    const citations = within(pros).getAllByRole("button", { name: "review-2.txt" });
    expect(citations).toHaveLength(2);
    await user.click(citations[0] as HTMLElement);
    const preview = await screen.findByTestId("document-preview", {}, SLOW);
    expect(within(preview).getByRole("heading", { name: "Preview: review-2.txt" })).toBe(window.document.activeElement);
    expect((await within(preview).findByTestId("document-preview-text", {}, SLOW)).textContent).toBe(
      "Light and the battery lasts all day.",
    );
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("document-preview")).toBeNull();
  });

  it("starts a job from the form: kind, filter, instructions, language, points and schedule", async () => {
    const user = userEvent.setup();
    let sent: unknown = null;
    handlers["POST /api/workspaces/w1/summaries"] = (body) => {
      sent = body;
      return json(202, summaryJob({ id: "j2", kind: "custom", filter_description: "rating >= 4", schedule: "cron(0 6 * * ? *)" }));
    };
    renderWithServices(<SummariesScreen workspaceId="w1" pollMs={NO_POLL} />, server);
    const form = await screen.findByRole("form", { name: "Start a summary" }, SLOW);

    await user.selectOptions(within(form).getByLabelText("Kind"), "custom");
    await user.click(within(form).getByRole("button", { name: "Start summary" }));
    expect(within(form).getByRole("alert").textContent).toBe("A custom summary needs instructions.");
    expect(sent).toBeNull();

    await user.type(within(form).getByLabelText("Instructions"), "What do buyers say about the battery?");
    await user.clear(within(form).getByLabelText("Language"));
    await user.type(within(form).getByLabelText("Language"), "German");
    await user.clear(within(form).getByLabelText("Points per group (max)"));
    await user.type(within(form).getByLabelText("Points per group (max)"), "3");
    await user.selectOptions(within(form).getByLabelText("When"), "Every day at 06:00 UTC");
    const builder = within(form).getByRole("group", { name: "Documents to read (no conditions: all of them)" });
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 1"), "rating");
    await user.selectOptions(within(builder).getByLabelText("Operator of condition 1"), "gte");
    await user.type(within(builder).getByLabelText("Value of condition 1"), "4");
    expect(within(form).getByTestId("filter-summary").textContent).toContain("Reads documents where rating >= 4");
    await user.click(within(form).getByRole("button", { name: "Start summary" }));

    await within(form).findByText(/Started, and scheduled/, {}, SLOW);
    expect(sent).toEqual({
      kind: "custom",
      filter: { rating: { gte: 4 } },
      instructions: "What do buyers say about the battery?",
      language: "German",
      max_points: 3,
      schedule: "cron(0 6 * * ? *)",
    });
    expect(screen.getAllByTestId("summary-job").map((j) => j.dataset.jobId)).toEqual(["j2", "j1"]);
    expect(within(job("j2")).getByTestId("summary-schedule").textContent).toBe("Every day at 06:00 UTC");
  });

  it("says plainly when no documents match the filter", async () => {
    const user = userEvent.setup();
    handlers["POST /api/workspaces/w1/summaries"] = () =>
      json(422, { error: { code: "invalid_input", message: "no documents match the filter (product = Z)" } });
    renderWithServices(<SummariesScreen workspaceId="w1" pollMs={NO_POLL} />, server);
    const form = await screen.findByRole("form", { name: "Start a summary" }, SLOW);
    const builder = within(form).getByRole("group", { name: /Documents to read/ });
    await user.click(within(builder).getByRole("button", { name: "Add condition" }));
    await user.type(within(builder).getByLabelText("Key of condition 1"), "product");
    await user.type(within(builder).getByLabelText("Value of condition 1"), "Z");
    await user.click(within(form).getByRole("button", { name: "Start summary" }));

    const note = await within(form).findByTestId("summary-no-documents", {}, SLOW);
    expect(note.getAttribute("role")).toBe("alert");
    expect(note.textContent).toContain("No documents match.");
    expect(note.textContent).toContain("no documents match the filter (product = Z)");
    expect(screen.getAllByTestId("summary-job")).toHaveLength(1);
  });

  it("shows a schedule the server refuses next to the schedule field", async () => {
    const user = userEvent.setup();
    handlers["POST /api/workspaces/w1/summaries"] = () =>
      json(422, { error: { code: "invalid_input", message: "schedule: Value error, schedule: cron(bad) does not parse" } });
    renderWithServices(<SummariesScreen workspaceId="w1" pollMs={NO_POLL} />, server);
    const form = await screen.findByRole("form", { name: "Start a summary" }, SLOW);
    await user.selectOptions(within(form).getByLabelText("When"), "On a schedule I write…");
    const expression = within(form).getByLabelText("Schedule expression");
    await user.type(expression, "cron(bad)");
    await user.click(within(form).getByRole("button", { name: "Start summary" }));

    const error = await within(form).findByRole("alert", {}, SLOW);
    expect(error.textContent).toBe("cron(bad) does not parse");
    expect(expression.getAttribute("aria-invalid")).toBe("true");
    expect(expression.getAttribute("aria-describedby")).toContain(error.id);
  });

  it("cancels a running job, runs a finished one again and deletes one", async () => {
    const user = userEvent.setup();
    const running = summaryJob({ id: "j3", status: "running", progress: progress(5, 40, 0, 4), filter_description: "product = Y" });
    listings = [[running, finished]];
    handlers["DELETE /api/workspaces/w1/summaries/j3"] = () =>
      json(202, { ...running, status: "cancelled", finished_at: "2026-03-01T10:01:00Z" });
    handlers["POST /api/workspaces/w1/summaries/j1/runs"] = () =>
      json(202, { ...finished, status: "queued", runs: 2, progress: progress(0, 0, 0, 0) });
    handlers["DELETE /api/workspaces/w1/summaries/j1"] = () => ({ status: 204 });
    renderWithServices(<SummariesScreen workspaceId="w1" pollMs={NO_POLL} />, server);

    await user.click(await screen.findByRole("button", { name: "Cancel summary: Pros and cons of product = Y" }, SLOW));
    await waitFor(() => expect(job("j3").dataset.status).toBe("cancelled"), SLOW);
    expect(within(job("j3")).getByTestId("summary-status").textContent).toBe("cancelled");

    await user.click(within(job("j1")).getByRole("button", { name: "Run again: Pros and cons of product = X" }));
    await waitFor(() => expect(job("j1").dataset.status).toBe("queued"), SLOW);
    expect(within(job("j1")).getByTestId("summary-progress-text").textContent).toBe("Waiting to start…");

    await user.click(within(job("j3")).getByRole("button", { name: "Delete summary: Pros and cons of product = Y" }));
    await user.click(within(job("j3")).getByTestId("summary-delete-confirm"));
    await waitFor(() => expect(screen.getAllByTestId("summary-job").map((j) => j.dataset.jobId)).toEqual(["j1"]), SLOW);
    expect(server.requests.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.url}`)).toEqual([
      "DELETE /api/workspaces/w1/summaries/j3",
      "POST /api/workspaces/w1/summaries/j1/runs",
      "DELETE /api/workspaces/w1/summaries/j3",
    ]);
  });
});
