/** What the Summaries screen says about jobs, as pure functions. */
import type { PointKind, SummaryJobOut, SummaryKind, SummaryPointOut, SummaryStatus } from "../api/summaries";

export const KIND_LABELS: Record<SummaryKind, string> = {
  pros_cons: "Pros and cons",
  themes: "Themes",
  custom: "Custom",
};

export const STATUS_LABELS: Record<SummaryStatus, string> = {
  queued: "queued",
  running: "running",
  succeeded: "done",
  failed: "failed",
  cancelled: "cancelled",
  no_documents: "no documents",
};

/** The groups of a result, in reading order. */
export const POINT_GROUPS: { kind: PointKind; label: string }[] = [
  { kind: "pro", label: "Pros" },
  { kind: "con", label: "Cons" },
  { kind: "theme", label: "Themes" },
  { kind: "point", label: "Points" },
];

/** Polling interval while a job is queued or running. */
export const POLL_MS = 2_000;

export function isActive(job: Pick<SummaryJobOut, "status">): boolean {
  return job.status === "queued" || job.status === "running";
}

/** Whether any job still moves (the list is polled while one does). */
export function anyActive(jobs: readonly Pick<SummaryJobOut, "status">[] | undefined): boolean {
  return (jobs ?? []).some(isActive);
}

/** "Pros and cons of product = X" */
export function jobTitle(job: Pick<SummaryJobOut, "kind" | "filter_description">): string {
  const what = job.filter_description && job.filter_description !== "all documents" ? job.filter_description : "all documents";
  return `${KIND_LABELS[job.kind]} of ${what}`;
}

const count = (n: number, one: string, many: string) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** "120 of 2,000 documents read · 6 of 100 batches (1 failed)" */
export function progressText(job: Pick<SummaryJobOut, "status" | "progress">): string {
  const p = job.progress;
  if (p.documents_total === 0) {
    if (job.status === "queued") return "Waiting to start…";
    if (job.status === "running") return "Selecting documents…";
    return "No documents read.";
  }
  const parts = [`${p.documents_read.toLocaleString()} of ${count(p.documents_total, "document", "documents")} read`];
  if (p.batches_total > 0) {
    let batches = `${p.batches_done.toLocaleString()} of ${count(p.batches_total, "batch", "batches")}`;
    if (p.batches_failed > 0) batches += ` (${p.batches_failed.toLocaleString()} failed)`;
    parts.push(batches);
  }
  return parts.join(" · ");
}

/** "mentioned in 3 documents" */
export function mentionedIn(point: Pick<SummaryPointOut, "count">): string {
  return `mentioned in ${count(point.count, "document", "documents")}`;
}

/** The points of a result by group, empty groups left out. */
export function groupPoints(points: readonly SummaryPointOut[]): { kind: PointKind; label: string; points: SummaryPointOut[] }[] {
  return POINT_GROUPS.map((g) => ({ ...g, points: points.filter((p) => p.kind === g.kind) })).filter((g) => g.points.length > 0);
}

export interface SchedulePreset {
  value: string;
  label: string;
}

/** Common schedules (EventBridge Scheduler syntax, UTC); anything else is typed as an expression. */
export const SCHEDULE_PRESETS: SchedulePreset[] = [
  { value: "rate(1 hour)", label: "Every hour" },
  { value: "cron(0 6 * * ? *)", label: "Every day at 06:00 UTC" },
  { value: "cron(0 6 ? * MON *)", label: "Every Monday at 06:00 UTC" },
];

/** A schedule in words when it is a preset, else the expression itself. */
export function describeSchedule(schedule: string | null): string {
  if (!schedule) return "Once";
  return SCHEDULE_PRESETS.find((p) => p.value === schedule)?.label ?? schedule;
}

/** The server's 422 for an unscheduled job whose filter selects nothing. */
export function isNoDocuments(message: string): boolean {
  return /no documents match/i.test(message);
}

const EVALUATION_LABELS: Record<string, string> = {
  faithfulness: "Faithfulness",
  citation_validity: "Citation validity",
  coverage: "Coverage",
};

/** `{"faithfulness": 0.95}` -> [["Faithfulness", "0.95"]] */
export function evaluationFacts(evaluation: Record<string, number | undefined>): [string, string][] {
  return Object.entries(evaluation)
    .filter((e): e is [string, number] => typeof e[1] === "number")
    .map(([k, v]) => [EVALUATION_LABELS[k] ?? k.replace(/_/g, " "), v.toFixed(2)]);
}
