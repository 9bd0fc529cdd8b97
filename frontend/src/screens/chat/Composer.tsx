import { type FormEvent, type KeyboardEvent, type ReactNode, useEffect, useId, useRef, useState } from "react";
import { limits } from "../../api/limits.gen";

const MAX = limits.ChatAction.text.maxLength;

/** Text put into the message box from outside (Edit question); a new `key` puts it again. */
export interface Draft {
  text: string;
  key: number;
}

/**
 * The message box: Enter sends, Shift+Enter starts a new line; Stop replaces Send while answering.
 * A `draft` replaces what is typed and takes the focus; `notice` is shown just above the box.
 */
export function Composer({
  busy,
  canSend,
  blockedReason,
  onSend,
  onStop,
  draft = null,
  notice = null,
}: {
  busy: boolean;
  canSend: boolean;
  blockedReason: string | null;
  onSend: (text: string) => void;
  onStop: () => void;
  draft?: Draft | null;
  notice?: ReactNode;
}) {
  const [text, setText] = useState("");
  const [shownDraft, setShownDraft] = useState<Draft | null>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  if (draft !== null && draft !== shownDraft) {
    setShownDraft(draft);
    setText(draft.text);
  }
  useEffect(() => {
    const el = box.current;
    if (draft === null || !el) return;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, [draft]);
  const id = useId();
  const trimmed = text.trim();
  const tooLong = text.length > MAX;
  const ready = canSend && !busy && trimmed.length > 0 && !tooLong;
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    if (!ready) return;
    onSend(trimmed);
    setText("");
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    }
  };
  return (
    <form className="composer" onSubmit={submit} aria-label="Ask a question">
      {notice}
      <label htmlFor={id} className="sr-only">
        Message
      </label>
      <textarea
        id={id}
        ref={box}
        rows={2}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        placeholder="Ask a question… (Enter to send, Shift+Enter for a new line)"
        data-testid="chat-input"
        aria-describedby={`${id}-hint`}
        aria-invalid={tooLong}
      />
      <div className="composer-side">
        {busy ? (
          <button type="button" className="btn danger" onClick={onStop} data-testid="stop-button">
            ■ Stop
          </button>
        ) : (
          <button type="submit" className="btn primary" disabled={!ready} data-testid="send-button">
            Send
          </button>
        )}
      </div>
      <p id={`${id}-hint`} className={`composer-hint small ${tooLong ? "error-text" : "muted"}`}>
        {tooLong
          ? `Too long: ${text.length} of ${MAX} characters.`
          : (blockedReason ?? (text.length > MAX * 0.8 ? `${text.length} / ${MAX} characters` : "\u00a0"))}
      </p>
    </form>
  );
}
