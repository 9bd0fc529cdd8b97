import { useEffect, useState } from "react";
import "./answer-actions.css";

const COPIED_MS = 2000;

type CopyState = "idle" | "copied" | "failed";

/** Copies text to the clipboard and says so for a moment ("Copied" or why it failed). */
function useCopy(): [CopyState, (text: string) => void] {
  const [state, setState] = useState<CopyState>("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), COPIED_MS);
    return () => clearTimeout(timer);
  }, [state]);
  const copy = (text: string) => {
    if (!navigator.clipboard) {
      setState("failed");
      return;
    }
    navigator.clipboard.writeText(text).then(
      () => setState("copied"),
      () => setState("failed"),
    );
  };
  return [state, copy];
}

/**
 * What the user can do with a finished answer: copy it; and on the last answer, ask the same question
 * again (Regenerate) or put the question back in the message box to edit and resend it.
 */
export function AnswerActions({
  text,
  onRegenerate,
  onEditQuestion,
}: {
  text: string;
  /** Null when the answer is not the last one, or another answer is being written. */
  onRegenerate: (() => void) | null;
  onEditQuestion: (() => void) | null;
}) {
  const [copyState, copy] = useCopy();
  return (
    <div className="answer-actions" role="group" aria-label="Answer actions">
      <button type="button" className="btn small" onClick={() => copy(text)} disabled={!text} data-testid="copy-answer">
        Copy
      </button>
      {onRegenerate && (
        <button type="button" className="btn small" onClick={onRegenerate} data-testid="regenerate-answer">
          Regenerate
        </button>
      )}
      {onEditQuestion && (
        <button type="button" className="btn small" onClick={onEditQuestion} data-testid="edit-question">
          Edit question
        </button>
      )}
      <span role="status" className={`small ${copyState === "failed" ? "error-text" : "muted"}`} data-testid="copy-status">
        {copyState === "copied" ? "Copied" : copyState === "failed" ? "Could not copy: the browser refused the clipboard." : ""}
      </span>
    </div>
  );
}
