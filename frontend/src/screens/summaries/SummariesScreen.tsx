import { useCallback, useEffect, useState } from "react";
import type { SummaryJobOut } from "../../api/summaries";
import { useServices } from "../../app/context";
import { navigate } from "../../app/router";
import { Empty, ErrorNote, Loading } from "../../components/common";
import { WorkspacePicker } from "../../components/WorkspacePicker";
import { useAsync } from "../../lib/hooks";
import { useMetadataKeys } from "../../lib/useMetadataKeys";
import { anyActive, isActive, jobTitle, POLL_MS, STATUS_LABELS } from "../../state/summaries";
import { DocumentPreview } from "../documents/DocumentPreview";
import { SummaryForm } from "./SummaryForm";
import { SummaryJobCard } from "./SummaryJobCard";
import "./summaries.css";

/**
 * Summary jobs of a workspace: a form to start one, and the jobs (newest first) with live progress. While a
 * job is queued or running the list is read again every `pollMs` (2 s), each read after the previous answered.
 */
export function SummariesScreen({ workspaceId, pollMs = POLL_MS }: { workspaceId: string | null; pollMs?: number }) {
  const { api } = useServices();
  const workspaces = useAsync(() => api.listWorkspaces(), [api]);
  const jobs = useAsync(
    async () => (workspaceId ? api.listSummaries(workspaceId) : ([] as SummaryJobOut[])),
    [api, workspaceId],
  );
  const keys = useMetadataKeys(workspaceId);
  const [previewing, setPreviewing] = useState<{ jobId: string; documentId: string; name: string } | null>(null);
  const closePreview = useCallback(() => setPreviewing(null), []);
  const active = anyActive(jobs.data);
  const { reload, setData, loading } = jobs;

  // A job that finishes while the screen is open is announced (the list itself is not a live region: it
  // changes every 2 s while a job runs). Derived while rendering, from the previous listing.
  const [seen, setSeen] = useState<SummaryJobOut[] | undefined>(undefined);
  const [announcement, setAnnouncement] = useState("");
  if (jobs.data !== seen) {
    setSeen(jobs.data);
    const before = new Map((seen ?? []).map((j) => [j.id, j]));
    const done = (jobs.data ?? []).filter((j) => {
      const old = before.get(j.id);
      return old !== undefined && isActive(old) && !isActive(j);
    });
    if (done.length > 0) setAnnouncement(done.map((j) => `Summary ${STATUS_LABELS[j.status]}: ${jobTitle(j)}.`).join(" "));
  }

  useEffect(() => {
    const first = workspaces.data?.[0];
    if (!workspaceId && first) navigate({ screen: "summaries", workspaceId: first.id }, { replace: true });
  }, [workspaceId, workspaces.data]);

  // Live progress: the next read once the last one answered, while something still moves.
  useEffect(() => {
    if (!active || loading) return;
    const t = setTimeout(reload, pollMs);
    return () => clearTimeout(t);
  }, [active, loading, reload, pollMs]);

  const replace = (job: SummaryJobOut) =>
    setData((old) => (old?.some((j) => j.id === job.id) ? old.map((j) => (j.id === job.id ? job : j)) : [job, ...(old ?? [])]));
  const remove = (jobId: string) => {
    setData((old) => old?.filter((j) => j.id !== jobId));
    if (previewing?.jobId === jobId) setPreviewing(null);
  };

  if (workspaces.loading && !workspaces.data) return <Loading label="Loading workspaces…" />;
  if (workspaces.error !== null) return <ErrorNote title="Could not load workspaces" error={workspaces.error} onRetry={workspaces.reload} />;
  if (workspaces.data?.length === 0) {
    return (
      <Empty title="Nothing to summarise yet">
        <a href="#/workspaces">Create a workspace</a> and add documents first.
      </Empty>
    );
  }
  const current = workspaces.data?.find((w) => w.id === workspaceId);

  return (
    <div className="page summaries-page">
      <header className="page-head">
        <h1>Summaries</h1>
        <WorkspacePicker
          workspaces={workspaces.data ?? []}
          value={workspaceId}
          onChange={(id) => navigate({ screen: "summaries", workspaceId: id })}
        />
      </header>
      {workspaceId && !current && <ErrorNote error="This workspace does not exist (any more). Pick another one." />}
      {workspaceId && current && (
        <>
          <SummaryForm workspaceId={workspaceId} keys={keys} onStarted={replace} />
          <section aria-labelledby="summary-jobs-title" className="summary-jobs">
            <h2 id="summary-jobs-title" className="section-title">
              Summaries of “{current.name}”
            </h2>
            <p className="sr-only" role="status" data-testid="summary-announcement">
              {announcement}
            </p>
            {jobs.loading && !jobs.data && <Loading label="Loading summaries…" />}
            {jobs.error !== null && (
              <ErrorNote
                title={jobs.data ? "Could not refresh the summaries" : "Could not load the summaries"}
                error={jobs.error}
                onRetry={reload}
              />
            )}
            {jobs.data?.length === 0 && (
              <Empty title="No summaries yet">
                Start one above: the pros and cons of reviews, the themes of a collection, or your own question.
              </Empty>
            )}
            {jobs.data && jobs.data.length > 0 && (
              <ol className="summary-list">
                {jobs.data.map((job) => (
                  <li key={job.id}>
                    <SummaryJobCard
                      job={job}
                      onCancel={async (j) => {
                        const out = await api.deleteSummary(workspaceId, j.id);
                        if (out) replace(out);
                        else remove(j.id);
                      }}
                      onDelete={async (j) => {
                        await api.deleteSummary(workspaceId, j.id);
                        remove(j.id);
                      }}
                      onRunAgain={async (j) => replace(await api.rerunSummary(workspaceId, j.id))}
                      onOpenDocument={(j, c) =>
                        setPreviewing({ jobId: j.id, documentId: c.document_id, name: c.document_name || c.document_id })
                      }
                      preview={
                        previewing?.jobId === job.id ? (
                          <DocumentPreview
                            key={previewing.documentId}
                            workspaceId={workspaceId}
                            documentId={previewing.documentId}
                            name={previewing.name}
                            onClose={closePreview}
                          />
                        ) : null
                      }
                    />
                  </li>
                ))}
              </ol>
            )}
          </section>
        </>
      )}
    </div>
  );
}
