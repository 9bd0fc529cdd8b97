import type { SessionOut } from "../../api/types";
import { ConfirmButton, ErrorNote, Loading } from "../../components/common";
import { TrashIcon } from "../../components/icons";
import { formatDate } from "../../lib/format";

export function SessionList({
  sessions,
  loading,
  error,
  activeId,
  onOpen,
  onDelete,
  onNew,
  onRetry,
}: {
  sessions: SessionOut[] | undefined;
  loading: boolean;
  error: unknown;
  activeId: string | null;
  onOpen: (id: string) => void;
  onDelete: (id: string) => Promise<void>;
  onNew: () => void;
  onRetry: () => void;
}) {
  return (
    <nav className="sessions" aria-label="Conversations">
      <button type="button" className="btn primary block" onClick={onNew} data-testid="new-chat">
        + New chat
      </button>
      <h2 className="section-title">Conversations</h2>
      {loading && !sessions && <Loading label="Loading conversations…" />}
      {error !== null && <ErrorNote error={error} onRetry={onRetry} />}
      {sessions && sessions.length === 0 && <p className="muted small">No conversations yet.</p>}
      <ul className="session-list">
        {sessions?.map((s) => (
          <li key={s.id} className={s.id === activeId ? "active" : ""} data-testid="session-item" data-session-id={s.id}>
            <button
              type="button"
              className="session-open"
              onClick={() => onOpen(s.id)}
              aria-current={s.id === activeId ? "page" : undefined}
              data-testid="session-open"
            >
              <span className="session-title">{s.title || "Untitled conversation"}</span>
              <span className="session-date">{formatDate(s.updated_at)}</span>
            </button>
            <ConfirmButton
              label={`Delete conversation ${s.title || s.id}`}
              question="Delete this conversation?"
              onConfirm={() => onDelete(s.id)}
              testId="session-delete"
              className="btn icon danger-ghost"
              icon={<TrashIcon />}
            />
          </li>
        ))}
      </ul>
    </nav>
  );
}
