import { describe, expect, it } from "vitest";
import { ConfigError, absoluteWsUrl, loadConfig, parseConfig } from "./config";

describe("config.json", () => {
  it("accepts the dev and cognito shapes", () => {
    expect(parseConfig({ apiUrl: "/api", wsUrl: "ws://h:8000/ws", auth: { mode: "dev", token: "t" } })).toEqual({
      apiUrl: "/api",
      wsUrl: "ws://h:8000/ws",
      auth: { mode: "dev", token: "t" },
    });
    const c = parseConfig({
      apiUrl: "https://api",
      wsUrl: "wss://ws",
      auth: { mode: "cognito", userPoolId: "eu-west-1_x", clientId: "c", region: "eu-west-1" },
    });
    expect(c.auth.mode).toBe("cognito");
    expect(parseConfig({ apiUrl: "/api", wsUrl: "/ws", auth: { mode: "none" } }).auth).toEqual({ mode: "none" });
    expect(parseConfig({ apiUrl: "/a", wsUrl: "/ws", auth: { mode: "dev", token: "t", expiresAt: 1700000000 } }).auth).toEqual({
      mode: "dev",
      token: "t",
      expiresAt: 1700000000,
    });
  });

  it("explains what is wrong", () => {
    expect(() => parseConfig(null)).toThrow(ConfigError);
    expect(() => parseConfig({ apiUrl: "/api", wsUrl: "x", auth: { mode: "saml" } })).toThrow(/auth.mode/);
    expect(() => parseConfig({ apiUrl: "", wsUrl: "x", auth: { mode: "dev", token: "t" } })).toThrow(/apiUrl/);
    expect(() => parseConfig({ apiUrl: "/a", wsUrl: "x", auth: { mode: "dev" } })).toThrow(/auth.token/);
    expect(() => parseConfig({ apiUrl: "/a", wsUrl: "x", auth: { mode: "dev", token: "t", expiresAt: "soon" } })).toThrow(
      /auth.expiresAt/,
    );
  });

  it("makes a relative wsUrl absolute for the page's scheme", () => {
    expect(absoluteWsUrl("/ws", { href: "https://q.example/app/", protocol: "https:" })).toBe("wss://q.example/ws");
    expect(absoluteWsUrl("/ws", { href: "http://localhost:8000/", protocol: "http:" })).toBe("ws://localhost:8000/ws");
    expect(absoluteWsUrl("wss://x/prod", { href: "http://a/", protocol: "http:" })).toBe("wss://x/prod");
  });

  it("loadConfig reports an HTTP failure", async () => {
    const fetchFn = (() => Promise.resolve(new Response("nope", { status: 404, statusText: "Not Found" }))) as typeof fetch;
    await expect(loadConfig(fetchFn)).rejects.toThrow(/404/);
  });
});
