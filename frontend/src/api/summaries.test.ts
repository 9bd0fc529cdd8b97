import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { document } from "../test/fixtures";
import { json, startServer, type TestServer } from "../test/server";
import { summaryJob } from "../test/summaryFixtures";
import { ApiClient } from "./client";
import { ApiError } from "./errors";

let server: TestServer;
let api: ApiClient;
beforeEach(async () => {
  server = await startServer((req) => {
    const url = req.url;
    if (url === "/api/workspaces/w1/summaries" && req.method === "GET") {
      return json(200, { items: [summaryJob({ id: "j2" }), summaryJob()], cursor: null });
    }
    if (url === "/api/workspaces/w1/summaries" && req.method === "POST") {
      const body = JSON.parse(req.body.toString()) as { filter?: Record<string, unknown> };
      if (body.filter?.product === "Z") {
        return json(422, { error: { code: "invalid_input", message: "no documents match the filter (product = Z)" } });
      }
      return json(202, summaryJob({ id: "j3" }));
    }
    if (url === "/api/workspaces/w1/summaries/j1" && req.method === "DELETE") return json(202, summaryJob({ status: "cancelled" }));
    if (url === "/api/workspaces/w1/summaries/j2" && req.method === "DELETE") return { status: 204 };
    if (url === "/api/workspaces/w1/summaries/j2/runs" && req.method === "POST") return json(202, summaryJob({ id: "j2", runs: 2 }));
    if (url === "/api/workspaces/w1/documents/d1" && req.method === "PATCH") {
      return json(200, document({ metadata: { rating: 5 } }));
    }
    return json(404, { error: { code: "not_found", message: "no route" } });
  });
  api = new ApiClient({ baseUrl: `${server.url}/api`, getToken: () => Promise.resolve("tok") });
});
afterEach(() => server.close());

describe("ApiClient: summaries and metadata", () => {
  it("lists, starts, cancels, deletes and re-runs summary jobs", async () => {
    expect((await api.listSummaries("w1")).map((j) => j.id)).toEqual(["j2", "j1"]);
    const started = await api.startSummary("w1", { kind: "themes", filter: { rating: { gte: 4 } }, max_points: 3 });
    expect(started.id).toBe("j3");
    expect(JSON.parse(server.requests.at(-1)?.body.toString() ?? "")).toEqual({
      kind: "themes",
      filter: { rating: { gte: 4 } },
      max_points: 3,
    });
    expect((await api.deleteSummary("w1", "j1"))?.status).toBe("cancelled");
    expect(await api.deleteSummary("w1", "j2")).toBeUndefined();
    expect((await api.rerunSummary("w1", "j2")).runs).toBe(2);
  });

  it("gives the server's no-documents message as an ApiError", async () => {
    const err = await api.startSummary("w1", { kind: "pros_cons", filter: { product: "Z" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(422);
    expect((err as ApiError).message).toBe("no documents match the filter (product = Z)");
  });

  it("patches a document's metadata", async () => {
    const doc = await api.patchDocument("w1", "d1", { metadata: { rating: 5, old: null } });
    expect(doc.metadata).toEqual({ rating: 5 });
    const req = server.requests.at(-1);
    expect(req?.method).toBe("PATCH");
    expect(JSON.parse(req?.body.toString() ?? "")).toEqual({ metadata: { rating: 5, old: null } });
  });
});
