import { useSyncExternalStore } from "react";
import { useNow } from "../lib/hooks";
import { useServices } from "./context";

/**
 * Shown while a call waits for the database to wake up (Aurora resuming from pause answers 503
 * `database_waking`; the API client retries after Retry-After), so a slow first request explains itself.
 */
export function WakingBanner() {
  const { api } = useServices();
  const waking = useSyncExternalStore(
    (cb) => api.onWaking(cb),
    () => api.waking,
  );
  const now = useNow(waking !== null);
  if (!waking) return null;
  const secs = Math.max(0, Math.ceil((waking.retryAt - now) / 1000));
  return (
    <div className="waking" role="status" aria-live="polite" data-testid="database-waking">
      <span className="spinner" aria-hidden="true" />
      <strong>Waking the database…</strong>
      <span className="muted small">
        {" "}
        It was paused to save cost and takes up to half a minute to start.{" "}
        {secs > 0 ? `Retrying in ${secs} s` : "Retrying…"} (attempt {waking.attempt + 1} of {waking.maxAttempts + 1}).
      </span>
    </div>
  );
}
