import { type MouseEvent, type ReactNode, useMemo } from "react";
import { chatErrorText } from "../../api/errors";
import type { CitationOut } from "../../api/types";
import { useElapsed } from "../../lib/hooks";
import { renderMarkdown } from "../../lib/markdown";
import { sourceName } from "../../lib/sources";
import type { AssistantTurn } from "../../state/chat";
import { AnswerProgress } from "./AnswerProgress";
import { moveCitationFocus } from "./citationKeys";
import "./citations.css";
import { EarlierAnswers } from "./EarlierAnswers";
import { Feedback } from "./Feedback";

const SLOW_MS = 20_000;
const STUCK_MS = 120_000;

/** Milliseconds the streaming answer has gone without new text (0 once it is not streaming). */
function useStall(turn: AssistantTurn): number {
  return useElapsed(turn.status === "streaming", turn.text.length);
}

function StatusLine({ turn, stalledMs, onReload }: { turn: AssistantTurn; stalledMs: number; onReload: () => void }) {
  if (turn.status === "streaming") {
    const secs = Math.round(stalledMs / 1000);
    if (stalledMs >= STUCK_MS) {
      return (
        <p className="turn-status warn" role="status">
          No reply for {secs} s. The model may be overloaded; stop and try again.
        </p>
      );
    }
    if (stalledMs >= SLOW_MS) {
      return (
        <p className="turn-status" role="status">
          Still waiting for the model… ({secs} s)
        </p>
      );
    }
    return turn.text ? null : <AnswerProgress progress={turn.progress} />;
  }
  if (turn.status === "cancelled") {
    return (
      <p className="turn-status muted" data-testid="answer-stopped">
        <span className="stopped-mark">Stopped</span> This answer was stopped before it was complete.
      </p>
    );
  }
  if (turn.status === "error") {
    const shown = turn.error ? chatErrorText(turn.error) : { title: null, text: "Something went wrong." };
    return (
      <p className={`turn-status ${shown.title ? "warn" : "error-text"}`} role="alert" data-testid="answer-error">
        {shown.title && <strong>{shown.title} </strong>}
        {shown.text}
      </p>
    );
  }
  if (turn.status === "interrupted") {
    return (
      <p className="turn-status warn" role="alert">
        {turn.error?.message} It will be reloaded from history when the connection is back.{" "}
        <button type="button" className="link" onClick={onReload}>
          Reload now
        </button>
      </p>
    );
  }
  return null;
}

export function AssistantMessage({
  turn,
  onCite,
  onRated,
  onReload,
  actions = null,
}: {
  turn: AssistantTurn;
  onCite: (c: CitationOut) => void;
  onRated: (messageId: string, r: -1 | 1) => void;
  onReload: () => void;
  /** The action bar (copy, regenerate, edit) of a finished answer. */
  actions?: ReactNode;
}) {
  const html = useMemo(() => renderMarkdown(turn.text, turn.citations), [turn.text, turn.citations]);
  const stalledMs = useStall(turn);
  const onClick = (e: MouseEvent<HTMLDivElement>) => {
    const btn = (e.target as HTMLElement).closest<HTMLElement>("[data-citation]");
    if (!btn) return;
    const c = turn.citations.find((x) => x.n === Number(btn.dataset.citation));
    if (c) onCite(c);
  };
  const done = turn.status === "done";
  return (
    <article
      className={`turn assistant status-${turn.status}`}
      data-testid="assistant-message"
      data-status={turn.status}
      data-message-id={turn.messageId ?? ""}
      aria-busy={turn.status === "streaming"}
    >
      <div className="avatar" aria-hidden="true">
        Q
      </div>
      <div className="bubble">
        <EarlierAnswers earlier={turn.earlier} />
        {/* The answer is sanitized HTML; clicks on [n] buttons are delegated here. */}
        <div
          className={`answer markdown${turn.status === "streaming" && turn.text ? " typing" : ""}`}
          data-testid="answer-text"
          data-final={turn.final ? "true" : "false"}
          onClick={onClick}
          onKeyDown={moveCitationFocus}
          dangerouslySetInnerHTML={{ __html: html }}
        />
        <StatusLine turn={turn} stalledMs={stalledMs} onReload={onReload} />
        {done && turn.citations.length > 0 && (
          <div className="sources" aria-label="Sources">
            <span className="muted small">Sources:</span>
            {turn.citations.map((c) => (
              <button
                key={c.n}
                type="button"
                className="chip"
                onClick={() => onCite(c)}
                data-testid="source-chip"
                title={sourceName(c)}
              >
                [{c.n}] {sourceName(c)}
              </button>
            ))}
          </div>
        )}
        {done && turn.grounded === false && (
          <p className="muted small">Not grounded in your documents: treat this answer with care.</p>
        )}
        {actions}
        {done && turn.messageId && turn.sessionId && (
          <Feedback
            sessionId={turn.sessionId}
            messageId={turn.messageId}
            rating={turn.feedback}
            onRated={(r) => onRated(turn.messageId as string, r)}
          />
        )}
      </div>
    </article>
  );
}
