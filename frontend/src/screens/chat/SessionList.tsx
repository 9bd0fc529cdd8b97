import { type KeyboardEvent, useEffect, useRef, useState } from "react";
import type { SessionOut } from "../../api/types";
import { ConfirmButton, ErrorNote, Loading } from "../../components/common";
import { TrashIcon } from "../../components/icons";
import { formatDate } from "../../lib/format";
import { SessionTitleForm } from "./SessionTitleForm";
import "./session-list.css";

/**
 * The conversations: open, rename, delete (after a confirm), start a new one. Each shows the workspace it
 * searches. On narrow screens it is a drawer (`drawerOpen`): its close button takes the focus, Escape closes it.
 */
export function SessionList({
  sessions,
  loading,
  error,
  activeId,
  workspaceNames,
  drawerOpen,
  onOpen,
  onRename,
  onDelete,
  onNew,
  onRetry,
  onCloseDrawer,
}: {
  sessions: SessionOut[] | undefined;
  loading: boolean;
  error: unknown;
  activeId: string | null;
  workspaceNames: ReadonlyMap<string, string>;
  drawerOpen: boolean;
  onOpen: (id: string) => void;
  onRename: (id: string, title: string) => Promise<void>;
  onDelete: (id: string) => Promise<void>;
  onNew: () => void;
  onRetry: () => void;
  onCloseDrawer: () => void;
}) {
  const [renaming, setRenaming] = useState<string | null>(null);
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (drawerOpen) closeRef.current?.focus();
  }, [drawerOpen]);
  const onKeyDown = (e: KeyboardEvent<HTMLElement>) => {
    if (drawerOpen && e.key === "Escape") {
      e.preventDefault();
      onCloseDrawer();
    }
  };
  const workspaceLabel = (s: SessionOut) =>
    s.workspace_id === null ? "No documents" : (workspaceNames.get(s.workspace_id) ?? "Deleted workspace");
  return (
    <nav
      className={`sessions${drawerOpen ? " drawer-open" : ""}`}
      aria-label="Conversations"
      id="conversation-drawer"
      onKeyDown={onKeyDown}
      data-testid="session-drawer"
    >
      <div className="drawer-head">
        <button type="button" className="btn primary block" onClick={onNew} data-testid="new-chat">
          + New chat
        </button>
        <button
          type="button"
          ref={closeRef}
          className="btn drawer-close"
          onClick={onCloseDrawer}
          aria-label="Close the conversation list"
          data-testid="drawer-close"
        >
          Close
        </button>
      </div>
      <h2 className="section-title">Conversations</h2>
      {loading && !sessions && <Loading label="Loading conversations…" />}
      {error !== null && <ErrorNote error={error} onRetry={onRetry} />}
      {sessions && sessions.length === 0 && <p className="muted small">No conversations yet.</p>}
      <ul className="session-list">
        {sessions?.map((s) => {
          const title = s.title || "Untitled conversation";
          return (
            <li key={s.id} className={s.id === activeId ? "active" : ""} data-testid="session-item" data-session-id={s.id}>
              {renaming === s.id ? (
                <SessionTitleForm title={title} onSave={(t) => onRename(s.id, t)} onDone={() => setRenaming(null)} />
              ) : (
                <>
                  <button
                    type="button"
                    className="session-open"
                    onClick={() => onOpen(s.id)}
                    aria-current={s.id === activeId ? "page" : undefined}
                    data-testid="session-open"
                  >
                    <span className="session-title" data-testid="session-title">
                      {title}
                    </span>
                    <span className="session-date">
                      <span data-testid="session-workspace">{workspaceLabel(s)}</span> · {formatDate(s.updated_at)}
                    </span>
                  </button>
                  <button
                    type="button"
                    className="btn icon session-rename-button"
                    onClick={() => setRenaming(s.id)}
                    aria-label={`Rename conversation ${title}`}
                    title="Rename"
                    data-testid="session-rename"
                  >
                    <span aria-hidden="true">✎</span>
                  </button>
                  <ConfirmButton
                    label={`Delete conversation ${title}`}
                    question="Delete this conversation?"
                    onConfirm={() => onDelete(s.id)}
                    testId="session-delete"
                    className="btn icon danger-ghost"
                    icon={<TrashIcon />}
                  />
                </>
              )}
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
