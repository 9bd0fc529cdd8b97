/**
 * A metadata editor's rows as pure data: one row per key, its type chosen by the user, its value as typed.
 * `metadataFrom` turns the rows into metadata (for what is being added), `metadataPatch` into the JSON merge
 * patch that changes a document's metadata (a removed or renamed key is sent as null).
 */
import { KEY_PATTERN, METADATA_LIMITS, type MetadataValue, RESERVED_KEYS, type UserMetadata } from "../api/metadata";
import { fieldErrors, subField, topField } from "../lib/fieldErrors";

export type MetadataType = "text" | "number" | "boolean" | "date" | "list";

export const METADATA_TYPES: { value: MetadataType; label: string }[] = [
  { value: "text", label: "Text" },
  { value: "number", label: "Number" },
  { value: "boolean", label: "Yes/no" },
  { value: "date", label: "Date" },
  { value: "list", label: "List" },
];

export interface MetadataEntry {
  /** Local id (React key, error lookup). */
  id: string;
  key: string;
  type: MetadataType;
  /** As typed: a list is comma-separated, yes/no is "true" or "false". */
  value: string;
  /** The key this row had when it was loaded (null: a new row), so a rename removes the old key. */
  origin: string | null;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

let counter = 0;
function entryId(): string {
  counter += 1;
  return `meta-${counter}`;
}

/** A date (`2024-05-01`, a real day) or a date-time with an offset, as the server accepts them. */
export function isIsoDate(text: string): boolean {
  const t = text.trim();
  if (DATE.test(t)) {
    const d = new Date(`${t}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === t;
  }
  return DATE_TIME.test(t) && !Number.isNaN(Date.parse(t.replace(" ", "T")));
}

/** The type a stored value shows as. */
export function typeOf(value: MetadataValue): MetadataType {
  if (Array.isArray(value)) return "list";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return "number";
  return isIsoDate(value) ? "date" : "text";
}

/** A value as the editor shows it. */
export function valueText(value: MetadataValue): string {
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

/** A value as a chip reads: yes/no, lists comma-separated. */
export function displayValue(value: MetadataValue): string {
  if (typeof value === "boolean") return value ? "yes" : "no";
  return valueText(value);
}

export function newEntry(patch: Partial<MetadataEntry> = {}): MetadataEntry {
  return { id: entryId(), key: "", type: "text", value: "", origin: null, ...patch };
}

export function entriesFrom(metadata: UserMetadata): MetadataEntry[] {
  return Object.entries(metadata)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => newEntry({ key, type: typeOf(value), value: valueText(value), origin: key }));
}

/** A row whose type changed: the value is carried over where it still makes sense. */
export function withType(entry: MetadataEntry, type: MetadataType): MetadataEntry {
  if (type === entry.type) return entry;
  let value = entry.value;
  if (type === "boolean") value = /^(true|yes|1)$/i.test(value.trim()) ? "true" : "false";
  else if (entry.type === "boolean") value = "";
  else if (type === "number" && !Number.isFinite(Number(value.trim()))) value = "";
  else if (type === "date" && !isIsoDate(value)) value = "";
  return { ...entry, type, value };
}

export function isBlank(entry: MetadataEntry): boolean {
  return entry.key.trim() === "" && (entry.value.trim() === "" || entry.type === "boolean");
}

/** The problem with a key, or null. */
export function keyProblem(key: string): string | null {
  if (key === "") return "Give this field a name.";
  if (key.length > METADATA_LIMITS.maxKeyChars) return `Names are at most ${METADATA_LIMITS.maxKeyChars} characters.`;
  if (!KEY_PATTERN.test(key)) return "Names start with a letter and hold only letters, digits and _.";
  if (RESERVED_KEYS.includes(key)) return `“${key}” is a system field and cannot be set.`;
  return null;
}

/** The typed value of a row, or the reason it has none. */
export function parseEntry(entry: MetadataEntry): { value: MetadataValue } | { error: string } {
  const text = entry.value.trim();
  switch (entry.type) {
    case "number": {
      const n = Number(text);
      if (text === "" || !Number.isFinite(n)) return { error: "Enter a number." };
      return { value: n };
    }
    case "boolean":
      return { value: text === "true" };
    case "date":
      if (!isIsoDate(text)) return { error: "Enter a date as YYYY-MM-DD." };
      return { value: text };
    case "list": {
      const items = text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      if (items.length > METADATA_LIMITS.maxListItems) return { error: `Lists hold at most ${METADATA_LIMITS.maxListItems} items.` };
      if (items.some((s) => s.length > METADATA_LIMITS.maxListItemChars)) {
        return { error: `List items are at most ${METADATA_LIMITS.maxListItemChars} characters.` };
      }
      return { value: items };
    }
    case "text":
      if (entry.value.length > METADATA_LIMITS.maxStringChars) {
        return { error: `Text is at most ${METADATA_LIMITS.maxStringChars} characters.` };
      }
      return { value: entry.value };
  }
}

export interface MetadataOutcome {
  metadata: UserMetadata;
  /** Problems by row id. */
  errors: Record<string, string>;
  /** A problem with the whole set (too many keys). */
  error: string | null;
}

/** The metadata the rows describe; blank rows are skipped. */
export function metadataFrom(entries: MetadataEntry[]): MetadataOutcome {
  const metadata: UserMetadata = {};
  const errors: Record<string, string> = {};
  for (const entry of entries) {
    if (isBlank(entry)) continue;
    const key = entry.key.trim();
    const problem = keyProblem(key);
    if (problem) {
      errors[entry.id] = problem;
      continue;
    }
    if (key in metadata) {
      errors[entry.id] = `“${key}” is already set above.`;
      continue;
    }
    const parsed = parseEntry(entry);
    if ("error" in parsed) errors[entry.id] = parsed.error;
    else metadata[key] = parsed.value;
  }
  const count = Object.keys(metadata).length;
  const error = count > METADATA_LIMITS.maxKeys ? `At most ${METADATA_LIMITS.maxKeys} fields (this has ${count}).` : null;
  return { metadata, errors, error };
}

function sameValue(a: MetadataValue | undefined, b: MetadataValue): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return a === b;
}

export interface PatchOutcome extends MetadataOutcome {
  /** The merge patch: changed and new keys with their values, removed keys as null. Empty: nothing changed. */
  patch: Record<string, MetadataValue | null>;
}

/** What to send to change `original` into what the rows say. */
export function metadataPatch(original: UserMetadata, entries: MetadataEntry[]): PatchOutcome {
  const outcome = metadataFrom(entries);
  const patch: Record<string, MetadataValue | null> = {};
  // A row with a problem keeps its original key: nothing is removed by mistake while it is being fixed.
  const kept = new Set(entries.filter((e) => outcome.errors[e.id] !== undefined && e.origin).map((e) => e.origin as string));
  for (const key of Object.keys(original)) {
    if (!(key in outcome.metadata) && !kept.has(key)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(outcome.metadata)) {
    if (!sameValue(original[key], value)) patch[key] = value;
  }
  return { ...outcome, patch };
}

/** Keys seen on documents, with their types and some values, for suggestions. */
export interface KeyInfo {
  key: string;
  types: MetadataType[];
  values: string[];
}

const MAX_SUGGESTED_VALUES = 50;

/** The keys set on `documents`' metadata, sorted, each with its types and up to 50 distinct values. */
export function keysSeen(documents: Iterable<UserMetadata>): KeyInfo[] {
  const seen = new Map<string, { types: Set<MetadataType>; values: Set<string> }>();
  for (const metadata of documents) {
    for (const [key, value] of Object.entries(metadata)) {
      let info = seen.get(key);
      if (!info) {
        info = { types: new Set(), values: new Set() };
        seen.set(key, info);
      }
      info.types.add(typeOf(value));
      for (const v of Array.isArray(value) ? value : [value]) {
        if (info.values.size < MAX_SUGGESTED_VALUES) info.values.add(String(v));
      }
    }
  }
  return [...seen.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, info]) => ({ key, types: [...info.types].sort(), values: [...info.values].sort() }));
}

/**
 * A server message (422) about metadata, placed at the rows it names (`metadata.rating: ...`); what names no
 * row is `general`. Null when the message is not about metadata at all.
 */
export function placeServerError(
  message: string,
  entries: MetadataEntry[],
): { errors: Record<string, string>; general: string | null } | null {
  const parts = fieldErrors(message).filter((e) => topField(e.path) === "metadata");
  if (parts.length === 0) return null;
  const errors: Record<string, string> = {};
  const general: string[] = [];
  for (const part of parts) {
    const key = subField(part.path, "metadata");
    const entry = key ? entries.find((e) => e.key.trim() === key) : undefined;
    if (entry) errors[entry.id] = part.message;
    else general.push(`${part.path}: ${part.message}`);
  }
  return { errors, general: general.length ? general.join("; ") : null };
}
