/**
 * Which documents the table shows, and in which order: a status filter and a column sort, both pure.
 * The order never depends on when a row arrived (listing, upload or WebSocket event), so a reload
 * shows the same order as before it.
 */
import type { DocRow } from "./documents";

export type SortKey = "name" | "status" | "updated";
export type SortDirection = "ascending" | "descending";
export type StatusFilter = "all" | "processing" | "processed" | "error";

export interface DocumentView {
  sort: SortKey;
  direction: SortDirection;
  filter: StatusFilter;
}

export const DEFAULT_VIEW: DocumentView = { sort: "name", direction: "ascending", filter: "all" };

export const STATUS_FILTERS: { value: StatusFilter; label: string }[] = [
  { value: "all", label: "All" },
  { value: "processing", label: "Processing" },
  { value: "processed", label: "Processed" },
  { value: "error", label: "Failed" },
];

/** The filter a row falls under: anything not finished yet (created, uploading) counts as processing. */
export function filterOf(row: DocRow): Exclude<StatusFilter, "all"> {
  if (row.upload?.phase === "failed" || row.status === "error") return "error";
  if (row.status === "processed") return "processed";
  return "processing";
}

/** Failed first when ascending: what needs attention comes to the top. */
const STATUS_ORDER: Record<Exclude<StatusFilter, "all">, number> = { error: 0, processing: 1, processed: 2 };

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function time(row: DocRow): number {
  const t = row.updatedAt ? Date.parse(row.updatedAt) : Number.NaN;
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t; // not recorded yet: it is the newest
}

function compareBy(key: SortKey, a: DocRow, b: DocRow): number {
  if (key === "status") return STATUS_ORDER[filterOf(a)] - STATUS_ORDER[filterOf(b)];
  if (key === "updated") {
    const ta = time(a);
    const tb = time(b);
    return ta === tb ? 0 : ta < tb ? -1 : 1;
  }
  return collator.compare(a.name, b.name);
}

/** The rows to show: filtered, then sorted by the chosen column, ties by name and then id (stable everywhere). */
export function visibleRows(rows: DocRow[], view: DocumentView): DocRow[] {
  const sign = view.direction === "ascending" ? 1 : -1;
  return rows
    .filter((r) => view.filter === "all" || filterOf(r) === view.filter)
    .sort(
      (a, b) =>
        sign * compareBy(view.sort, a, b) ||
        collator.compare(a.name, b.name) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
}

export function countByFilter(rows: DocRow[]): Record<StatusFilter, number> {
  const counts: Record<StatusFilter, number> = { all: rows.length, processing: 0, processed: 0, error: 0 };
  for (const r of rows) counts[filterOf(r)] += 1;
  return counts;
}

/** Clicking a column header: a new column sorts ascending (updated: newest first); the same one flips. */
export function toggleSort(view: DocumentView, key: SortKey): DocumentView {
  if (view.sort === key) return { ...view, direction: view.direction === "ascending" ? "descending" : "ascending" };
  return { ...view, sort: key, direction: key === "updated" ? "descending" : "ascending" };
}

const SORT_KEYS: readonly SortKey[] = ["name", "status", "updated"];
const DIRECTIONS: readonly SortDirection[] = ["ascending", "descending"];
const FILTERS: readonly StatusFilter[] = STATUS_FILTERS.map((f) => f.value);
const STORAGE_KEY = "quarry.documents.view";

/** The view this tab chose before (kept across reloads), or the default; anything unreadable is ignored. */
export function loadView(storage: Pick<Storage, "getItem"> | null): DocumentView {
  try {
    const saved = JSON.parse(storage?.getItem(STORAGE_KEY) ?? "null") as Partial<Record<keyof DocumentView, unknown>> | null;
    if (!saved || typeof saved !== "object") return DEFAULT_VIEW;
    const pick = <T>(allowed: readonly T[], value: unknown, fallback: T): T =>
      allowed.includes(value as T) ? (value as T) : fallback;
    return {
      sort: pick(SORT_KEYS, saved.sort, DEFAULT_VIEW.sort),
      direction: pick(DIRECTIONS, saved.direction, DEFAULT_VIEW.direction),
      filter: pick(FILTERS, saved.filter, DEFAULT_VIEW.filter),
    };
  } catch {
    return DEFAULT_VIEW;
  }
}

export function saveView(storage: Pick<Storage, "setItem"> | null, view: DocumentView): void {
  try {
    storage?.setItem(STORAGE_KEY, JSON.stringify(view));
  } catch {
    // Storage full or blocked: the choice just does not survive a reload.
  }
}
