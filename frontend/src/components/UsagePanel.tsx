import { ApiError } from "../api/errors";
import type { DailyAllowanceOut, UsageReportOut } from "../api/types";
import { useServices } from "../app/context";
import { formatCount, formatUsd } from "../lib/format";
import { useAsync } from "../lib/hooks";
import { ErrorNote, Loading } from "./common";
import "./usage-panel.css";

/**
 * Tokens and estimated cost of chatting over the last 30 days, by model: the caller's own (`GET /usage`),
 * or, for its owner, one workspace's (`GET /workspaces/{id}/usage`). The workspace view is its owner's
 * only: for anyone it was shared with the server answers 404 and the panel shows nothing. When the deployment
 * bounds what one user may spend a day, the caller's own view also shows how much of today's allowance is used.
 */
export function UsagePanel({ workspaceId }: { workspaceId?: string }) {
  const { api } = useServices();
  const report = useAsync<UsageReportOut>(
    () => (workspaceId ? api.workspaceUsage(workspaceId) : api.usage()),
    [api, workspaceId],
  );
  const data = report.data;
  if (workspaceId && report.error instanceof ApiError && report.error.status === 404) return null;
  return (
    <section className="card usage-panel" aria-labelledby="usage-title" data-testid="usage-panel">
      <h2 id="usage-title">{workspaceId ? "Workspace usage" : "Your usage"}</h2>
      {report.loading && !data && <Loading label="Loading usage…" />}
      {report.error !== null && <ErrorNote title="Could not load usage" error={report.error} onRetry={report.reload} />}
      {data && (
        <>
          <p className="muted small">
            {data.since} – {data.until} (UTC) · estimated from list prices of {data.prices_as_of}
          </p>
          {data.allowance && <AllowanceLine allowance={data.allowance} />}
          <p data-testid="usage-total">
            <strong>{formatUsd(data.total.cost_usd)}</strong> for {formatCount(data.total.requests)} answers ·{" "}
            {formatCount(data.total.prompt_tokens)} tokens in · {formatCount(data.total.completion_tokens)} tokens out
          </p>
          {data.by_model.length === 0 ? (
            <p className="muted">No answers in this period.</p>
          ) : (
            <table className="table usage-table" data-testid="usage-table">
              <caption className="sr-only">Usage by model</caption>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col" className="num">
                    Answers
                  </th>
                  <th scope="col" className="num">
                    Tokens in
                  </th>
                  <th scope="col" className="num">
                    Tokens out
                  </th>
                  <th scope="col" className="num">
                    Est. cost
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.by_model.map((row) => (
                  <tr key={row.model} data-testid="usage-row">
                    <th scope="row">{row.model}</th>
                    <td className="num">{formatCount(row.requests)}</td>
                    <td className="num">{formatCount(row.prompt_tokens)}</td>
                    <td className="num">{formatCount(row.completion_tokens)}</td>
                    <td className="num">{formatUsd(row.cost_usd)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

/** "N of M tokens used today" and what is left; once it is all spent, when it renews (00:00 UTC). */
function AllowanceLine({ allowance }: { allowance: DailyAllowanceOut }) {
  const { daily_token_budget: budget, tokens_today: used, tokens_left_today: left } = allowance;
  return (
    <div data-testid="usage-allowance">
      <p className={left === 0 ? "warn" : undefined}>
        <strong>{formatCount(used)}</strong> of {formatCount(budget)} tokens used today ·{" "}
        {left === 0 ? "none left until 00:00 UTC" : `${formatCount(left)} left`}
      </p>
      <meter min={0} max={budget} value={Math.min(used, budget)} aria-label="Today's token allowance used" />
    </div>
  );
}
