import { screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { UsageReportOut } from "../api/types";
import { renderWithServices } from "../test/harness";
import { json, startServer, type TestServer } from "../test/server";
import { formatUsd } from "../lib/format";
import { UsagePanel } from "./UsagePanel";

function report(scope: "user" | "workspace", id: string): UsageReportOut {
  const row = (model: string, requests: number, tokensIn: number, tokensOut: number, usd: number) => ({
    day: "2026-03-01",
    model,
    requests,
    prompt_tokens: tokensIn,
    completion_tokens: tokensOut,
    cost_usd: usd,
  });
  return {
    scope,
    id,
    since: "2026-03-01",
    until: "2026-03-30",
    currency: "USD",
    prices_as_of: "2025-06-01",
    total: row("", 3, 7500, 1050, 0.0126),
    by_model: [row("amazon.nova-lite-v1:0", 2, 5000, 700, 0.00047), row("amazon.nova-pro-v1:0", 1, 2500, 350, 0.01212)],
    days: [],
    allowance: null,
  };
}

let server: TestServer;
beforeEach(async () => {
  server = await startServer((req) => {
    if (req.url === "/api/usage" && req.method === "GET") return json(200, report("user", "dev"));
    if (req.url === "/api/workspaces/w1/usage") return json(200, { ...report("workspace", "w1"), by_model: [] });
    if (req.url === "/api/workspaces/w2/usage") return json(404, { error: { code: "not_found", message: "workspace w2 not found" } });
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

describe("UsagePanel", () => {
  it("shows the caller's tokens and estimated cost by model", async () => {
    renderWithServices(<UsagePanel />, server);
    const rows = await screen.findAllByTestId("usage-row");
    expect(rows).toHaveLength(2);
    expect(within(rows[0] as HTMLElement).getByRole("rowheader").textContent).toBe("amazon.nova-lite-v1:0");
    expect(rows[0]?.textContent).toContain("5,000");
    expect(rows[1]?.textContent).toContain("$0.01");
    const total = screen.getByTestId("usage-total").textContent ?? "";
    expect(total).toContain("$0.01");
    expect(total).toContain("3 answers");
    expect(screen.getByRole("heading").textContent).toBe("Your usage");
    expect(server.requests.map((r) => r.url)).toContain("/api/usage");
  });

  it("shows how much of today's token allowance is used when the deployment sets one", async () => {
    await server.close();
    const allowance = { daily_token_budget: 500000, tokens_today: 123456, tokens_left_today: 376544, renews_at: "2026-03-31T00:00:00Z" };
    server = await startServer(() => json(200, { ...report("user", "dev"), allowance }));
    renderWithServices(<UsagePanel />, server);
    const line = await screen.findByTestId("usage-allowance");
    expect(line.textContent).toContain(`${(123456).toLocaleString()} of ${(500000).toLocaleString()} tokens used today`);
    expect(line.textContent).toContain(`${(376544).toLocaleString()} left`);
    expect(within(line).getByRole("meter").getAttribute("value")).toBe("123456");
  });

  it("says when a spent allowance renews, and shows no allowance line without one", async () => {
    await server.close();
    const spent = { daily_token_budget: 300, tokens_today: 408, tokens_left_today: 0, renews_at: "2026-03-31T00:00:00Z" };
    server = await startServer(() => json(200, { ...report("user", "dev"), allowance: spent }));
    const first = renderWithServices(<UsagePanel />, server);
    const line = await screen.findByTestId("usage-allowance");
    expect(line.textContent).toContain("408 of 300 tokens used today");
    expect(line.textContent).toContain("none left until 00:00 UTC");
    first.unmount();

    await server.close();
    server = await startServer(() => json(200, report("user", "dev")));
    renderWithServices(<UsagePanel />, server);
    await screen.findAllByTestId("usage-row");
    expect(screen.queryByTestId("usage-allowance")).toBeNull();
  });

  it("asks for one workspace's usage and says when nothing was spent", async () => {
    renderWithServices(<UsagePanel workspaceId="w1" />, server);
    expect(await screen.findByText("No answers in this period.")).toBeTruthy();
    expect(screen.getByRole("heading").textContent).toBe("Workspace usage");
    expect(server.requests.map((r) => r.url)).toContain("/api/workspaces/w1/usage");
  });

  it("shows nothing for a workspace the caller does not own (the view is its owner's)", async () => {
    const { container } = renderWithServices(<UsagePanel workspaceId="w2" />, server);
    await vi.waitFor(() => expect(server.requests.map((r) => r.url)).toContain("/api/workspaces/w2/usage"));
    await vi.waitFor(() => expect(container.querySelector("[data-testid=usage-panel]")).toBeNull());
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("still shows other errors", async () => {
    await server.close();
    server = await startServer(() => json(500, { error: { code: "internal_error", message: "boom" } }));
    renderWithServices(<UsagePanel workspaceId="w1" />, server);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Could not load usage");
  });

  it("formats sub-cent costs with four decimals", () => {
    expect(formatUsd(0)).toBe("$0.00");
    expect(formatUsd(0.00047)).toBe("$0.0005");
    expect(formatUsd(12.3)).toBe("$12.30");
  });
});
