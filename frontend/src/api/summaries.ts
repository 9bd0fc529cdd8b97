/**
 * The summary jobs API (`quarry/summary_protocol.py`): `POST/GET /workspaces/{id}/summaries`,
 * `GET/DELETE /workspaces/{id}/summaries/{job}`, `POST /workspaces/{id}/summaries/{job}/runs`.
 *
 * The shapes are generated (protocol.gen.ts, from schema.json, which `quarry.schema_export` writes from the
 * backend's models); only the filter is typed here as the UI builds and reads it (the schema has it as an
 * open object, as `SearchIn.filters`).
 */
import type { FilterJson } from "./metadata";
import { limits } from "./limits.gen";
import type {
  ListOutSummaryJobOut as ListOutSummaryJobOutWire,
  SummaryCitationOut,
  SummaryIn as SummaryInWire,
  SummaryJobOut as SummaryJobOutWire,
  SummaryKind,
  SummaryPointOut,
  SummaryProgressOut,
  SummaryResultOut,
  SummaryStatus,
} from "./protocol.gen";

export type { SummaryCitationOut, SummaryKind, SummaryPointOut, SummaryProgressOut, SummaryResultOut, SummaryStatus };

export type PointKind = SummaryPointOut["kind"];

/** `POST /workspaces/{id}/summaries`: custom needs `instructions`; the schedule is EventBridge Scheduler syntax. */
export type SummaryIn = Omit<SummaryInWire, "filter"> & { filter?: FilterJson };

export type SummaryJobOut = Omit<SummaryJobOutWire, "filter"> & { filter: FilterJson };

export type ListOutSummaryJobOut = Omit<ListOutSummaryJobOutWire, "items"> & { items: SummaryJobOut[] };

const S = limits.SummaryIn;

/** `SummaryIn`'s bounds and defaults, from the schema (the server checks them too). */
export const SUMMARY_LIMITS = {
  instructionsMaxLength: S.instructions.maxLength,
  languageMaxLength: S.language.maxLength,
  // Words of letters, one space apart: the schema's pattern is Python's (`\W` is Unicode there, ASCII in JavaScript).
  languagePattern: /^[\p{L}]+(?: [\p{L}]+)*$/u,
  maxPoints: { minimum: S.max_points.minimum, maximum: S.max_points.maximum, default: S.max_points.default },
  defaultLanguage: S.language.default,
} as const;
