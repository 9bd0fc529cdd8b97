import { type FormEvent, useMemo, useState } from "react";
import { ApiError, describeError } from "../../api/errors";
import { type UserMetadata, userMetadata } from "../../api/metadata";
import type { DocumentOut } from "../../api/types";
import { useServices } from "../../app/context";
import { MetadataEntries } from "../../components/MetadataEntries";
import { usePanel } from "../../lib/hooks";
import { entriesFrom, type KeyInfo, type MetadataEntry, metadataPatch, placeServerError } from "../../state/metadataDraft";
import "./documents.css";

/**
 * A document's metadata, editable: rows of name / type / value. Save sends only what changed, as a JSON merge
 * patch (a removed or renamed field goes as null); a 422 from the server is shown at the field it names.
 * Escape or Close dismisses it.
 */
export function MetadataEditor({
  workspaceId,
  documentId,
  name,
  metadata,
  suggestions,
  onSaved,
  onClose,
}: {
  workspaceId: string;
  documentId: string;
  name: string;
  metadata: UserMetadata;
  suggestions: KeyInfo[];
  onSaved: (doc: DocumentOut) => void;
  onClose: () => void;
}) {
  const { api } = useServices();
  const [original, setOriginal] = useState(metadata);
  const [entries, setEntries] = useState<MetadataEntry[]>(() => entriesFrom(metadata));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const outcome = useMemo(() => metadataPatch(original, entries), [original, entries]);
  // Something to save, or a row with a problem to point out (Save then says what it is).
  const changed = Object.keys(outcome.patch).length > 0 || Object.keys(outcome.errors).length > 0 || outcome.error !== null;
  const headingRef = usePanel<HTMLHeadingElement>(documentId, onClose);

  const edit = (next: MetadataEntry[]) => {
    setEntries(next);
    setErrors({});
    setError(null);
    setSaved(false);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (Object.keys(outcome.errors).length > 0 || outcome.error) {
      setErrors(outcome.errors);
      setError(outcome.error);
      return;
    }
    if (!changed) return;
    setBusy(true);
    setError(null);
    try {
      const doc = await api.patchDocument(workspaceId, documentId, { metadata: outcome.patch });
      const stored = userMetadata(doc.metadata);
      setOriginal(stored);
      setEntries(entriesFrom(stored));
      setSaved(true);
      onSaved(doc);
    } catch (err) {
      const placed = err instanceof ApiError && err.status === 422 ? placeServerError(err.message, entries) : null;
      if (placed) {
        setErrors(placed.errors);
        setError(placed.general);
      } else {
        setError(describeError(err));
      }
    } finally {
      setBusy(false);
    }
  };

  const headingId = `metadata-title-${documentId}`;
  return (
    <section className="doc-preview doc-metadata" aria-labelledby={headingId} data-testid="metadata-editor">
      <header className="panel-head">
        <h2 id={headingId} ref={headingRef} tabIndex={-1}>
          Metadata: {name}
        </h2>
        <button type="button" className="btn small" onClick={onClose} aria-label={`Close metadata of ${name}`}>
          Close
        </button>
      </header>
      <p className="muted small">
        Fields you set here can filter searches, chats and summaries. Each has a type: text, number, yes/no, date
        or a list (comma-separated).
      </p>
      <form className="stack" onSubmit={(e) => void save(e)} aria-label={`Metadata of ${name}`}>
        <MetadataEntries entries={entries} onChange={edit} errors={errors} suggestions={suggestions} disabled={busy} />
        <div className="row wrap">
          <button type="submit" className="btn primary" disabled={busy || !changed} data-testid="metadata-save">
            {busy ? "Saving…" : "Save metadata"}
          </button>
          {!changed && !saved && <span className="muted small">No changes yet.</span>}
        </div>
        {error && (
          <p className="error-text" role="alert" data-testid="metadata-save-error">
            {error}
          </p>
        )}
        {saved && !changed && (
          <p className="ok-text" role="status">
            Saved.
          </p>
        )}
      </form>
    </section>
  );
}
