import { useEffect, useReducer, useRef, useState } from "react";
import type { CitationOut } from "../../api/types";
import { chatErrorText, describeError } from "../../api/errors";
import { useConnection, useOnReconnect, useServerMessages, useServices } from "../../app/context";
import { navigate } from "../../app/router";
import { ErrorNote, Loading } from "../../components/common";
import { WorkspacePicker } from "../../components/WorkspacePicker";
import { localId } from "../../lib/format";
import { useAsync } from "../../lib/hooks";
import { chatReducer, initialChatState, isBusy, pendingCancels } from "../../state/chat";
import { AssistantMessage } from "./AssistantMessage";
import { CitationPanel } from "./CitationPanel";
import { Composer } from "./Composer";
import { SessionList } from "./SessionList";

const WS_KEY = "quarry.chat.workspace";
const MODEL_KEY = "quarry.chat.model";

function stored(key: string): string | null {
  try {
    return localStorage.getItem(key) || null;
  } catch {
    return null;
  }
}

function store(key: string, value: string | null): void {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // private mode: not remembered, no harm
  }
}

export function ChatScreen({ sessionId: routeSessionId }: { sessionId: string | null }) {
  const { api, socket, models } = useServices();
  const conn = useConnection();
  const [state, dispatch] = useReducer(chatReducer, initialChatState);
  const [workspaceId, setWorkspaceId] = useState<string | null>(() => stored(WS_KEY));
  const [model, setModel] = useState<string | null>(() => stored(MODEL_KEY));
  const [citation, setCitation] = useState<CitationOut | null>(null);
  // A past conversation being opened (error null while it loads), or the error that stopped it.
  const [sessionLoad, setSessionLoad] = useState<{ id: string; error: unknown } | null>(() =>
    routeSessionId === null ? null : { id: routeSessionId, error: null },
  );
  const workspaces = useAsync(() => api.listWorkspaces(), [api]);
  const sessions = useAsync(() => api.listSessions(), [api]);
  const busy = isBusy(state);

  useServerMessages((msg) => dispatch({ type: "server", msg }));

  const openSession = (id: string) => {
    setSessionLoad({ id, error: null });
    setCitation(null);
  };
  const loadingId = sessionLoad !== null && sessionLoad.error === null ? sessionLoad.id : null;
  useEffect(() => {
    if (loadingId === null) return;
    let live = true;
    api.getSession(loadingId).then(
      (detail) => {
        if (!live) return;
        dispatch({ type: "loadSession", detail });
        if (detail.session.workspace_id !== undefined) setWorkspaceId(detail.session.workspace_id);
        setSessionLoad(null);
      },
      (e: unknown) => {
        if (live) setSessionLoad({ id: loadingId, error: e });
      },
    );
    return () => {
      live = false;
    };
  }, [api, loadingId]);

  // The route decides which conversation is shown; a new conversation's id is written back to it.
  // State follows a new route while rendering (React's pattern for state that follows a prop): a route
  // without a session starts a new conversation, a route to another session opens it.
  const [shownRoute, setShownRoute] = useState(routeSessionId);
  if (routeSessionId !== shownRoute) {
    setShownRoute(routeSessionId);
    if (routeSessionId === null && state.sessionId !== null) {
      dispatch({ type: "reset" });
      setCitation(null);
      setSessionLoad(null);
    } else if (routeSessionId !== null && routeSessionId !== state.sessionId) {
      openSession(routeSessionId);
    }
  }

  useEffect(() => {
    if (state.sessionId) navigate({ screen: "chat", sessionId: state.sessionId }, { replace: true });
  }, [state.sessionId]);

  // Refresh the conversation list when an answer completes (a new session, or a new title).
  const doneCount = state.turns.filter((t) => t.kind === "assistant" && t.final).length;
  const reloadSessions = sessions.reload;
  useEffect(() => {
    if (doneCount > 0) reloadSessions();
  }, [doneCount, reloadSessions]);

  // Stop: tell the server once the answer's ids are known.
  useEffect(() => {
    for (const t of pendingCancels(state)) {
      socket.send({ action: "cancel", session_id: t.sessionId as string, message_id: t.messageId });
      dispatch({ type: "cancelSent", turnId: t.id });
    }
  }, [state, socket]);

  useEffect(() => {
    if (conn.status === "offline") dispatch({ type: "disconnected" });
  }, [conn.status]);

  useOnReconnect(() => {
    const last = state.turns[state.turns.length - 1];
    if (state.sessionId && last?.kind === "assistant" && last.status === "interrupted") openSession(state.sessionId);
  });

  // Keep the newest text in view unless the reader scrolled up.
  const transcriptRef = useRef<HTMLDivElement>(null);
  const lastText = state.turns.length ? state.turns[state.turns.length - 1] : null;
  useEffect(() => {
    const el = transcriptRef.current;
    if (!el) return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 160) el.scrollTop = el.scrollHeight;
  }, [lastText]);

  const send = (text: string) => {
    const id = localId("turn");
    dispatch({ type: "send", id, text });
    const ok = socket.send({
      action: "chat",
      text,
      session_id: state.sessionId,
      workspace_id: workspaceId,
      model,
    });
    if (!ok) dispatch({ type: "sendFailed", message: "Not sent: the connection is offline. Try again when it is back." });
  };

  const deleteSession = async (id: string) => {
    await api.deleteSession(id);
    sessions.setData((old) => old?.filter((s) => s.id !== id));
    if (id === state.sessionId) navigate({ screen: "chat", sessionId: null });
  };

  const pickWorkspace = (id: string | null) => {
    setWorkspaceId(id);
    store(WS_KEY, id);
  };
  const pickModel = (id: string | null) => {
    setModel(id);
    store(MODEL_KEY, id);
  };

  const blockedReason =
    conn.status === "open" ? null : conn.status === "offline" ? "Offline: reconnecting…" : "Connecting…";
  const knownWorkspace = workspaces.data?.some((w) => w.id === workspaceId) ?? true;
  const bannerText = state.banner ? chatErrorText(state.banner) : null;

  return (
    <div className={`chat-layout${citation ? " with-panel" : ""}`}>
      <SessionList
        sessions={sessions.data}
        loading={sessions.loading}
        error={sessions.error}
        activeId={state.sessionId}
        onOpen={(id) => navigate({ screen: "chat", sessionId: id })}
        onDelete={deleteSession}
        onNew={() => navigate({ screen: "chat", sessionId: null })}
        onRetry={sessions.reload}
      />
      <section className="chat-main" aria-label="Chat">
        <header className="chat-head">
          <WorkspacePicker
            workspaces={workspaces.data ?? []}
            value={knownWorkspace ? workspaceId : null}
            onChange={pickWorkspace}
            allowNone
            disabled={busy}
          />
          <div className="field inline">
            <label htmlFor="model-picker">Model</label>
            <select
              id="model-picker"
              value={model ?? ""}
              onChange={(e) => pickModel(e.target.value || null)}
              data-testid="model-picker"
              disabled={busy}
            >
              <option value="">Default</option>
              {models?.llms.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name} ({m.provider})
                </option>
              ))}
            </select>
          </div>
          {workspaces.error !== null && <span className="error-text small">Workspaces: {describeError(workspaces.error)}</span>}
        </header>
        <div className="transcript" ref={transcriptRef} data-testid="transcript">
          {sessionLoad && !sessionLoad.error && <Loading label="Loading the conversation…" />}
          {sessionLoad?.error != null && (
            <ErrorNote
              title="Could not open the conversation"
              error={sessionLoad.error}
              onRetry={() => openSession(sessionLoad.id)}
            />
          )}
          {!sessionLoad && state.turns.length === 0 && (
            <div className="welcome">
              <h1>Ask your documents</h1>
              <p className="muted">
                {workspaceId
                  ? "Answers cite the passages they use: click a [n] to read the source."
                  : "No workspace chosen: the model answers from its own knowledge. Pick a workspace to search your documents."}
              </p>
            </div>
          )}
          {state.turns.map((t) =>
            t.kind === "user" ? (
              <article key={t.id} className="turn user" data-testid="user-message">
                <div className="bubble">{t.text}</div>
              </article>
            ) : (
              <AssistantMessage
                key={t.id}
                turn={t}
                onCite={setCitation}
                onRated={(messageId, rating) => dispatch({ type: "feedback", messageId, rating })}
                onReload={() => {
                  if (state.sessionId) openSession(state.sessionId);
                }}
              />
            ),
          )}
        </div>
        {state.banner && (
          <div className="error-note" role="alert" data-testid="chat-error">
            <span>
              {bannerText?.title && <strong>{bannerText.title} </strong>}
              {bannerText?.text}
            </span>
            <button type="button" className="btn small" onClick={() => dispatch({ type: "dismissBanner" })}>
              Dismiss
            </button>
          </div>
        )}
        <Composer
          busy={busy}
          canSend={conn.status === "open" && !sessionLoad}
          blockedReason={blockedReason}
          onSend={send}
          onStop={() => dispatch({ type: "stop" })}
        />
      </section>
      {citation && <CitationPanel citation={citation} onClose={() => setCitation(null)} />}
    </div>
  );
}
