import { useServices, useConnection } from "./context";
import { useNow } from "../lib/hooks";

const LABELS = {
  idle: "Not connected",
  connecting: "Connecting…",
  open: "Live",
  offline: "Offline",
  stopped: "Disconnected",
} as const;

/** The live connection's state, always visible; offline says when it retries and offers a retry now. */
export function ConnectionBadge() {
  const { socket } = useServices();
  const conn = useConnection();
  const now = useNow(conn.status === "offline");
  const secs = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - now) / 1000)) : null;
  return (
    <div
      className={`conn conn-${conn.status}`}
      role="status"
      aria-live="polite"
      data-testid="connection-status"
      data-status={conn.status}
    >
      <span className="dot" aria-hidden="true" />
      <span>{LABELS[conn.status]}</span>
      {conn.status === "offline" && (
        <>
          <span className="conn-detail">
            {secs !== null && secs > 0 ? `retrying in ${secs} s` : "retrying…"}
            {conn.attempt > 3 && conn.lastError ? ` (${conn.lastError})` : ""}
          </span>
          <button type="button" className="btn tiny" onClick={() => socket.reconnectNow()}>
            Retry now
          </button>
        </>
      )}
    </div>
  );
}
