import { type KeyboardEvent, useEffect, useId, useRef, useState } from "react";
import { describeError } from "../../api/errors";
import { limits } from "../../api/limits.gen";

const MAX_TITLE = limits.SessionPatchIn.title.maxLength;

/** Renames a conversation in place: Enter (or Save) keeps the new title, Escape (or Cancel) leaves it as it was. */
export function SessionTitleForm({
  title,
  onSave,
  onDone,
}: {
  title: string;
  onSave: (title: string) => Promise<void>;
  onDone: () => void;
}) {
  const [text, setText] = useState(title);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const input = useRef<HTMLInputElement>(null);
  const id = useId();
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const trimmed = text.trim();
  const save = async () => {
    if (!trimmed || busy) return;
    if (trimmed === title) return onDone();
    setBusy(true);
    setError(null);
    try {
      await onSave(trimmed);
      onDone();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation(); // Escape closes this form, not the drawer around it
      onDone();
    }
  };
  return (
    <form
      className="session-rename"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <label htmlFor={id} className="sr-only">
        Conversation title
      </label>
      <input
        id={id}
        ref={input}
        value={text}
        maxLength={MAX_TITLE}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        disabled={busy}
        aria-invalid={!trimmed}
        aria-describedby={`${id}-error`}
        data-testid="session-title-input"
      />
      <div className="row">
        <button type="submit" className="btn small primary" disabled={busy || !trimmed} data-testid="session-title-save">
          Save
        </button>
        <button type="button" className="btn small" onClick={onDone} disabled={busy}>
          Cancel
        </button>
      </div>
      <p id={`${id}-error`} className="small error-text" role={error !== null || !trimmed ? "alert" : undefined}>
        {!trimmed ? "The title cannot be empty." : error !== null ? `Not renamed: ${describeError(error)}` : ""}
      </p>
    </form>
  );
}
