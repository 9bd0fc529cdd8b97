import { STATUS_FILTERS, type StatusFilter } from "../../state/documentView";
import "./documents.css";

const noun = (n: number) => (n === 1 ? "document" : "documents");

/** Which documents the table shows, by status, with how many there are of each. */
export function DocumentFilter({
  value,
  counts,
  shown,
  onChange,
}: {
  value: StatusFilter;
  counts: Record<StatusFilter, number>;
  shown: number;
  onChange: (value: StatusFilter) => void;
}) {
  return (
    <div className="doc-toolbar">
      <label>
        Show
        <select
          value={value}
          onChange={(e) => onChange(e.target.value as StatusFilter)}
          data-testid="document-filter"
        >
          {STATUS_FILTERS.map((f) => (
            <option key={f.value} value={f.value}>
              {f.label} ({counts[f.value]})
            </option>
          ))}
        </select>
      </label>
      <span className="small muted" aria-live="polite" data-testid="document-count">
        {shown === counts.all ? `${shown} ${noun(shown)}` : `${shown} of ${counts.all} ${noun(counts.all)}`}
      </span>
    </div>
  );
}
