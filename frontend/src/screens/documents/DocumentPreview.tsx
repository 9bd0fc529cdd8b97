import type { DocumentPreviewOut } from "../../api/types";
import { useServices } from "../../app/context";
import { userMetadata } from "../../api/metadata";
import { ErrorNote, Loading, StatusBadge } from "../../components/common";
import { MetadataChips } from "../../components/MetadataChips";
import { formatBytes, formatDate } from "../../lib/format";
import { useAsync, usePanel } from "../../lib/hooks";
import "./documents.css";

function PreviewDetails({ preview }: { preview: DocumentPreviewOut }) {
  const d = preview.document;
  const metadata = userMetadata(d.metadata);
  return (
    <>
    <dl className="facts" data-testid="document-preview-details">
      <div>
        <dt>Type</dt>
        <dd>{d.content_type ?? d.source}</dd>
      </div>
      <div>
        <dt>Size</dt>
        <dd>{formatBytes(d.size_bytes)}</dd>
      </div>
      <div>
        <dt>Chunks</dt>
        <dd>{d.chunk_count}</dd>
      </div>
      <div>
        <dt>Status</dt>
        <dd>
          <StatusBadge status={d.status} />
        </dd>
      </div>
      <div>
        <dt>Updated</dt>
        <dd>{formatDate(d.updated_at)}</dd>
      </div>
      {d.status_reason && (
        <div>
          <dt>Reason</dt>
          <dd>{d.status_reason}</dd>
        </div>
      )}
    </dl>
    {Object.keys(metadata).length > 0 && <MetadataChips metadata={metadata} label={`Metadata of ${d.name}`} />}
    </>
  );
}

function PreviewText({ preview }: { preview: DocumentPreviewOut }) {
  if (!preview.available) {
    return (
      <p className="muted" data-testid="document-preview-missing">
        No extracted text is stored for this document (it was processed before previews existed). Upload it again to
        see its text here.
      </p>
    );
  }
  return (
    <>
      <p className="muted small">
        {preview.truncated
          ? `The first ${preview.text.length.toLocaleString()} characters of the extracted text:`
          : "The extracted text:"}
      </p>
      <pre className="doc-preview-text" data-testid="document-preview-text" tabIndex={0} aria-label="Extracted text">
        {preview.text}
      </pre>
    </>
  );
}

/** A processed document's details and the start of its extracted text. Escape or Close dismisses it. */
export function DocumentPreview({
  workspaceId,
  documentId,
  name,
  onClose,
}: {
  workspaceId: string;
  documentId: string;
  name: string;
  onClose: () => void;
}) {
  const { api } = useServices();
  const preview = useAsync(() => api.previewDocument(workspaceId, documentId), [api, workspaceId, documentId]);
  const headingRef = usePanel<HTMLHeadingElement>(documentId, onClose);
  const headingId = `preview-title-${documentId}`;
  return (
    <section className="doc-preview" aria-labelledby={headingId} data-testid="document-preview">
      <header className="panel-head">
        <h2 id={headingId} ref={headingRef} tabIndex={-1} data-testid="document-preview-name">
          Preview: {name}
        </h2>
        <button type="button" className="btn small" onClick={onClose} aria-label={`Close preview of ${name}`}>
          Close
        </button>
      </header>
      {preview.loading && <Loading label="Loading the preview…" />}
      {preview.error !== null && <ErrorNote title="Could not load the preview" error={preview.error} onRetry={preview.reload} />}
      {preview.data && !preview.loading && (
        <>
          <PreviewDetails preview={preview.data} />
          <PreviewText preview={preview.data} />
        </>
      )}
    </section>
  );
}
