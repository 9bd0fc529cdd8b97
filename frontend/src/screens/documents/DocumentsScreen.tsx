import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { describeError } from "../../api/errors";
import { type UserMetadata, userMetadata } from "../../api/metadata";
import { uploadPresigned } from "../../api/upload";
import { useOnReconnect, useServerMessages, useServices } from "../../app/context";
import { navigate } from "../../app/router";
import { Empty, ErrorNote, Loading } from "../../components/common";
import { UsagePanel } from "../../components/UsagePanel";
import { WorkspacePicker } from "../../components/WorkspacePicker";
import { formatBytes, localId } from "../../lib/format";
import { useAsync } from "../../lib/hooks";
import { documentsReducer, initialDocumentsState, type DocRow } from "../../state/documents";
import { countByFilter, loadView, saveView, toggleSort, visibleRows, type DocumentView } from "../../state/documentView";
import { keysSeen } from "../../state/metadataDraft";
import { AddQnaForm, AddTextForm, AddWebsiteForm } from "./AddForms";
import { DocumentFilter } from "./DocumentFilter";
import { DocumentPreview } from "./DocumentPreview";
import { DocumentTable } from "./DocumentTable";
import { MetadataEditor } from "./MetadataEditor";
import { UploadZone } from "./UploadZone";

const PARALLEL_UPLOADS = 3;

function sessionStorageOrNull(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // blocked by the browser's privacy settings
  }
}

export function DocumentsScreen({ workspaceId }: { workspaceId: string | null }) {
  const { api } = useServices();
  const workspaces = useAsync(() => api.listWorkspaces(), [api]);
  const [state, dispatch] = useReducer(documentsReducer, initialDocumentsState);
  // Sort and filter, kept for this tab across reloads (sessionStorage).
  const [view, setView] = useState<DocumentView>(() => loadView(sessionStorageOrNull()));
  useEffect(() => saveView(sessionStorageOrNull(), view), [view]);
  // The document whose preview is open (only shown while its workspace is the one on screen).
  const [previewing, setPreviewing] = useState<Pick<DocRow, "workspaceId" | "id" | "name"> | null>(null);
  const shown = useMemo(() => visibleRows(state.rows, view), [state.rows, view]);
  const counts = useMemo(() => countByFilter(state.rows), [state.rows]);
  const closePreview = useCallback(() => setPreviewing(null), []);
  // The document whose metadata is being edited.
  const [editing, setEditing] = useState<Pick<DocRow, "workspaceId" | "id" | "name"> | null>(null);
  const closeEditor = useCallback(() => setEditing(null), []);
  const editingRow = editing ? state.rows.find((r) => r.id === editing.id) : undefined;
  // Keys already used in this workspace, offered when metadata is set.
  const suggestions = useMemo(() => keysSeen(state.rows.map((r) => r.metadata)), [state.rows]);
  const listing = useAsync(
    async () => ({ workspaceId, docs: workspaceId ? await api.listDocuments(workspaceId) : [] }),
    [api, workspaceId],
  );
  // The workspace shown now, for uploads that finish after the reader moved on.
  const wsRef = useRef(workspaceId);
  useEffect(() => {
    wsRef.current = workspaceId;
  }, [workspaceId]);

  // Pick the first workspace when none is in the address.
  useEffect(() => {
    const first = workspaces.data?.[0];
    if (!workspaceId && first) navigate({ screen: "documents", workspaceId: first.id }, { replace: true });
  }, [workspaceId, workspaces.data]);

  useEffect(() => dispatch({ type: "reset", workspaceId }), [workspaceId]);
  useEffect(() => {
    const data = listing.data;
    if (workspaceId && data?.workspaceId === workspaceId) dispatch({ type: "loaded", workspaceId, docs: data.docs });
  }, [listing.data, workspaceId]);

  // Live status: pushed over the WebSocket. After a reconnect, re-list once to catch what was missed.
  useServerMessages((msg) => {
    if (msg.type === "document_status") dispatch({ type: "event", event: msg });
  });
  useOnReconnect(listing.reload);

  const uploadOne = useCallback(
    async (ws: string, file: File, metadata: UserMetadata) => {
      const id = localId("up");
      dispatch({ type: "uploadRequested", localId: id, name: file.name, size: file.size });
      let documentId: string | null = null;
      try {
        const target = await api.uploadUrl(ws, {
          filename: file.name,
          content_type: file.type || "application/octet-stream",
          size_bytes: file.size,
          ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
        });
        if (file.size > target.max_bytes) {
          throw new Error(`${formatBytes(file.size)} is over the limit of ${formatBytes(target.max_bytes)}.`);
        }
        documentId = target.document_id;
        if (wsRef.current !== ws) return;
        dispatch({ type: "uploadStarted", localId: id, documentId, name: file.name, size: file.size, metadata });
        const docId = documentId;
        await uploadPresigned(target, file, file.name, {
          onProgress: (p) => dispatch({ type: "uploadProgress", documentId: docId, loaded: p.loaded, total: p.total }),
        }).done;
        dispatch({ type: "uploadDone", documentId: docId });
      } catch (e) {
        dispatch({ type: "uploadFailed", localId: id, documentId, name: file.name, error: describeError(e) });
      }
    },
    [api],
  );

  const uploadFiles = useCallback(
    async (files: File[], metadata: UserMetadata) => {
      if (!workspaceId) return;
      const queue = [...files];
      const worker = async () => {
        for (let f = queue.shift(); f; f = queue.shift()) await uploadOne(workspaceId, f, metadata);
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, files.length) }, worker));
    },
    [workspaceId, uploadOne],
  );

  const current = workspaces.data?.find((w) => w.id === workspaceId);

  if (workspaces.loading && !workspaces.data) return <Loading label="Loading workspaces…" />;
  if (workspaces.error !== null) return <ErrorNote title="Could not load workspaces" error={workspaces.error} onRetry={workspaces.reload} />;
  if (workspaces.data?.length === 0) {
    return (
      <Empty title="No workspace yet">
        Documents live in a workspace. <a href="#/workspaces">Create one first</a>.
      </Empty>
    );
  }

  return (
    <div className="page">
      <header className="page-head">
        <h1>Documents</h1>
        <WorkspacePicker
          workspaces={workspaces.data ?? []}
          value={workspaceId}
          onChange={(id) => navigate({ screen: "documents", workspaceId: id })}
        />
      </header>
      {workspaceId && !current && <ErrorNote error="This workspace does not exist (any more). Pick another one." />}
      {workspaceId && current && (
        <>
          <UploadZone
            onFiles={(files, metadata) => void uploadFiles(files, metadata)}
            disabled={!workspaceId}
            suggestions={suggestions}
          />
          {state.requesting.length > 0 && (
            <ul className="plain small muted" aria-live="polite">
              {state.requesting.map((r) => (
                <li key={r.localId}>Preparing upload of {r.name}…</li>
              ))}
            </ul>
          )}
          {state.failed.map((f) => (
            <div key={f.localId} className="error-note" role="alert" data-testid="upload-failed">
              <span>
                <strong>{f.name}</strong> could not be uploaded: {f.error}
              </span>
              <button type="button" className="btn small" onClick={() => dispatch({ type: "dismissFailed", localId: f.localId })}>
                Dismiss
              </button>
            </div>
          ))}
          <div className="add-forms">
            <details>
              <summary>Add text</summary>
              <AddTextForm
                workspaceId={workspaceId}
                onAdded={(doc) => dispatch({ type: "added", doc })}
                suggestions={suggestions}
              />
            </details>
            <details>
              <summary>Add a question &amp; answer</summary>
              <AddQnaForm
                workspaceId={workspaceId}
                onAdded={(doc) => dispatch({ type: "added", doc })}
                suggestions={suggestions}
              />
            </details>
            <details>
              <summary>Add a website</summary>
              <AddWebsiteForm
                workspaceId={workspaceId}
                onAdded={(doc) => dispatch({ type: "added", doc })}
                suggestions={suggestions}
              />
            </details>
          </div>
          <h2 className="section-title">In “{current.name}”</h2>
          {listing.loading && state.rows.length === 0 && <Loading label="Loading documents…" />}
          {listing.error !== null && <ErrorNote title="Could not list documents" error={listing.error} onRetry={listing.reload} />}
          {!listing.loading && listing.error === null && state.rows.length === 0 && (
            <Empty title="No documents yet">Upload files, or add text, a Q&amp;A pair or a website above.</Empty>
          )}
          {state.rows.length > 0 && (
            <>
              <DocumentFilter
                value={view.filter}
                counts={counts}
                shown={shown.length}
                onChange={(filter) => setView((v) => ({ ...v, filter }))}
              />
              {shown.length === 0 ? (
                <Empty title="No documents match this filter">
                  <button type="button" className="btn small" onClick={() => setView((v) => ({ ...v, filter: "all" }))}>
                    Show all documents
                  </button>
                </Empty>
              ) : (
                <DocumentTable
                  rows={shown}
                  view={view}
                  onSort={(column) => setView((v) => toggleSort(v, column))}
                  onDelete={async (row) => {
                    await api.deleteDocument(workspaceId, row.id);
                    dispatch({ type: "removed", id: row.id });
                    if (previewing?.id === row.id) setPreviewing(null);
                    if (editing?.id === row.id) setEditing(null);
                  }}
                  onRetry={async (row) => {
                    dispatch({ type: "retried", doc: await api.retryDocument(workspaceId, row.id) });
                  }}
                  onPreview={(row) => setPreviewing({ workspaceId, id: row.id, name: row.name })}
                  onMetadata={(row) => setEditing({ workspaceId, id: row.id, name: row.name })}
                />
              )}
              {editing?.workspaceId === workspaceId && editingRow && (
                <MetadataEditor
                  key={editing.id}
                  workspaceId={workspaceId}
                  documentId={editing.id}
                  name={editingRow.name}
                  metadata={editingRow.metadata}
                  suggestions={suggestions}
                  onSaved={(doc) => dispatch({ type: "metadata", id: doc.id, metadata: userMetadata(doc.metadata) })}
                  onClose={closeEditor}
                />
              )}
              {previewing?.workspaceId === workspaceId && (
                <DocumentPreview
                  key={previewing.id}
                  workspaceId={workspaceId}
                  documentId={previewing.id}
                  name={previewing.name}
                  onClose={closePreview}
                />
              )}
            </>
          )}
          <UsagePanel workspaceId={workspaceId} />
        </>
      )}
    </div>
  );
}
