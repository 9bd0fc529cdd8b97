import { useEffect, useId, useMemo, useReducer, useRef, useState } from "react";
import type { ChatAction, CitationOut, ModelInfo } from "../../api/types";
import { chatErrorText, describeError } from "../../api/errors";
import { useConnection, useOnReconnect, useServerMessages, useServices } from "../../app/context";
import { navigate } from "../../app/router";
import { ErrorNote, Loading } from "../../components/common";
import { FilterBuilder } from "../../components/FilterBuilder";
import { FilterSummary } from "../../components/FilterSummary";
import { WorkspacePicker } from "../../components/WorkspacePicker";
import { localId } from "../../lib/format";
import { useAsync } from "../../lib/hooks";
import { useFilterState } from "../../lib/useFilterState";
import { useMetadataKeys } from "../../lib/useMetadataKeys";
import { chatReducer, initialChatState, isBusy, lastQuestion, pendingCancels } from "../../state/chat";
import { readChoice, rememberChoice, resolveWorkspace, type WorkspaceChoice } from "../../state/workspaceChoice";
import { AnswerActions } from "./AnswerActions";
import { AnswerAnnouncer } from "./AnswerAnnouncer";
import { AssistantMessage } from "./AssistantMessage";
import { CitationPanel } from "./CitationPanel";
import { Composer, type Draft } from "./Composer";
import { NoDocumentsNote } from "./NoDocumentsNote";
import { SessionList } from "./SessionList";
import "./chat-screen.css";

const MODEL_KEY = "quarry.chat.model";

/** The widest screen on which the conversation list is a drawer (session-list.css says the same). */
const NARROW_MAX_PX = 900;

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

/** "Qwen2.5 0.5B (llama.cpp)": the provider once, also for names that already end with it. */
function modelLabel(m: ModelInfo): string {
  return m.name.toLowerCase().includes(m.provider.toLowerCase()) ? m.name : `${m.name} (${m.provider})`;
}

export function ChatScreen({ sessionId: routeSessionId }: { sessionId: string | null }) {
  const { api, socket, models } = useServices();
  const conn = useConnection();
  const [state, dispatch] = useReducer(chatReducer, initialChatState);
  const [choice, setChoice] = useState<WorkspaceChoice | null>(readChoice);
  const [model, setModel] = useState<string | null>(() => stored(MODEL_KEY));
  const [citation, setCitation] = useState<CitationOut | null>(null);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [drawerOpen, setDrawerOpen] = useState(false);
  const drawerToggle = useRef<HTMLButtonElement>(null);
  const focusToggle = useRef(false);
  // A past conversation being opened (error null while it loads), or the error that stopped it.
  const [sessionLoad, setSessionLoad] = useState<{ id: string; error: unknown } | null>(() =>
    routeSessionId === null ? null : { id: routeSessionId, error: null },
  );
  const workspaces = useAsync(() => api.listWorkspaces(), [api]);
  const sessions = useAsync(() => api.listSessions(), [api]);
  const busy = isBusy(state);

  // The workspace: the conversation's own once it has one, else the one picked (or the default).
  // Until the list has loaded nothing is sent: a new conversation would otherwise go without documents.
  const workspacesReady = workspaces.data !== undefined;
  const conversationLocked = state.workspace !== null;
  const workspaceId = state.workspace ? state.workspace.id : resolveWorkspace(choice, workspaces.data ?? []);
  const workspaceNames = useMemo(() => new Map((workspaces.data ?? []).map((w) => [w.id, w.name])), [workspaces.data]);

  // A metadata filter on what answers may use (sent with each question); its builder opens on demand.
  const [filterOpen, setFilterOpen] = useState(false);
  const filterPanelId = useId();
  const keys = useMetadataKeys(workspaceId, filterOpen);
  const filter = useFilterState(keys, { live: true });
  const activeFilter = workspaceId !== null ? filter.filter : null;

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
        dispatch({ type: "loadSession", detail }); // restores the conversation's workspace too
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

  /** Sends a question: a new one, or the last one again in place of its answer (Regenerate). */
  const ask = (text: string, mode: "send" | "regenerate") => {
    const id = localId("turn");
    dispatch(mode === "send" ? { type: "send", id, text, workspaceId } : { type: "regenerate", id });
    if (!conversationLocked) rememberChoice(workspaceId === null ? { kind: "none" } : { kind: "workspace", id: workspaceId });
    const message: ChatAction = {
      action: "chat",
      text,
      session_id: state.sessionId,
      workspace_id: workspaceId,
      model,
      ...(activeFilter ? { filters: activeFilter } : {}),
    };
    const ok = socket.send(message);
    if (!ok) dispatch({ type: "sendFailed", message: "Not sent: the connection is offline. Try again when it is back." });
  };

  const closeDrawer = () => {
    setDrawerOpen(false);
    focusToggle.current = true;
  };
  // Focus goes back to the button that opened the drawer once the chat behind is no longer inert.
  useEffect(() => {
    if (drawerOpen || !focusToggle.current) return;
    focusToggle.current = false;
    drawerToggle.current?.focus();
  }, [drawerOpen]);
  // The drawer is for narrow screens only: a window widened while it is open shows the list in place.
  useEffect(() => {
    if (!drawerOpen || typeof window.matchMedia !== "function") return;
    const wide = window.matchMedia(`(min-width: ${NARROW_MAX_PX + 1}px)`);
    const close = () => {
      if (wide.matches) setDrawerOpen(false);
    };
    wide.addEventListener("change", close);
    return () => wide.removeEventListener("change", close);
  }, [drawerOpen]);

  const deleteSession = async (id: string) => {
    await api.deleteSession(id);
    sessions.setData((old) => old?.filter((s) => s.id !== id));
    if (id === state.sessionId) navigate({ screen: "chat", sessionId: null });
  };

  const renameSession = async (id: string, title: string) => {
    const renamed = await api.renameSession(id, { title });
    sessions.setData((old) => old?.map((s) => (s.id === id ? renamed : s)));
  };

  const pickWorkspace = (id: string | null) => {
    const picked: WorkspaceChoice = id === null ? { kind: "none" } : { kind: "workspace", id };
    setChoice(picked);
    rememberChoice(picked);
  };
  const pickModel = (id: string | null) => {
    setModel(id);
    store(MODEL_KEY, id);
  };

  const filterBlocked = workspaceId !== null && filter.invalid;
  const blockedReason =
    conn.status === "open"
      ? workspacesReady
        ? filterBlocked
          ? "The filter has a problem: fix it above, or clear it, to send."
          : null
        : workspaces.error !== null
          ? "Your workspaces could not be loaded: try again above."
          : "Loading your workspaces…"
      : conn.status === "offline"
        ? "Offline: reconnecting…"
        : "Connecting…";
  const bannerText = state.banner ? chatErrorText(state.banner) : null;
  const question = lastQuestion(state);
  const canAsk = conn.status === "open" && !busy && !sessionLoad && workspacesReady && !filterBlocked;

  return (
    <div className={`chat-layout${citation ? " with-panel" : ""}`}>
      <SessionList
        sessions={sessions.data}
        loading={sessions.loading}
        error={sessions.error}
        activeId={state.sessionId}
        workspaceNames={workspaceNames}
        drawerOpen={drawerOpen}
        onOpen={(id) => {
          if (drawerOpen) closeDrawer();
          navigate({ screen: "chat", sessionId: id });
        }}
        onRename={renameSession}
        onDelete={deleteSession}
        onNew={() => {
          if (drawerOpen) closeDrawer();
          navigate({ screen: "chat", sessionId: null });
        }}
        onRetry={sessions.reload}
        onCloseDrawer={closeDrawer}
      />
      {drawerOpen && <div className="drawer-backdrop" aria-hidden="true" onClick={closeDrawer} />}
      {/* While the drawer is open the chat behind it takes no focus and no clicks (the drawer is modal). */}
      <section className="chat-main" aria-label="Chat" inert={drawerOpen}>
        <header className="chat-head">
          <button
            type="button"
            ref={drawerToggle}
            className="btn conversations-toggle"
            aria-expanded={drawerOpen}
            aria-controls="conversation-drawer"
            onClick={() => setDrawerOpen(true)}
            data-testid="conversations-toggle"
          >
            Conversations
          </button>
          <WorkspacePicker
            workspaces={workspaces.data ?? []}
            value={workspaceId}
            onChange={pickWorkspace}
            allowNone
            disabled={busy || conversationLocked}
          />
          {conversationLocked && (
            <span className="muted small" data-testid="workspace-locked">
              This conversation keeps its workspace: start a new chat to use another.
            </span>
          )}
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
                  {modelLabel(m)}
                </option>
              ))}
            </select>
          </div>
          {workspaceId !== null && (
            <button
              type="button"
              className="btn"
              aria-expanded={filterOpen}
              aria-controls={filterOpen ? filterPanelId : undefined}
              onClick={() => setFilterOpen((o) => !o)}
              data-testid="chat-filter-toggle"
            >
              Filter{filter.draft.rows.length > 0 ? ` (${filter.draft.rows.length})` : ""}
            </button>
          )}
          {workspaces.error !== null && (
            <span className="error-text small" role="alert" data-testid="workspaces-error">
              Workspaces: {describeError(workspaces.error)}{" "}
              <button type="button" className="link" onClick={workspaces.reload}>
                Try again
              </button>
            </span>
          )}
        </header>
        {workspaceId !== null && (filterOpen || activeFilter) && (
          <div className="chat-filter" id={filterPanelId}>
            {filterOpen && (
              <FilterBuilder
                draft={filter.draft}
                onChange={filter.setDraft}
                keys={keys}
                errors={filter.errors}
                legend="Answer only from documents where"
              />
            )}
            <FilterSummary filter={activeFilter} onClear={filter.clear} prefix="Answers only use documents where" />
          </div>
        )}
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
                  ? `Answers search ${workspaceNames.get(workspaceId) ?? "your workspace"} and cite the passages they use: click a [n] to read the source.`
                  : "No workspace chosen (see the note above the message box)."}
              </p>
            </div>
          )}
          {state.turns.map((t, i) =>
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
                actions={
                  t.status === "done" || t.status === "cancelled" ? (
                    <AnswerActions
                      text={t.text}
                      onRegenerate={i === state.turns.length - 1 && question && canAsk ? () => ask(question, "regenerate") : null}
                      onEditQuestion={
                        i === state.turns.length - 1 && question && !busy
                          ? () => setDraft((d) => ({ text: question, key: (d?.key ?? 0) + 1 }))
                          : null
                      }
                    />
                  ) : null
                }
              />
            ),
          )}
        </div>
        <AnswerAnnouncer turns={state.turns} />
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
          canSend={conn.status === "open" && !sessionLoad && workspacesReady && !filterBlocked}
          blockedReason={blockedReason}
          onSend={(text) => ask(text, "send")}
          onStop={() => dispatch({ type: "stop" })}
          draft={draft}
          notice={
            workspacesReady && !sessionLoad && workspaceId === null ? (
              <NoDocumentsNote hasWorkspaces={(workspaces.data ?? []).length > 0} locked={conversationLocked} />
            ) : null
          }
        />
      </section>
      {citation && <CitationPanel citation={citation} onClose={() => setCitation(null)} />}
    </div>
  );
}
