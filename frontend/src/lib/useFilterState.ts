import { useMemo, useState } from "react";
import type { FilterJson } from "../api/metadata";
import { buildFilter, EMPTY_DRAFT, type FilterDraft, hasProblems } from "../state/filterDraft";
import type { KeyInfo } from "../state/metadataDraft";

export interface FilterState {
  draft: FilterDraft;
  setDraft: (draft: FilterDraft) => void;
  /** The filter to send: null when no condition is filled in (or one has a problem). */
  filter: FilterJson | null;
  /** Some row has a problem. */
  invalid: boolean;
  /** Problems to show, by row id: only once sending was tried, then live. */
  errors: Record<string, string>;
  /** Before sending: false, with the problems shown, when the filter cannot be sent as it is. */
  check: () => boolean;
  clear: () => void;
}

/**
 * A filter builder's state: the draft, the filter JSON it makes with the keys' known types, its problems
 * (shown once sending was tried, or at once when `live`).
 */
export function useFilterState(keys: KeyInfo[], { live = false }: { live?: boolean } = {}): FilterState {
  const [draft, setDraft] = useState<FilterDraft>(EMPTY_DRAFT);
  const [reveal, setReveal] = useState(false);
  const outcome = useMemo(() => buildFilter(draft, keys), [draft, keys]);
  const invalid = hasProblems(outcome);
  return {
    draft,
    setDraft,
    filter: outcome.filter,
    invalid,
    errors: reveal || live ? outcome.errors : {},
    check: () => {
      setReveal(invalid);
      return !invalid;
    },
    clear: () => {
      setDraft(EMPTY_DRAFT);
      setReveal(false);
    },
  };
}
