import { describe, expect, it } from "vitest";
import { renewDevToken } from "../api/config";
import { DEV_RENEW_MARGIN_S, devSession, tokenExpiry } from "./session";

/** An unsigned JWT-shaped token with the given expiry (the UI reads `exp`, it never verifies). */
function jwtWithExp(exp: number, n = 0): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${b64({ alg: "HS256" })}.${b64({ sub: "local", exp, n })}.sig`;
}

describe("the dev token", () => {
  it("is used as is while it has more than an hour left, then fetched again once for all callers", async () => {
    let clock = 1_000_000_000_000; // ms
    const expiresAt = clock / 1000 + 12 * 3600;
    const issued: string[] = [];
    const renew = () => {
      const token = jwtWithExp(clock / 1000 + 12 * 3600, issued.length + 1);
      issued.push(token);
      return Promise.resolve({ token, expiresAt: clock / 1000 + 12 * 3600 });
    };
    const first = jwtWithExp(expiresAt);
    const session = devSession(first, { expiresAt, renew, now: () => clock });

    expect(await session.getToken()).toBe(first);
    clock += (12 * 3600 - DEV_RENEW_MARGIN_S - 60) * 1000; // 61 minutes left
    expect(await session.getToken()).toBe(first);
    expect(issued).toHaveLength(0);

    clock += 120 * 1000; // 59 minutes left: renewed, one fetch shared by concurrent requests
    const tokens = await Promise.all([session.getToken(), session.getToken(), session.getToken()]);
    expect(issued).toHaveLength(1);
    expect(tokens).toEqual([issued[0], issued[0], issued[0]]);
    expect(await session.getToken()).toBe(issued[0]); // the new one has 12 h: no further fetch
    expect(issued).toHaveLength(1);
  });

  it("reads the expiry from the token when config.json gives none, and keeps it if renewal fails", async () => {
    let clock = 2_000_000_000_000;
    const first = jwtWithExp(clock / 1000 + 1800); // already inside the margin
    expect(tokenExpiry(first)).toBe(clock / 1000 + 1800);
    let calls = 0;
    const session = devSession(first, {
      renew: () => {
        calls += 1;
        return Promise.reject(new Error("server unreachable"));
      },
      now: () => clock,
    });
    expect(await session.getToken()).toBe(first);
    expect(await session.getToken()).toBe(first); // not asked again at once
    expect(calls).toBe(1);
    clock += 31_000;
    await session.getToken();
    expect(calls).toBe(2);
  });

  it("is renewed from config.json", async () => {
    const fresh = jwtWithExp(4_000_000_000);
    const fetchFn = (() =>
      Promise.resolve(
        new Response(
          JSON.stringify({ apiUrl: "/api", wsUrl: "/ws", auth: { mode: "dev", token: fresh, expiresAt: 4_000_000_000 } }),
          { status: 200, headers: { "Content-Type": "application/json" } },
        ),
      )) as typeof fetch;
    expect(await renewDevToken(fetchFn)).toEqual({ token: fresh, expiresAt: 4_000_000_000 });
  });
});
