import { useId } from "react";
import { FILTER_OPS, type FilterDraft, type FilterOp, type FilterRow, keyIsWrong, needsValue, newRow } from "../state/filterDraft";
import type { KeyInfo } from "../state/metadataDraft";
import "./filter-builder.css";

function placeholder(op: FilterOp): string {
  if (op === "in") return "a, b, c";
  if (op === "gte" || op === "lte") return "number or YYYY-MM-DD";
  return "value";
}

/** Values to suggest for a row: the key's values seen on documents (yes/no for a yes/no key). */
function suggestedValues(info: KeyInfo | undefined): string[] {
  if (!info) return [];
  if (info.types.length === 1 && info.types[0] === "boolean") return ["yes", "no"];
  return info.values;
}

/**
 * Rows of key / operator / value, ANDed, or ORed with "Match any condition". Controlled: the parent holds the
 * draft (`state/filterDraft.ts` turns it into the filter JSON) and passes the problems to show, by row id.
 * Keys and values seen on the workspace's documents are suggested.
 */
export function FilterBuilder({
  draft,
  onChange,
  keys = [],
  errors = {},
  legend = "Filter by metadata",
  disabled = false,
}: {
  draft: FilterDraft;
  onChange: (draft: FilterDraft) => void;
  keys?: KeyInfo[];
  errors?: Record<string, string>;
  legend?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const keysId = `${id}-keys`;
  const setRow = (rowId: string, patch: Partial<FilterRow>) =>
    onChange({ ...draft, rows: draft.rows.map((r) => (r.id === rowId ? { ...r, ...patch } : r)) });
  const addRow = () => onChange({ ...draft, rows: [...draft.rows, newRow()] });
  const removeRow = (rowId: string) => {
    const rows = draft.rows.filter((r) => r.id !== rowId);
    onChange({ rows, matchAny: rows.length > 1 && draft.matchAny });
  };
  return (
    <fieldset className="filter-builder" disabled={disabled} data-testid="filter-builder">
      <legend>{legend}</legend>
      {draft.rows.length === 0 ? (
        <p className="muted small">No conditions: every document.</p>
      ) : (
        <ol className="filter-rows">
          {draft.rows.map((row, i) => {
            const n = i + 1;
            const error = errors[row.id];
            const errorId = `${id}-err-${row.id}`;
            const valuesId = `${id}-values-${row.id}`;
            const values = suggestedValues(keys.find((k) => k.key === row.key.trim()));
            const keyWrong = error !== undefined && keyIsWrong(row);
            const valueWrong = error !== undefined && !keyWrong;
            return (
              <li key={row.id} className="filter-row" data-testid="filter-row">
                {i > 0 && (
                  <span className="filter-join muted small" aria-hidden="true">
                    {draft.matchAny ? "or" : "and"}
                  </span>
                )}
                <input
                  className="filter-key"
                  aria-label={`Key of condition ${n}`}
                  value={row.key}
                  list={keysId}
                  placeholder="key, e.g. product"
                  autoComplete="off"
                  spellCheck={false}
                  aria-invalid={keyWrong}
                  aria-describedby={keyWrong ? errorId : undefined}
                  onChange={(e) => setRow(row.id, { key: e.target.value })}
                />
                <select
                  className="filter-op"
                  aria-label={`Operator of condition ${n}`}
                  value={row.op}
                  aria-describedby={valueWrong && !needsValue(row.op) ? errorId : undefined}
                  onChange={(e) => setRow(row.id, { op: e.target.value as FilterOp })}
                >
                  {FILTER_OPS.map((o) => (
                    <option key={o.value} value={o.value}>
                      {o.label}
                    </option>
                  ))}
                </select>
                {needsValue(row.op) ? (
                  <input
                    className="filter-value"
                    aria-label={`Value of condition ${n}`}
                    value={row.value}
                    list={values.length ? valuesId : undefined}
                    placeholder={placeholder(row.op)}
                    autoComplete="off"
                    aria-invalid={valueWrong}
                    aria-describedby={valueWrong ? errorId : undefined}
                    onChange={(e) => setRow(row.id, { value: e.target.value })}
                  />
                ) : (
                  <span className="filter-value" />
                )}
                {values.length > 0 && (
                  <datalist id={valuesId}>
                    {values.map((v) => (
                      <option key={v} value={v} />
                    ))}
                  </datalist>
                )}
                <button
                  type="button"
                  className="btn small"
                  aria-label={`Remove condition ${n}`}
                  title="Remove this condition"
                  onClick={() => removeRow(row.id)}
                >
                  Remove
                </button>
                {error && (
                  <p id={errorId} className="error-text small filter-error" data-testid="filter-error">
                    {error}
                  </p>
                )}
              </li>
            );
          })}
        </ol>
      )}
      <datalist id={keysId}>
        {keys.map((k) => (
          <option key={k.key} value={k.key} />
        ))}
      </datalist>
      <div className="row wrap filter-actions">
        <button type="button" className="btn small" onClick={addRow}>
          Add condition
        </button>
        {draft.rows.length > 1 && (
          <label className="check">
            <input
              type="checkbox"
              checked={draft.matchAny}
              onChange={(e) => onChange({ ...draft, matchAny: e.target.checked })}
            />{" "}
            Match any condition (or)
          </label>
        )}
      </div>
    </fieldset>
  );
}
