/** Who is signed in, and how to get the bearer token for the API and the WebSocket. */
export interface AuthSession {
  user: string;
  getToken: () => Promise<string>;
  signOut: (() => void) | null;
}

/** Renew the dev token this long (seconds) before it expires; `quarry serve` issues it for 12 h. */
export const DEV_RENEW_MARGIN_S = 3600;
/** Ask for a new token at most this often (ms), so an unreachable server is not asked on every request. */
const DEV_RENEW_RETRY_MS = 30_000;

export interface DevRenewal {
  /** When the first token expires (seconds since the epoch); read from the token itself when absent. */
  expiresAt?: number;
  /** Fetches config.json again for a fresh token. */
  renew: () => Promise<{ token: string; expiresAt?: number }>;
  /** Milliseconds since the epoch (a test moves it by hand). */
  now?: () => number;
}

/** The `exp` claim of a JWT, or undefined if it is not one. */
export function tokenExpiry(token: string): number | undefined {
  try {
    const payload = token.split(".")[1];
    if (!payload) return undefined;
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Local `quarry serve`: the dev identity's token from config.json, no login screen. With `renewal`, the
 * token is fetched again once it is within an hour of expiring (concurrent callers share one fetch).
 */
export function devSession(token: string, renewal?: DevRenewal): AuthSession {
  const now = renewal?.now ?? Date.now;
  let current = token;
  let expiresAt = renewal?.expiresAt ?? tokenExpiry(token);
  let pending: Promise<string> | null = null;
  let lastTry = -Infinity;

  async function getToken(): Promise<string> {
    if (!renewal || expiresAt === undefined || now() / 1000 < expiresAt - DEV_RENEW_MARGIN_S) return current;
    if (!pending && now() - lastTry < DEV_RENEW_RETRY_MS) return current;
    if (!pending) {
      lastTry = now();
      pending = renewal
        .renew()
        .then((next) => {
          current = next.token;
          expiresAt = next.expiresAt ?? tokenExpiry(next.token);
          return current;
        })
        .finally(() => {
          pending = null;
        });
    }
    try {
      return await pending;
    } catch {
      return current; // the server is unreachable: the request itself will say so
    }
  }

  return { user: "dev", getToken, signOut: null };
}

/** Authentication switched off on the server: no token is sent. */
export function anonymousSession(): AuthSession {
  return { user: "anonymous", getToken: () => Promise.resolve(""), signOut: null };
}
