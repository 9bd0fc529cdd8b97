/** Wire-shaped summary jobs (`SummaryJobOut`) for the Summaries tests. */
import type { SummaryJobOut, SummaryPointOut } from "../api/summaries";

export function summaryJob(patch: Partial<SummaryJobOut> = {}): SummaryJobOut {
  return {
    id: "j1",
    workspace_id: "w1",
    kind: "pros_cons",
    filter: { product: "X" },
    filter_description: "product = X",
    instructions: null,
    language: "English",
    max_points: 5,
    schedule: null,
    next_run_at: null,
    status: "queued",
    progress: { documents_total: 0, documents_read: 0, batches_total: 0, batches_done: 0, batches_failed: 0 },
    result: null,
    error: null,
    runs: 1,
    prompt_tokens: 0,
    completion_tokens: 0,
    cost_usd: 0,
    created_at: "2026-03-01T10:00:00Z",
    updated_at: "2026-03-01T10:00:00Z",
    started_at: null,
    finished_at: null,
    ...patch,
  };
}

export function point(kind: SummaryPointOut["kind"], text: string, docs: [string, string][], count = docs.length): SummaryPointOut {
  return { kind, text, count, citations: docs.map(([document_id, document_name]) => ({ document_id, document_name })) };
}
