// @vitest-environment node
import { afterEach, describe, expect, it } from "vitest";
import { json, startServer, type TestServer } from "../test/server";
import { workspace } from "../test/fixtures";
import { ApiClient, type WakingState } from "./client";
import { ApiError, errorFromResponse, parseRetryAfter } from "./errors";

let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function clientFor(handle: Parameters<typeof startServer>[0], opts: Partial<ConstructorParameters<typeof ApiClient>[0]> = {}) {
  server = await startServer(handle);
  return new ApiClient({ baseUrl: `${server.url}/api/`, getToken: () => Promise.resolve("tok-123"), ...opts });
}

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected the call to fail");
}

describe("ApiClient against a real HTTP server", () => {
  it("sends the bearer token and JSON body, and parses the answer", async () => {
    const api = await clientFor(() => json(201, workspace({ id: "w9", name: "New" })));
    const ws = await api.createWorkspace({ name: "New", chunk_size: 128, chunk_overlap: 16 });
    expect(ws.id).toBe("w9");
    const req = server?.requests[0];
    expect(req?.method).toBe("POST");
    expect(req?.url).toBe("/api/workspaces");
    expect(req?.headers.authorization).toBe("Bearer tok-123");
    expect(req?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req?.body.toString() ?? "")).toEqual({ name: "New", chunk_size: 128, chunk_overlap: 16 });
  });

  it("turns the API's error envelope into an ApiError with code and message", async () => {
    const api = await clientFor(() =>
      json(422, { error: { code: "validation_error", message: "chunk_overlap must be smaller than chunk_size" } }),
    );
    const e = await failure(api.createWorkspace({ name: "x", chunk_size: 16, chunk_overlap: 16 }));
    expect(e.status).toBe(422);
    expect(e.code).toBe("validation_error");
    expect(e.message).toBe("chunk_overlap must be smaller than chunk_size");
  });

  it("copes with errors that are not our envelope (gateway JSON, HTML, empty)", async () => {
    const replies = [
      json(403, { message: "Forbidden" }),
      { status: 502, headers: { "Content-Type": "text/html" }, body: "<html>Bad Gateway</html>" },
      { status: 500, body: "" },
    ];
    let i = 0;
    const api = await clientFor(() => replies[i++] ?? { status: 500 });
    const a = await failure(api.models());
    expect([a.status, a.code, a.message]).toEqual([403, "forbidden", "Forbidden"]);
    const b = await failure(api.models());
    expect([b.status, b.code]).toEqual([502, "bad_gateway"]);
    expect(b.message).toMatch(/502/);
    const c = await failure(api.models());
    expect([c.status, c.code]).toEqual([500, "internal_error"]);
  });

  it("calls onUnauthorized on 401", async () => {
    let signedOut = 0;
    const api = await clientFor(() => json(401, { error: { code: "unauthorized", message: "Token expired" } }), {
      onUnauthorized: () => signedOut++,
    });
    const e = await failure(api.listSessions());
    expect(e.code).toBe("unauthorized");
    expect(signedOut).toBe(1);
  });

  it("sends no Authorization header when there is no token (auth mode none)", async () => {
    const api = await clientFor(() => json(200, { llms: [], embeddings: [], rerankers: [] }), { getToken: () => Promise.resolve("") });
    await api.models();
    expect(server?.requests[0]?.headers.authorization).toBeUndefined();
  });

  it("204 gives undefined; paths are encoded", async () => {
    const api = await clientFor(() => ({ status: 204 }));
    await expect(api.deleteDocument("w 1", "d/2")).resolves.toBeUndefined();
    expect(server?.requests[0]?.url).toBe("/api/workspaces/w%201/documents/d%2F2");
    expect(server?.requests[0]?.method).toBe("DELETE");
  });

  it("a non-JSON success is a bad_response error", async () => {
    const api = await clientFor(() => ({ status: 200, body: "<html>oops</html>" }));
    const e = await failure(api.models());
    expect(e.code).toBe("bad_response");
  });

  it("times out with a clear message", async () => {
    const api = await clientFor(() => ({ ...json(200, {}), delayMs: 2000 }), { timeoutMs: 100 });
    const e = await failure(api.models());
    expect(e.code).toBe("timeout");
    expect(e.message).toMatch(/did not answer within/);
  });

  it("an unreachable server is a network_error", async () => {
    server = await startServer(() => json(200, {}));
    const url = server.url;
    await server.close();
    server = null;
    const api = new ApiClient({ baseUrl: url, getToken: () => Promise.resolve("t") });
    const e = await failure(api.models());
    expect(e.status).toBe(0);
    expect(e.code).toBe("network_error");
  });

  it("follows list cursors to the end, and stops on a repeated cursor", async () => {
    const api = await clientFor((req) => {
      if (req.url === "/api/workspaces") return json(200, { items: [workspace({ id: "a" })], cursor: "p2" });
      if (req.url === "/api/workspaces?cursor=p2") return json(200, { items: [workspace({ id: "b" })], cursor: "p2" });
      return json(404, {});
    });
    const all = await api.listWorkspaces();
    expect(all.map((w) => w.id)).toEqual(["a", "b"]);
    expect(server?.requests).toHaveLength(2);
  });
});

const waking = (retryAfter: string) => ({
  ...json(503, { error: { code: "database_waking", message: `the database is waking up; retry in ${retryAfter} s` } }),
  headers: { "Content-Type": "application/json", "Retry-After": retryAfter },
});

describe("a database that is waking up (503 database_waking)", () => {
  it("is retried after Retry-After, and the waiting is reported until the call succeeds", async () => {
    const replies = [waking("1"), waking("1"), json(200, { llms: [], embeddings: [], rerankers: [] })];
    let i = 0;
    const api = await clientFor(() => replies[i++] ?? json(500, {}));
    const states: (WakingState | null)[] = [];
    api.onWaking((s) => states.push(s));
    const started = Date.now();

    await expect(api.models()).resolves.toEqual({ llms: [], embeddings: [], rerankers: [] });

    expect(server?.requests).toHaveLength(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900); // waited Retry-After (1 s) before each retry
    expect(states.map((s) => s && { attempt: s.attempt, maxAttempts: s.maxAttempts })).toEqual([
      { attempt: 1, maxAttempts: 3 },
      { attempt: 2, maxAttempts: 3 },
      null,
    ]);
    expect(api.waking).toBeNull();
  });

  it("gives up after the bounded retries with the server's error and its Retry-After", async () => {
    const api = await clientFor(() => waking("1"), { wakeRetries: 1 });
    const e = await failure(api.models());
    expect([e.status, e.code, e.retryAfterSeconds]).toEqual([503, "database_waking", 1]);
    expect(e.message).toBe("the database is waking up; retry in 1 s");
    expect(server?.requests).toHaveLength(2);
    expect(api.waking).toBeNull();
  });

  it("other 503s are not retried", async () => {
    const api = await clientFor(() => ({
      ...json(503, { error: { code: "model_unavailable", message: "not ready" } }),
      headers: { "Content-Type": "application/json", "Retry-After": "1" },
    }));
    const e = await failure(api.models());
    expect(e.code).toBe("model_unavailable");
    expect(server?.requests).toHaveLength(1);
  });

  it("a cancelled call stops waiting at once", async () => {
    const api = await clientFor(() => waking("20"));
    const controller = new AbortController();
    const pending = failure(api.search("w1", { query: "q" }, controller.signal));
    await new Promise<void>((resolve) => {
      const off = api.onWaking((s) => {
        if (s) {
          off();
          resolve();
        }
      });
    });
    controller.abort();
    const e = await pending;
    expect(e.code).toBe("aborted");
    expect(server?.requests).toHaveLength(1);
    expect(api.waking).toBeNull();
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates, and nothing else", () => {
    expect(parseRetryAfter("10")).toBe(10);
    expect(parseRetryAfter(" 0 ")).toBe(0);
    const now = Date.parse("Wed, 22 Nov 2026 05:00:00 GMT");
    expect(parseRetryAfter("Wed, 22 Nov 2026 05:00:07 GMT", now)).toBe(7);
    expect(parseRetryAfter("Wed, 22 Nov 2026 04:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon")).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("-3")).toBeNull();
  });
});

describe("errorFromResponse", () => {
  it("reads S3's XML errors", () => {
    const e = errorFromResponse(
      400,
      "Bad Request",
      "<?xml version='1.0'?><Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size</Message></Error>",
    );
    expect(e.code).toBe("EntityTooLarge");
    expect(e.message).toMatch(/exceeds/);
  });

  it("falls back to the status for unknown codes", () => {
    const e = errorFromResponse(418, "I'm a teapot", "{broken");
    expect(e.code).toBe("http_418");
    expect(e.message).toBe("418 I'm a teapot");
  });

  it("reads a FastAPI-style detail", () => {
    expect(errorFromResponse(400, "", JSON.stringify({ detail: "nope" })).message).toBe("nope");
  });
});
