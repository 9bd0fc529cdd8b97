import { screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { workspace } from "../test/fixtures";
import { renderWithServices } from "../test/harness";
import { json, startServer, type TestServer } from "../test/server";
import { WorkspacesScreen } from "../screens/workspaces/WorkspacesScreen";
import { WakingBanner } from "./WakingBanner";

let server: TestServer;
let listCalls = 0;
beforeEach(async () => {
  listCalls = 0;
  server = await startServer((req) => {
    if (req.url === "/api/workspaces" && req.method === "GET") {
      listCalls++;
      if (listCalls === 1) {
        // Aurora at 0 ACU: the REST function waited its budget, then answered this.
        return {
          ...json(503, { error: { code: "database_waking", message: "the database is waking up; retry in 1 s" } }),
          headers: { "Content-Type": "application/json", "Retry-After": "1" },
        };
      }
      return json(200, { items: [workspace()], cursor: null });
    }
    if (req.url === "/api/workspaces/w1" && req.method === "GET") return json(200, workspace({ document_count: 1, chunk_count: 2 }));
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
});
afterEach(() => server.close());

describe("WakingBanner", () => {
  it("says the database is waking while a call waits to retry, and goes once the answer comes", async () => {
    renderWithServices(
      <>
        <WakingBanner />
        <WorkspacesScreen />
      </>,
      server,
    );

    const banner = await screen.findByTestId("database-waking");
    expect(banner.textContent).toContain("Waking the database…");
    expect(banner.textContent).toMatch(/Retrying in 1 s|Retrying…/);
    expect(banner.textContent).toContain("attempt 2 of 4");
    expect(banner.getAttribute("role")).toBe("status");
    expect(screen.queryByText(/waking up; retry/)).toBeNull(); // not shown as an error

    await screen.findByTestId("workspace-row", {}, { timeout: 4000 });
    await waitFor(() => expect(screen.queryByTestId("database-waking")).toBeNull());
    expect(listCalls).toBe(2);
  });

  it("shows nothing while the database is awake", async () => {
    listCalls = 1; // the next list call succeeds at once
    renderWithServices(
      <>
        <WakingBanner />
        <WorkspacesScreen />
      </>,
      server,
    );
    await screen.findByTestId("workspace-row");
    expect(screen.queryByTestId("database-waking")).toBeNull();
  });
});
