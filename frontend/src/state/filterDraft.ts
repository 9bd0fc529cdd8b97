/**
 * The filter builder's rows as pure data, and the filter JSON they make (`quarry/filters.py` defines the
 * language): rows are ANDed (several rows on one key join into one condition object), or with "match any"
 * each row is one branch of `{"$or": [...]}`.
 */
import { KEY_PATTERN, RESERVED_KEYS, type FilterCondition, type FilterGroup, type FilterJson, type FilterScalar } from "../api/metadata";
import { isIsoDate, type KeyInfo } from "./metadataDraft";

export type FilterOp = "eq" | "in" | "gte" | "lte" | "exists" | "missing";

export const FILTER_OPS: { value: FilterOp; label: string }[] = [
  { value: "eq", label: "is" },
  { value: "in", label: "is one of" },
  { value: "gte", label: ">=" },
  { value: "lte", label: "<=" },
  { value: "exists", label: "exists" },
  { value: "missing", label: "does not exist" },
];

export interface FilterRow {
  id: string;
  key: string;
  op: FilterOp;
  /** As typed; "is one of" takes values separated by commas. */
  value: string;
}

export interface FilterDraft {
  rows: FilterRow[];
  /** OR of the rows instead of AND. */
  matchAny: boolean;
}

let counter = 0;
export function newRow(patch: Partial<FilterRow> = {}): FilterRow {
  counter += 1;
  return { id: `cond-${counter}`, key: "", op: "eq", value: "", ...patch };
}

export const EMPTY_DRAFT: FilterDraft = { rows: [], matchAny: false };

export function needsValue(op: FilterOp): boolean {
  return op !== "exists" && op !== "missing";
}

/** Whether a row's problem is with its key (else with its value). */
export function keyIsWrong(row: FilterRow): boolean {
  return !KEY_PATTERN.test(row.key.trim());
}

/** A row nobody filled in yet: ignored. */
export function isBlankRow(row: FilterRow): boolean {
  return row.key.trim() === "" && (row.value.trim() === "" || !needsValue(row.op));
}

/** A value typed for key `info`: by the key's known type, else numbers and true/false are typed. */
export function typedValue(text: string, info: KeyInfo | undefined): FilterScalar | { error: string } {
  const t = text.trim();
  if (t === "") return { error: "Enter a value." };
  const types = info?.types ?? [];
  const only = types.length === 1 ? types[0] : undefined;
  if (only === "number") {
    const n = Number(t);
    return Number.isFinite(n) ? n : { error: `“${info?.key ?? ""}” holds numbers: enter a number.` };
  }
  if (only === "boolean") {
    if (/^(yes|true)$/i.test(t)) return true;
    if (/^(no|false)$/i.test(t)) return false;
    return { error: `“${info?.key ?? ""}” is yes or no.` };
  }
  if (only === "text" || only === "list" || only === "date" || types.length > 1) return t;
  if (/^(true|false)$/.test(t)) return t === "true";
  const n = Number(t);
  return Number.isFinite(n) && /^-?[\d.]+(e[+-]?\d+)?$/i.test(t) ? n : t;
}

/** A range bound: a number or a date. */
function bound(text: string): FilterScalar | { error: string } {
  const t = text.trim();
  if (t === "") return { error: "Enter a number or a date." };
  const n = Number(t);
  if (Number.isFinite(n) && /^-?[\d.]+(e[+-]?\d+)?$/i.test(t)) return n;
  if (isIsoDate(t)) return t;
  return { error: "Compare with a number or a date (YYYY-MM-DD)." };
}

type Cond = { op: "eq" | "in" | "gte" | "lte" | "exists"; value: FilterScalar | FilterScalar[] };

function rowCondition(row: FilterRow, info: KeyInfo | undefined): Cond | { error: string } {
  const key = row.key.trim();
  if (key === "") return { error: "Choose a key." };
  if (!KEY_PATTERN.test(key)) return { error: "Keys start with a letter and hold only letters, digits and _." };
  switch (row.op) {
    case "exists":
      return { op: "exists", value: true };
    case "missing":
      return { op: "exists", value: false };
    case "eq": {
      const v = typedValue(row.value, info);
      return typeof v === "object" ? v : { op: "eq", value: v };
    }
    case "in": {
      const parts = row.value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      if (parts.length === 0) return { error: "Enter one or more values, separated by commas." };
      const values: FilterScalar[] = [];
      for (const p of parts) {
        const v = typedValue(p, info);
        if (typeof v === "object") return v;
        values.push(v);
      }
      return { op: "in", value: values };
    }
    case "gte":
    case "lte": {
      if (RESERVED_KEYS.includes(key)) return { error: `“${key}” takes “is” and “is one of” only.` };
      const v = bound(row.value);
      if (typeof v === "object") return v;
      // A number bound matches number fields only, a date bound date fields only (quarry/filters.py).
      const only = info?.types.length === 1 ? info.types[0] : undefined;
      if (only === "number" && typeof v !== "number") return { error: `“${key}” holds numbers: compare with a number.` };
      if (only === "date" && typeof v === "number") return { error: `“${key}” holds dates: compare with a date (YYYY-MM-DD).` };
      return { op: row.op, value: v };
    }
  }
}

function groupOf(conds: [string, Cond][]): FilterGroup {
  const byKey = new Map<string, Cond[]>();
  for (const [key, c] of conds) byKey.set(key, [...(byKey.get(key) ?? []), c]);
  const group: FilterGroup = {};
  for (const [key, cs] of byKey) {
    const only = cs[0] as Cond;
    if (cs.length === 1 && only.op === "eq") {
      group[key] = only.value;
    } else {
      group[key] = Object.fromEntries(cs.map((c) => [c.op, c.value]));
    }
  }
  return group;
}

export interface FilterOutcome {
  /** The filter, or null when no row is filled in (or one has a problem). */
  filter: FilterJson | null;
  /** Problems by row id. */
  errors: Record<string, string>;
}

/** The filter JSON the draft describes. */
export function buildFilter(draft: FilterDraft, keys: KeyInfo[] = []): FilterOutcome {
  const info = new Map(keys.map((k) => [k.key, k]));
  const errors: Record<string, string> = {};
  const conds: [string, string, Cond][] = [];
  for (const row of draft.rows) {
    if (isBlankRow(row)) continue;
    const key = row.key.trim();
    const c = rowCondition(row, info.get(key));
    if ("error" in c) {
      errors[row.id] = c.error;
      continue;
    }
    if (!draft.matchAny && conds.some(([, k, other]) => k === key && other.op === c.op)) {
      errors[row.id] = `“${key}” already has this kind of condition above: choose “match any” or change one.`;
      continue;
    }
    conds.push([row.id, key, c]);
  }
  if (Object.keys(errors).length > 0 || conds.length === 0) return { filter: null, errors };
  if (!draft.matchAny || conds.length === 1) return { filter: groupOf(conds.map(([, k, c]) => [k, c])), errors };
  return { filter: { $or: conds.map(([, k, c]) => groupOf([[k, c]])) }, errors };
}

export function hasProblems(outcome: FilterOutcome): boolean {
  return Object.keys(outcome.errors).length > 0;
}

function scalarText(v: unknown): string {
  if (typeof v === "boolean") return v ? "yes" : "no";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function describeCondition(key: string, cond: FilterCondition): string[] {
  if (Array.isArray(cond)) return [`${key} in (${cond.map(scalarText).join(", ")})`];
  if (typeof cond !== "object" || cond === null) return [`${key} = ${scalarText(cond)}`];
  const symbol: Record<string, string> = { gt: ">", gte: ">=", lt: "<", lte: "<=" };
  return Object.entries(cond).map(([op, v]) => {
    if (op === "exists") return v ? `${key} is set` : `${key} is not set`;
    if (op === "in") return `${key} in (${(v as unknown[]).map(scalarText).join(", ")})`;
    if (op === "eq") return `${key} = ${scalarText(v)}`;
    return `${key} ${symbol[op] ?? op} ${scalarText(v)}`;
  });
}

function describeGroup(group: FilterGroup): string {
  return Object.entries(group)
    .flatMap(([key, cond]) => describeCondition(key, cond))
    .join(" and ");
}

/** The filter in words, as the server's `Filter.describe()` writes it (`product = X and rating >= 4`), yes/no for booleans. */
export function describeFilter(filter: FilterJson | null | undefined): string {
  if (!filter) return "all documents";
  const branches = (filter as { $or?: unknown }).$or;
  if (Array.isArray(branches)) {
    const parts = (branches as FilterGroup[]).map(describeGroup).filter(Boolean);
    return parts.length ? parts.join(" or ") : "all documents";
  }
  return describeGroup(filter as FilterGroup) || "all documents";
}
