import { type ReactNode, useId, useState } from "react";
import { describeError } from "../../api/errors";
import type { SummaryCitationOut, SummaryJobOut, SummaryResultOut } from "../../api/summaries";
import { ConfirmButton } from "../../components/common";
import { formatCount, formatDate, formatUsd } from "../../lib/format";
import {
  describeSchedule,
  evaluationFacts,
  groupPoints,
  isActive,
  jobTitle,
  KIND_LABELS,
  mentionedIn,
  progressText,
  STATUS_LABELS,
} from "../../state/summaries";
import "./summaries.css";

/** The result: Pros / Cons / Themes / Points, each point with how many documents mention it and its sources. */
function SummaryResult({ result, onOpen }: { result: SummaryResultOut; onOpen: (c: SummaryCitationOut) => void }) {
  const id = useId();
  const groups = groupPoints(result.points);
  const evaluation = evaluationFacts(result.evaluation ?? {});
  return (
    <div className="summary-result" data-testid="summary-result">
      <p className="muted small">
        From {formatCount(result.documents_read)} {result.documents_read === 1 ? "document" : "documents"}
        {evaluation.length > 0 && ` · ${evaluation.map(([k, v]) => `${k} ${v}`).join(" · ")}`}
      </p>
      {groups.length === 0 && <p className="muted">The documents gave no points to report.</p>}
      {groups.map((g) => (
        <section key={g.kind} className={`summary-group summary-group-${g.kind}`} aria-labelledby={`${id}-${g.kind}`} data-testid="summary-group" data-kind={g.kind}>
          <h4 id={`${id}-${g.kind}`}>{g.label}</h4>
          <ul className="summary-points">
            {g.points.map((p, i) => (
              <li key={i} className="summary-point" data-testid="summary-point" data-kind={p.kind}>
                <p className="summary-point-text">{p.text}</p>
                <p className="summary-point-meta small">
                  <span className="muted" data-testid="summary-point-count">
                    {mentionedIn(p)}
                  </span>
                  {p.citations.length > 0 && (
                    <>
                      <span className="muted"> · Sources:</span>
                      <span className="summary-citations">
                        {p.citations.map((c) => (
                          <button
                            key={c.document_id}
                            type="button"
                            className="chip"
                            title={`Open the preview of ${c.document_name || c.document_id}`}
                            onClick={() => onOpen(c)}
                            data-testid="summary-citation"
                            data-document-id={c.document_id}
                          >
                            {c.document_name || c.document_id}
                          </button>
                        ))}
                      </span>
                    </>
                  )}
                </p>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

/**
 * One summary job: what it reads, its status and live progress (documents read of total, batches), its cost and
 * schedule, its result, and what can be done with it (cancel while it runs; run again or delete once finished).
 */
export function SummaryJobCard({
  job,
  onCancel,
  onDelete,
  onRunAgain,
  onOpenDocument,
  preview,
}: {
  job: SummaryJobOut;
  onCancel: (job: SummaryJobOut) => Promise<void>;
  onDelete: (job: SummaryJobOut) => Promise<void>;
  onRunAgain: (job: SummaryJobOut) => Promise<void>;
  onOpenDocument: (job: SummaryJobOut, citation: SummaryCitationOut) => void;
  /** The document preview opened from this job's citations, if any. */
  preview?: ReactNode;
}) {
  const id = useId();
  const [busy, setBusy] = useState<"cancel" | "run" | null>(null);
  const [error, setError] = useState<string | null>(null);
  const active = isActive(job);
  const title = jobTitle(job);
  const p = job.progress;
  const act = async (what: "cancel" | "run", fn: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
    }
  };
  const showProgress = active || p.documents_total > 0;
  return (
    <article
      className="card summary-job"
      aria-labelledby={`${id}-title`}
      data-testid="summary-job"
      data-job-id={job.id}
      data-status={job.status}
    >
      <header className="summary-job-head">
        <h3 id={`${id}-title`}>
          <span className="summary-kind">{KIND_LABELS[job.kind]}</span>{" "}
          <span className="summary-filter" data-testid="summary-filter">
            {job.filter_description || "all documents"}
          </span>
        </h3>
        <span className={`badge badge-${job.status}`} data-testid="summary-status" data-status={job.status}>
          {STATUS_LABELS[job.status]}
        </span>
      </header>
      {showProgress && (
        <div className="progress-line summary-progress">
          <progress
            max={Math.max(1, p.documents_total)}
            value={p.documents_total > 0 ? p.documents_read : undefined}
            aria-label={`Progress of ${title}`}
            aria-valuetext={progressText(job)}
            data-testid="summary-progress"
          />
          <span className="small muted" data-testid="summary-progress-text">
            {progressText(job)}
          </span>
        </div>
      )}
      <dl className="facts summary-facts">
        <Fact label="Language">{job.language}</Fact>
        <Fact label="Points">up to {job.max_points}</Fact>
        <Fact label="Schedule">
          <span data-testid="summary-schedule">{describeSchedule(job.schedule)}</span>
        </Fact>
        {job.schedule && (
          <Fact label="Next run">
            <span data-testid="summary-next-run">{formatDate(job.next_run_at)}</span>
          </Fact>
        )}
        <Fact label="Runs">{job.runs}</Fact>
        <Fact label="Cost">
          <span data-testid="summary-cost">
            {formatUsd(job.cost_usd)} · {formatCount(job.prompt_tokens + job.completion_tokens)} tokens
          </span>
        </Fact>
        <Fact label={job.finished_at ? "Finished" : job.started_at ? "Started" : "Created"}>
          {formatDate(job.finished_at ?? job.started_at ?? job.created_at)}
        </Fact>
      </dl>
      {job.kind === "custom" && job.instructions && (
        <p className="small summary-instructions">
          <strong>Instructions:</strong> {job.instructions}
        </p>
      )}
      {job.status === "no_documents" && (
        <p className="warn" data-testid="summary-no-documents-run">
          No documents matched the filter{job.schedule ? " yet: the next scheduled run looks again" : ""}.
        </p>
      )}
      {p.batches_failed > 0 && (
        <p className="warn small" data-testid="summary-failed-batches">
          {p.batches_failed === 1 ? "1 batch" : `${p.batches_failed} batches`} failed after retries: the documents in{" "}
          {p.batches_failed === 1 ? "it are" : "them are"} not in this summary.
        </p>
      )}
      {job.error && (
        <p className="error-text" data-testid="summary-job-error">
          {job.error}
        </p>
      )}
      {job.result && <SummaryResult result={job.result} onOpen={(c) => onOpenDocument(job, c)} />}
      {preview}
      <div className="row wrap summary-actions">
        {active ? (
          <button
            type="button"
            className="btn danger-ghost small"
            disabled={busy !== null}
            onClick={() => void act("cancel", () => onCancel(job))}
            aria-label={`Cancel summary: ${title}`}
            data-testid="summary-cancel"
          >
            {busy === "cancel" ? "Cancelling…" : "Cancel"}
          </button>
        ) : (
          <>
            <button
              type="button"
              className="btn small"
              disabled={busy !== null}
              onClick={() => void act("run", () => onRunAgain(job))}
              aria-label={`Run again: ${title}`}
              title="Reads the documents new or changed since the last run and merges them into the result"
              data-testid="summary-run-again"
            >
              {busy === "run" ? "Starting…" : "Run again"}
            </button>
            <ConfirmButton
              label={`Delete summary: ${title}`}
              question={`Delete this summary${job.schedule ? " and its schedule" : ""}?`}
              onConfirm={() => onDelete(job)}
              testId="summary-delete"
            />
          </>
        )}
        {error && (
          <span className="error-text small" role="alert">
            {error}
          </span>
        )}
      </div>
    </article>
  );
}
