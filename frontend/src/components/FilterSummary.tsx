import type { FilterJson } from "../api/metadata";
import { describeFilter } from "../state/filterDraft";
import "./filter-builder.css";

/** The filter in force as one line, with a button that clears it. Nothing when there is none. */
export function FilterSummary({
  filter,
  onClear,
  prefix = "Filter:",
  testId = "filter-summary",
}: {
  filter: FilterJson | null;
  onClear: () => void;
  prefix?: string;
  testId?: string;
}) {
  if (!filter) return null;
  return (
    <p className="filter-summary small" data-testid={testId}>
      <span>
        <span className="filter-summary-prefix">{prefix}</span> <span data-testid="filter-description">{describeFilter(filter)}</span>
      </span>
      <button type="button" className="btn tiny" onClick={onClear}>
        Clear filter
      </button>
    </p>
  );
}
