import { useState } from "react";
import { describeError } from "../../api/errors";
import { ConfirmButton, StatusBadge } from "../../components/common";
import { MetadataChips } from "../../components/MetadataChips";
import { formatBytes, formatDate, percent } from "../../lib/format";
import type { DocRow } from "../../state/documents";
import type { DocumentView, SortKey } from "../../state/documentView";
import { FileName } from "./FileName";
import "./documents.css";

/** Column headers that the row's cells repeat as their labels when the rows stack (see CellLabel). */
const COLUMN = {
  source: "Source",
  status: "Status",
  metadata: "Metadata",
  chunks: "Chunks",
  size: "Size",
  updated: "Updated",
} as const;

/**
 * The cell's column header, shown before its value only where a narrow table stacks each row as a card (the
 * header row is not there to read it from). Hidden from assistive technology, which announces the header itself.
 */
function CellLabel({ children }: { children: string }) {
  return (
    <span className="cell-label" aria-hidden="true">
      {children}
    </span>
  );
}

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
    <td role="cell">
      <CellLabel>{COLUMN.status}</CellLabel>
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
    <th scope="col" role="columnheader" className={className} aria-sort={active ? view.direction : "none"} data-testid={`sort-${column}`}>
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
  // Where the table is too narrow for its columns (documents.css), each row stacks as a card: display values
  // other than table's drop the table semantics in WebKit (VoiceOver on an iPhone), so the roles are explicit.
  return (
    <div className="table-wrap doc-table-wrap">
      <table className="table doc-table" role="table" data-testid="document-table">
        <caption className="sr-only">Documents in this workspace, with their processing status</caption>
        <thead role="rowgroup">
          <tr role="row">
            <SortableHeader label="Name" column="name" view={view} onSort={onSort} />
            <th scope="col" role="columnheader">
              {COLUMN.source}
            </th>
            <SortableHeader label={COLUMN.status} column="status" view={view} onSort={onSort} />
            <th scope="col" role="columnheader">
              {COLUMN.metadata}
            </th>
            <th scope="col" role="columnheader" className="num">
              {COLUMN.chunks}
            </th>
            <th scope="col" role="columnheader" className="num">
              {COLUMN.size}
            </th>
            <SortableHeader label={COLUMN.updated} column="updated" view={view} onSort={onSort} />
            <th scope="col" role="columnheader">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody role="rowgroup" aria-live="polite">
          {rows.map((r) => (
            <tr
              key={r.id}
              role="row"
              data-testid="document-row"
              data-document-id={r.id}
              data-document-name={r.name}
              data-status={r.status}
            >
              <th scope="row" role="rowheader" className="doc-name">
                {r.parentId && <span aria-label="page of a website">↳ </span>}
                <FileName name={r.name} />
              </th>
              <td role="cell">
                <CellLabel>{COLUMN.source}</CellLabel>
                {r.source ?? "—"}
              </td>
              <StatusCell row={r} />
              <td role="cell" className="doc-meta" data-testid="document-metadata">
                <CellLabel>{COLUMN.metadata}</CellLabel>
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
              <td role="cell" className="num">
                <CellLabel>{COLUMN.chunks}</CellLabel>
                {r.chunkCount}
              </td>
              <td role="cell" className="num">
                <CellLabel>{COLUMN.size}</CellLabel>
                {formatBytes(r.sizeBytes)}
              </td>
              <td role="cell" className="small">
                <CellLabel>{COLUMN.updated}</CellLabel>
                <span data-testid="document-updated" data-updated-at={r.updatedAt ?? ""}>
                  {formatDate(r.updatedAt)}
                </span>
              </td>
              <td role="cell" className="doc-actions">
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
