import { useState } from "react";
import { describeError } from "../../api/errors";
import { ConfirmButton, StatusBadge } from "../../components/common";
import { MetadataChips } from "../../components/MetadataChips";
import { formatBytes, formatDate, percent } from "../../lib/format";
import type { DocRow } from "../../state/documents";
import type { DocumentView, SortKey } from "../../state/documentView";
import { FileName } from "./FileName";
import "./documents.css";

function UploadCell({ row }: { row: DocRow }) {
  const u = row.upload;
  if (!u || u.phase === "uploaded") return null;
  if (u.phase === "failed") {
    return (
      <p className="error-text small" role="alert" data-testid="upload-error">
        Upload failed: {u.error}
      </p>
    );
  }
  const pct = percent(u.loaded, u.total);
  return (
    <div className="progress-line">
      <progress
        max={100}
        value={pct}
        aria-label={`Uploading ${row.name}`}
        data-testid="upload-progress"
      />
      <span className="small muted">{pct}%</span>
    </div>
  );
}

function StatusCell({ row }: { row: DocRow }) {
  const uploading = row.upload && (row.upload.phase === "uploading" || row.upload.phase === "requesting");
  return (
    <td>
      {uploading ? <StatusBadge status="uploading" testId="document-status" /> : <StatusBadge status={row.status} testId="document-status" />}
      {row.status === "error" && row.reason && (
        <p className="error-text small" data-testid="document-reason">
          {row.reason}
        </p>
      )}
      <UploadCell row={row} />
    </td>
  );
}

/** On a failed document (not a page of a crawl: its website is retried): run the ingestion again. */
function RetryButton({ row, onRetry }: { row: DocRow; onRetry: (row: DocRow) => Promise<void> }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const retry = async () => {
    setBusy(true);
    setError(null);
    try {
      await onRetry(row);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        className="btn small"
        disabled={busy}
        aria-label={`Retry document ${row.name}`}
        title={`Retry document ${row.name}`}
        data-testid="document-retry"
        onClick={() => void retry()}
      >
        {busy ? "Retrying…" : "Retry"}
      </button>
      {error && (
        <p className="error-text small" role="alert" data-testid="document-retry-error">
          {error}
        </p>
      )}
    </>
  );
}

/** A column header that sorts the table: a real button, its state in the header's aria-sort. */
function SortableHeader({
  label,
  column,
  view,
  onSort,
  className,
}: {
  label: string;
  column: SortKey;
  view: DocumentView;
  onSort: (column: SortKey) => void;
  className?: string;
}) {
  const active = view.sort === column;
  const mark = active ? (view.direction === "ascending" ? "▲" : "▼") : "";
  return (
    <th scope="col" className={className} aria-sort={active ? view.direction : "none"} data-testid={`sort-${column}`}>
      <button type="button" className="sort-header" onClick={() => onSort(column)}>
        {label}
        <span className="sort-mark" aria-hidden="true">
          {mark}
        </span>
        <span className="sr-only">
          {active ? `, sorted ${view.direction}; activate to reverse` : ", activate to sort by this column"}
        </span>
      </button>
    </th>
  );
}

export function DocumentTable({
  rows,
  view,
  onSort,
  onDelete,
  onRetry,
  onPreview,
  onMetadata,
}: {
  rows: DocRow[];
  view: DocumentView;
  onSort: (column: SortKey) => void;
  onDelete: (row: DocRow) => Promise<void>;
  onRetry: (row: DocRow) => Promise<void>;
  onPreview: (row: DocRow) => void;
  /** Opens the row's metadata editor. */
  onMetadata: (row: DocRow) => void;
}) {
  return (
    <div className="table-wrap">
      <table className="table" data-testid="document-table">
        <caption className="sr-only">Documents in this workspace, with their processing status</caption>
        <thead>
          <tr>
            <SortableHeader label="Name" column="name" view={view} onSort={onSort} />
            <th scope="col">Source</th>
            <SortableHeader label="Status" column="status" view={view} onSort={onSort} />
            <th scope="col">Metadata</th>
            <th scope="col" className="num">
              Chunks
            </th>
            <th scope="col" className="num">
              Size
            </th>
            <SortableHeader label="Updated" column="updated" view={view} onSort={onSort} />
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody aria-live="polite">
          {rows.map((r) => (
            <tr
              key={r.id}
              data-testid="document-row"
              data-document-id={r.id}
              data-document-name={r.name}
              data-status={r.status}
            >
              <th scope="row" className="doc-name">
                {r.parentId && <span aria-label="page of a website">↳ </span>}
                <FileName name={r.name} />
              </th>
              <td>{r.source ?? "—"}</td>
              <StatusCell row={r} />
              <td className="doc-meta" data-testid="document-metadata">
                <MetadataChips metadata={r.metadata} max={4} label={`Metadata of ${r.name}`} />
                {r.upload?.phase === "requesting" || r.upload?.phase === "uploading" ? null : (
                  <button
                    type="button"
                    className="btn tiny"
                    aria-label={`Edit metadata of ${r.name}`}
                    title={`Edit metadata of ${r.name}`}
                    data-testid="document-metadata-open"
                    onClick={() => onMetadata(r)}
                  >
                    Edit
                  </button>
                )}
              </td>
              <td className="num">{r.chunkCount}</td>
              <td className="num">{formatBytes(r.sizeBytes)}</td>
              <td className="small" data-testid="document-updated" data-updated-at={r.updatedAt ?? ""}>
                {formatDate(r.updatedAt)}
              </td>
              <td>
                <div className="row-actions">
                  {r.status === "processed" && (
                    <button
                      type="button"
                      className="btn small"
                      aria-label={`Preview document ${r.name}`}
                      title={`Preview document ${r.name}`}
                      data-testid="document-preview-open"
                      onClick={() => onPreview(r)}
                    >
                      Preview
                    </button>
                  )}
                  {r.status === "error" && !r.parentId && <RetryButton row={r} onRetry={onRetry} />}
                  <ConfirmButton
                    label={`Delete document ${r.name}`}
                    question={`Delete “${r.name}”?`}
                    onConfirm={() => onDelete(r)}
                    testId="document-delete"
                  />
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
