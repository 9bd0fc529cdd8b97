/** Exponential backoff with jitter for reconnecting the WebSocket. */
export interface BackoffPolicy {
  /** Delay before the first retry. */
  baseMs: number;
  /** No delay grows beyond this. */
  maxMs: number;
  factor: number;
  /** 0 = no jitter; 0.5 = a delay is drawn from [50 %, 100 %] of the exponential value. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

/** The wait before retry number `attempt` (0-based), given a random source in [0, 1). */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random = Math.random): number {
  const n = Math.max(0, Math.floor(attempt));
  const exp = Math.min(policy.maxMs, policy.baseMs * policy.factor ** n);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  const low = exp * (1 - jitter);
  return Math.round(low + (exp - low) * random());
}
