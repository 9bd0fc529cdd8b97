import { useEffect, useEffectEvent, useState } from "react";
import type { WorkspaceOut } from "../../api/types";
import { useServices } from "../../app/context";
import { ConfirmButton, Empty, ErrorNote, Loading } from "../../components/common";
import { UsagePanel } from "../../components/UsagePanel";
import { formatBytes, formatCount, formatDate } from "../../lib/format";
import { useAsync } from "../../lib/hooks";
import { WorkspaceForm } from "./WorkspaceForm";
import "./workspaces.css";

const MAX_DETAIL_FETCH = 50;

/** Lists may omit counts; fill them in from the detail endpoint (bounded). */
function useCounts(workspaces: WorkspaceOut[] | undefined): Map<string, WorkspaceOut> {
  const { api } = useServices();
  const [details, setDetails] = useState(new Map<string, WorkspaceOut>());
  const fetched = useEffectEvent((id: string) => details.has(id));
  useEffect(() => {
    const missing = (workspaces ?? []).filter((w) => w.document_count === null && !fetched(w.id));
    let live = true;
    for (const w of missing.slice(0, MAX_DETAIL_FETCH)) {
      api.getWorkspace(w.id).then(
        (d) => live && setDetails((old) => new Map(old).set(d.id, d)),
        () => undefined,
      );
    }
    return () => {
      live = false;
    };
  }, [workspaces, api]);
  return details;
}

export function WorkspacesScreen() {
  const { api, models } = useServices();
  const list = useAsync(() => api.listWorkspaces(), [api]);
  const details = useCounts(list.data);
  const remove = async (id: string) => {
    await api.deleteWorkspace(id);
    list.setData((old) => old?.filter((w) => w.id !== id));
  };
  return (
    <div className="page two-col workspaces-page">
      <section aria-labelledby="ws-title">
        <header className="page-head">
          <h1 id="ws-title">Workspaces</h1>
        </header>
        {list.loading && !list.data && <Loading label="Loading workspaces…" />}
        {list.error !== null && <ErrorNote title="Could not load workspaces" error={list.error} onRetry={list.reload} />}
        {list.data?.length === 0 && <Empty title="No workspaces yet">Create one with the form to start adding documents.</Empty>}
        {list.data && list.data.length > 0 && (
          <div className="table-wrap">
            <table className="table workspace-table" data-testid="workspace-table">
              <caption className="sr-only">Your workspaces</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col" className="num">
                    Documents
                  </th>
                  <th scope="col" className="num wide-only">
                    Chunks
                  </th>
                  <th scope="col" className="num wide-only">
                    Size
                  </th>
                  <th scope="col" className="wide-only">
                    Embeddings
                  </th>
                  <th scope="col" className="wide-only">
                    Chunking
                  </th>
                  <th scope="col" className="wide-only">
                    Created
                  </th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((listed) => {
                  const w = details.get(listed.id) ?? listed;
                  return (
                    <tr key={w.id} data-testid="workspace-row" data-workspace-id={w.id}>
                      <th scope="row">
                        <a href={`#/documents/${encodeURIComponent(w.id)}`}>{w.name}</a>
                        <div className="muted small">
                          {w.hybrid ? "hybrid" : "dense only"}
                          {w.reranker ? ` · rerank: ${w.reranker}` : ""}
                        </div>
                        <div className="muted small narrow-only">
                          Chunks: {formatCount(w.chunk_count)} · {formatBytes(w.size_bytes)} · {w.embedding_model} · chunking{" "}
                          {w.chunk_size} / {w.chunk_overlap}
                        </div>
                      </th>
                      <td className="num" data-testid="workspace-document-count">
                        {formatCount(w.document_count)}
                      </td>
                      <td className="num wide-only">{formatCount(w.chunk_count)}</td>
                      <td className="num wide-only">{formatBytes(w.size_bytes)}</td>
                      <td className="small wide-only">
                        {w.embedding_model} <span className="muted">({w.dimensions}d)</span>
                      </td>
                      <td className="small wide-only">
                        {w.chunk_size} / {w.chunk_overlap}
                      </td>
                      <td className="small wide-only">{formatDate(w.created_at)}</td>
                      <td>
                        <ConfirmButton
                          label={`Delete workspace ${w.name}`}
                          question={`Delete “${w.name}”${w.document_count ? ` and its ${w.document_count} documents` : ""}? This cannot be undone.`}
                          onConfirm={() => remove(w.id)}
                          testId="workspace-delete"
                        />
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <div>
        <WorkspaceForm models={models} onCreated={(w) => list.setData((old) => [w, ...(old ?? [])])} />
        <UsagePanel />
      </div>
    </div>
  );
}
