import type { AppConfig, AuthConfig } from "./types";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

function str(obj: Record<string, unknown>, key: string, where: string): string {
  const v = obj[key];
  if (typeof v !== "string" || v === "") throw new ConfigError(`config.json: ${where}.${key} must be a non-empty string`);
  return v;
}

function record(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`config.json: ${where} must be an object`);
  return v as Record<string, unknown>;
}

function parseAuth(v: unknown): AuthConfig {
  const auth = record(v, "auth");
  if (auth.mode === "dev") {
    const token = str(auth, "token", "auth");
    const expiresAt = auth.expiresAt;
    if (expiresAt === undefined) return { mode: "dev", token };
    if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) {
      throw new ConfigError("config.json: auth.expiresAt must be a number (seconds since the epoch)");
    }
    return { mode: "dev", token, expiresAt };
  }
  if (auth.mode === "none") return { mode: "none" };
  if (auth.mode === "cognito") {
    return {
      mode: "cognito",
      userPoolId: str(auth, "userPoolId", "auth"),
      clientId: str(auth, "clientId", "auth"),
      region: str(auth, "region", "auth"),
    };
  }
  throw new ConfigError(`config.json: auth.mode must be "dev", "cognito" or "none", not ${JSON.stringify(auth.mode)}`);
}

/** A relative or http(s) wsUrl becomes an absolute ws(s) URL against the page's location. */
export function absoluteWsUrl(wsUrl: string, location: { href: string; protocol: string }): string {
  if (/^wss?:\/\//i.test(wsUrl)) return wsUrl;
  const url = new URL(wsUrl, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** Validates the JSON of config.json. */
export function parseConfig(json: unknown): AppConfig {
  const cfg = record(json, "the document");
  return { apiUrl: str(cfg, "apiUrl", "config"), wsUrl: str(cfg, "wsUrl", "config"), auth: parseAuth(cfg.auth) };
}

export async function loadConfig(fetchFn: typeof fetch = fetch, timeoutMs = 15_000): Promise<AppConfig> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const res = await fetchFn("config.json", { cache: "no-store", signal: controller.signal });
    if (!res.ok) throw new ConfigError(`config.json could not be loaded: ${res.status} ${res.statusText}`);
    return parseConfig(await res.json());
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if (controller.signal.aborted) throw new ConfigError(`config.json did not load within ${timeoutMs / 1000} s`);
    throw new ConfigError(`config.json could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh dev token from config.json (`quarry serve` re-issues it well before the old one expires). */
export async function renewDevToken(fetchFn: typeof fetch = fetch): Promise<{ token: string; expiresAt?: number }> {
  const config = await loadConfig(fetchFn);
  if (config.auth.mode !== "dev") throw new ConfigError("config.json no longer offers a dev token");
  return { token: config.auth.token, expiresAt: config.auth.expiresAt };
}
