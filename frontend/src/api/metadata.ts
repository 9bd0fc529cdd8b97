/**
 * User metadata on documents and the filter language that selects on it (`quarry.metadata`,
 * `quarry.filters`). The wire bodies are generated (`DocumentPatchIn`, `SearchIn.filters`, ...) but type
 * these as open objects; the shapes below are what the UI builds and reads.
 */

/** One value: text, a number, yes/no, a date (ISO 8601 text, normalised by the server) or a list of texts. */
export type MetadataValue = string | number | boolean | string[];

/** A document's user metadata: `DocumentOut.metadata`. */
export type UserMetadata = Record<string, MetadataValue>;

/** A scalar a condition compares with. */
export type FilterScalar = string | number | boolean;

/** One key's condition: a value (equality), a list (in), or operators (`{"gte": 4, "lt": 5}`, `{"exists": true}`). */
export type FilterCondition =
  | FilterScalar
  | FilterScalar[]
  | { eq?: FilterScalar; in?: FilterScalar[]; gt?: FilterScalar; gte?: FilterScalar; lt?: FilterScalar; lte?: FilterScalar; exists?: boolean };

/** AND across keys. */
export type FilterGroup = Record<string, FilterCondition>;

/** The filter JSON of search, chat and summary jobs: one AND group, or an OR of groups. */
export type FilterJson = FilterGroup | { $or: FilterGroup[] };

/** System filter keys: not user metadata (and not allowed as metadata keys). */
export const RESERVED_KEYS: readonly string[] = ["document_id", "source"];

/** The server's limits (`quarry.metadata`), checked before sending so mistakes show at once. */
export const METADATA_LIMITS = {
  maxKeys: 32,
  maxKeyChars: 64,
  maxStringChars: 1_000,
  maxListItems: 100,
  maxListItemChars: 200,
} as const;

export const KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_]*$/;

/** The user metadata inside whatever `DocumentOut.metadata` holds (values of the five types only). */
export function userMetadata(raw: unknown): UserMetadata {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return {};
  const out: UserMetadata = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) {
      out[key] = value;
    } else if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
      out[key] = value;
    }
  }
  return out;
}
