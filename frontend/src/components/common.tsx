import { type ReactNode, useEffect, useRef, useState } from "react";
import { describeError } from "../api/errors";
import { useAfter } from "../lib/hooks";

/** A wait that says so, and says more when it takes long. */
export function Loading({ label, slowAfterMs = 8000 }: { label: string; slowAfterMs?: number }) {
  const slow = useAfter(true, slowAfterMs);
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
      {slow && <span className="muted"> This is taking longer than usual; the server may be busy.</span>}
    </div>
  );
}

export function ErrorNote({ error, onRetry, title }: { error: unknown; onRetry?: () => void; title?: string }) {
  return (
    <div className="error-note" role="alert">
      <div>
        {title && <strong>{title}: </strong>}
        {describeError(error)}
      </div>
      {onRetry && (
        <button type="button" className="btn small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="muted">{children}</div>}
    </div>
  );
}

/** A delete button that asks first, inline (keyboard-friendly, no modal). */
export function ConfirmButton({
  label,
  question,
  confirmLabel = "Delete",
  onConfirm,
  testId,
  className = "btn danger-ghost small",
  icon,
}: {
  label: string;
  question: string;
  confirmLabel?: string;
  onConfirm: () => Promise<void> | void;
  testId?: string;
  className?: string;
  /** Shown instead of the label text on the first button (the accessible name stays `label`). */
  icon?: ReactNode;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) cancelRef.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" className={className} onClick={() => setAsking(true)} data-testid={testId} aria-label={label} title={label}>
        {icon ?? confirmLabel}
      </button>
    );
  }
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      setAsking(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="confirm" role="group" aria-label={question}>
      <span className="confirm-q">{question}</span>
      <button
        type="button"
        className="btn danger small"
        onClick={() => void confirm()}
        disabled={busy}
        data-testid={testId ? `${testId}-confirm` : undefined}
      >
        {busy ? "Deleting…" : `Yes, ${confirmLabel.toLowerCase()}`}
      </button>
      <button
        type="button"
        className="btn small"
        ref={cancelRef}
        onClick={() => setAsking(false)}
        disabled={busy}
        onKeyDown={(e) => e.key === "Escape" && setAsking(false)}
      >
        Cancel
      </button>
      {error !== null && (
        <span className="error-text" role="alert">
          {describeError(error)}
        </span>
      )}
    </span>
  );
}

export function StatusBadge({ status, testId }: { status: string; testId?: string }) {
  return (
    <span className={`badge badge-${status}`} data-testid={testId} data-status={status}>
      {status}
    </span>
  );
}
