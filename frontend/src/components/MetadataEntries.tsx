import { useId } from "react";
import {
  type KeyInfo,
  keyProblem,
  type MetadataEntry,
  METADATA_TYPES,
  type MetadataType,
  newEntry,
  withType,
} from "../state/metadataDraft";
import "./metadata.css";

/** The control for one row's value, by its type: a date picker, a number box, yes/no, or text. */
function ValueInput({
  entry,
  label,
  describedBy,
  invalid,
  listId,
  onChange,
}: {
  entry: MetadataEntry;
  label: string;
  describedBy: string | undefined;
  invalid: boolean;
  listId: string | undefined;
  onChange: (value: string) => void;
}) {
  const common = {
    "aria-label": label,
    "aria-describedby": describedBy,
    "aria-invalid": invalid,
    className: "meta-value",
  };
  if (entry.type === "boolean") {
    return (
      <select {...common} value={entry.value === "true" ? "true" : "false"} onChange={(e) => onChange(e.target.value)}>
        <option value="true">Yes</option>
        <option value="false">No</option>
      </select>
    );
  }
  if (entry.type === "number") {
    return <input {...common} type="number" step="any" value={entry.value} onChange={(e) => onChange(e.target.value)} />;
  }
  // A stored date-time (with a time of day) stays text: a date picker would drop the time.
  if (entry.type === "date" && !entry.value.includes("T")) {
    return <input {...common} type="date" value={entry.value} onChange={(e) => onChange(e.target.value)} />;
  }
  return (
    <input
      {...common}
      type="text"
      value={entry.value}
      list={entry.type === "text" ? listId : undefined}
      placeholder={entry.type === "list" ? "a, b, c" : entry.type === "date" ? "YYYY-MM-DD" : undefined}
      onChange={(e) => onChange(e.target.value)}
    />
  );
}

/**
 * Rows of key / type / value, each removable, and "Add field". Controlled: `entries` and their `errors`
 * (by row id) come from the parent. Keys seen on other documents are offered as suggestions.
 */
export function MetadataEntries({
  entries,
  onChange,
  errors = {},
  suggestions = [],
  disabled = false,
}: {
  entries: MetadataEntry[];
  onChange: (entries: MetadataEntry[]) => void;
  errors?: Record<string, string>;
  suggestions?: KeyInfo[];
  disabled?: boolean;
}) {
  const id = useId();
  const keysId = `${id}-keys`;
  const update = (entryId: string, fn: (e: MetadataEntry) => MetadataEntry) =>
    onChange(entries.map((e) => (e.id === entryId ? fn(e) : e)));
  const addField = () => {
    onChange([...entries, newEntry()]);
  };
  const pickKey = (entry: MetadataEntry, key: string) => {
    const known = suggestions.find((s) => s.key === key);
    const type = known?.types.length === 1 ? known.types[0] : undefined;
    // A new row takes the type the key has elsewhere, so "rating" becomes a number by itself.
    update(entry.id, (e) => {
      const named = { ...e, key };
      return type && e.origin === null && e.value === "" ? withType(named, type) : named;
    });
  };
  return (
    <div className="meta-entries">
      {entries.length === 0 && <p className="muted small">No metadata yet.</p>}
      {entries.length > 0 && (
        <ol className="meta-rows">
          {entries.map((entry, i) => {
            const n = i + 1;
            const error = errors[entry.id];
            const errorId = `${id}-err-${entry.id}`;
            const valuesId = `${id}-values-${entry.id}`;
            const values = suggestions.find((s) => s.key === entry.key)?.values ?? [];
            // A problem is the name's when the name has one, else the value's (a server message about the key too).
            const name = entry.key.trim();
            const repeated = name !== "" && entries.slice(0, i).some((e) => e.key.trim() === name);
            const keyWrong = error !== undefined && (keyProblem(name) !== null || repeated);
            const valueWrong = error !== undefined && !keyWrong;
            return (
              <li key={entry.id} className="meta-row" data-testid="metadata-entry" data-key={entry.key}>
                <input
                  className="meta-key"
                  aria-label={`Field ${n} name`}
                  value={entry.key}
                  list={keysId}
                  placeholder="name, e.g. product"
                  disabled={disabled}
                  aria-invalid={keyWrong}
                  aria-describedby={keyWrong ? errorId : undefined}
                  onChange={(e) => pickKey(entry, e.target.value)}
                  autoComplete="off"
                  spellCheck={false}
                />
                <select
                  className="meta-type"
                  aria-label={`Field ${n} type`}
                  value={entry.type}
                  disabled={disabled}
                  onChange={(e) => update(entry.id, (x) => withType(x, e.target.value as MetadataType))}
                >
                  {METADATA_TYPES.map((t) => (
                    <option key={t.value} value={t.value}>
                      {t.label}
                    </option>
                  ))}
                </select>
                <ValueInput
                  entry={entry}
                  label={`Field ${n} value`}
                  describedBy={valueWrong ? errorId : undefined}
                  invalid={valueWrong}
                  listId={values.length ? valuesId : undefined}
                  onChange={(value) => update(entry.id, (x) => ({ ...x, value }))}
                />
                {values.length > 0 && (
                  <datalist id={valuesId}>
                    {values.map((v) => (
                      <option key={v} value={v} />
                    ))}
                  </datalist>
                )}
                <button
                  type="button"
                  className="btn small meta-remove"
                  aria-label={`Remove field ${n}${entry.key ? ` (${entry.key})` : ""}`}
                  title="Remove this field"
                  disabled={disabled}
                  onClick={() => onChange(entries.filter((e) => e.id !== entry.id))}
                >
                  Remove
                </button>
                {error && (
                  <p id={errorId} className="error-text small meta-error" role="alert" data-testid="metadata-error">
                    {error}
                  </p>
                )}
              </li>
            );
          })}
        </ol>
      )}
      <datalist id={keysId}>
        {suggestions.map((s) => (
          <option key={s.key} value={s.key} />
        ))}
      </datalist>
      <button type="button" className="btn small" onClick={addField} disabled={disabled}>
        Add field
      </button>
    </div>
  );
}
