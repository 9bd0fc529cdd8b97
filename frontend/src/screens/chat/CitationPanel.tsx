import { useMemo } from "react";
import type { CitationOut } from "../../api/types";
import { useServices } from "../../app/context";
import { formatScore } from "../../lib/format";
import { useAsync, usePanel } from "../../lib/hooks";
import { renderPassage } from "../../lib/markdown";
import { sourceName, sourceSubtitle } from "../../lib/sources";
import "./citations.css";

/** The link that opens the cited document itself (a short-lived download, at the page for a PDF). */
function SourceLink({ citation }: { citation: CitationOut }) {
  const { api } = useServices();
  const workspaceId = citation.workspace_id;
  const link = useAsync(
    () =>
      workspaceId
        ? api.documentSource(workspaceId, citation.document_id, citation.page)
        : Promise.reject(new Error("no workspace")),
    [api, workspaceId, citation.document_id, citation.page],
  );
  if (!workspaceId) return null;
  if (link.loading) return <p className="muted small source-link">Preparing a link to the document…</p>;
  if (link.error || !link.data) {
    return (
      <p className="muted small source-link" role="status">
        The document itself cannot be opened (it may have been deleted).
      </p>
    );
  }
  return (
    <p className="source-link">
      <a href={link.data.url} target="_blank" rel="noopener noreferrer" data-testid="citation-source-link">
        Open {sourceName(citation)}
        {citation.page ? `, page ${citation.page}` : ""}
        <span className="sr-only"> (opens in a new tab)</span>
      </a>
    </p>
  );
}

/** The cited passage: which document and page it is from, its text with the supporting sentence marked. */
export function CitationPanel({ citation, onClose }: { citation: CitationOut; onClose: () => void }) {
  const closeRef = usePanel<HTMLButtonElement>(citation, onClose);
  const { text, highlight_start: start, highlight_end: end } = citation;
  const highlighted = start != null && end != null;
  const html = useMemo(
    () => renderPassage(text, start != null && end != null ? { start, end } : null),
    [text, start, end],
  );
  const name = sourceName(citation);
  const subtitle = sourceSubtitle(citation);
  return (
    <aside className="citation-panel" aria-label={`Source ${citation.n}: ${name}`} data-testid="citation-panel">
      <header className="panel-head">
        <div className="citation-heading">
          <h2>
            <span className="cite-n">[{citation.n}]</span> <span data-testid="citation-title">{name}</span>
          </h2>
          {(subtitle || citation.page) && (
            <p className="muted small citation-sub">
              {subtitle && <span data-testid="citation-subtitle">“{subtitle}”</span>}
              {subtitle && citation.page ? " · " : ""}
              {citation.page ? <span data-testid="citation-page">Page {citation.page}</span> : null}
            </p>
          )}
        </div>
        <button type="button" className="btn icon" onClick={onClose} ref={closeRef} aria-label="Close source">
          ×
        </button>
      </header>
      {highlighted && <p className="muted small">The highlighted sentence supports the answer.</p>}
      {/* Sanitized HTML (renderPassage). */}
      <div
        className="passage markdown citation-passage"
        data-testid="citation-text"
        dangerouslySetInnerHTML={{ __html: html }}
      />
      <SourceLink citation={citation} />
      <details className="citation-details" data-testid="citation-details">
        <summary>Details</summary>
        <dl className="facts">
          <div>
            <dt>Score</dt>
            <dd data-testid="citation-score">{formatScore(citation.score)}</dd>
          </div>
          <div>
            <dt>Characters</dt>
            <dd>
              {citation.start}–{citation.end}
            </dd>
          </div>
        </dl>
        <p className="muted small">
          Passage <code>{citation.chunk_id}</code>
          {citation.title && citation.title !== name ? (
            <>
              {" "}
              · embedded title “{citation.title}”
            </>
          ) : null}
        </p>
      </details>
    </aside>
  );
}
