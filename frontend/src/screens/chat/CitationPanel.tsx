import { useEffect, useRef } from "react";
import type { CitationOut } from "../../api/types";
import { formatScore } from "../../lib/format";

/** The cited passage: document title, text span and score. Escape or the close button dismisses it. */
export function CitationPanel({ citation, onClose }: { citation: CitationOut; onClose: () => void }) {
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    closeRef.current?.focus();
  }, [citation]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <aside className="citation-panel" aria-label={`Source ${citation.n}`} data-testid="citation-panel">
      <header className="panel-head">
        <h2>
          <span className="cite-n">[{citation.n}]</span> <span data-testid="citation-title">{citation.title || "Untitled"}</span>
        </h2>
        <button type="button" className="btn icon" onClick={onClose} ref={closeRef} aria-label="Close source">
          ×
        </button>
      </header>
      <dl className="facts">
        <div>
          <dt>Score</dt>
          <dd data-testid="citation-score">{formatScore(citation.score)}</dd>
        </div>
        <div>
          <dt>Span</dt>
          <dd>
            characters {citation.start}–{citation.end}
          </dd>
        </div>
      </dl>
      <blockquote className="passage" data-testid="citation-text">
        {citation.text}
      </blockquote>
      <p className="muted small">Document {citation.document_id}</p>
    </aside>
  );
}
