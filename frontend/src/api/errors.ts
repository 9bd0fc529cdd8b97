/** A failed API call, with the server's error code and message when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds the server asked to wait before retrying (`Retry-After` on 429 / 503), when it said. */
  readonly retryAfterSeconds: number | null;

  constructor(status: number, code: string, message: string, retryAfterSeconds: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The server's code for "the database is resuming from pause; the same request will work shortly". */
export const DATABASE_WAKING = "database_waking";

/** The server's code for "you have used your daily token allowance; it renews at 00:00 UTC" (429). */
export const BUDGET_EXHAUSTED = "budget_exhausted";

/** What the chat shows for an error: a plain title for the errors users meet in normal use, and the text. */
export interface ChatErrorText {
  title: string | null;
  text: string;
}

/**
 * A chat error (an `error` event or a failed call) as the user should read it. The daily allowance is not a
 * fault: it gets a plain title and the server's message (which says when it renews), without its code.
 * Anything else keeps its code after the message, which helps when reporting a problem.
 */
export function chatErrorText(error: { code: string; message: string }): ChatErrorText {
  if (error.code === BUDGET_EXHAUSTED) return { title: "Daily limit reached.", text: error.message };
  return { title: null, text: error.code ? `${error.message} (${error.code})` : error.message };
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (value == null || value.trim() === "") return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = /GMT$/i.test(text) ? Date.parse(text) : Number.NaN; // an HTTP date: "Wed, 22 Nov 2026 05:00:07 GMT"
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

const STATUS_CODES: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "too_large",
  422: "validation_error",
  429: "throttled",
  500: "internal_error",
  502: "bad_gateway",
  503: "unavailable",
  504: "gateway_timeout",
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `{"error": {"code", "message"}}` (our API), `{"message": ...}` (API Gateway) or `{"detail": ...}`. */
function fromJson(body: unknown): { code?: string; message?: string } {
  if (!isRecord(body)) return {};
  const err = body.error;
  if (isRecord(err)) {
    return {
      code: typeof err.code === "string" ? err.code : undefined,
      message: typeof err.message === "string" ? err.message : undefined,
    };
  }
  if (typeof body.message === "string") return { message: body.message };
  if (typeof body.detail === "string") return { message: body.detail };
  return {};
}

/** S3 answers a failed presigned POST with `<Error><Code>..</Code><Message>..</Message></Error>`. */
function fromXml(text: string): { code?: string; message?: string } {
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  return { code, message };
}

function parseBody(text: string): { code?: string; message?: string } {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      return fromJson(JSON.parse(trimmed));
    } catch {
      return {};
    }
  }
  if (trimmed.startsWith("<")) return fromXml(trimmed);
  return {};
}

/** Turns any non-2xx answer into an ApiError with the most specific code and message available. */
export function errorFromResponse(
  status: number,
  statusText: string,
  bodyText: string,
  retryAfter: string | null = null,
): ApiError {
  const parsed = parseBody(bodyText);
  const code = parsed.code || STATUS_CODES[status] || `http_${status}`;
  const fallback = statusText ? `${status} ${statusText}` : `The server answered ${status}`;
  return new ApiError(status, code, parsed.message || fallback, parseRetryAfter(retryAfter));
}

/** Status 0: the request never got an answer (offline, DNS, CORS, server down). */
export function networkError(cause?: unknown): ApiError {
  const detail = cause instanceof Error && cause.message ? ` (${cause.message})` : "";
  return new ApiError(0, "network_error", `Could not reach the server${detail}. Check your connection.`);
}

export function timeoutError(ms: number): ApiError {
  return new ApiError(0, "timeout", `The server did not answer within ${Math.round(ms / 1000)} s. Try again.`);
}

/** A message fit for the UI from anything thrown. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
