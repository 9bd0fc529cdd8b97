import type { MetadataInput } from "../lib/useMetadataInput";
import type { KeyInfo } from "../state/metadataDraft";
import { MetadataEntries } from "./MetadataEntries";
import "./metadata.css";

/** "Metadata (optional)": a disclosure with the fields given with what is added. */
export function MetadataFields({
  input,
  suggestions = [],
  label = "Metadata (optional)",
  testId,
}: {
  input: MetadataInput;
  suggestions?: KeyInfo[];
  label?: string;
  testId?: string;
}) {
  return (
    <details
      className="meta-fields"
      open={input.open}
      onToggle={(e) => input.setOpen(e.currentTarget.open)}
      data-testid={testId}
    >
      <summary>
        {label}
        {input.count > 0 && <span className="muted small"> · {input.count === 1 ? "1 field" : `${input.count} fields`}</span>}
      </summary>
      <MetadataEntries entries={input.entries} onChange={input.onChange} errors={input.errors} suggestions={suggestions} />
      {input.error && (
        <p className="error-text small" role="alert">
          {input.error}
        </p>
      )}
    </details>
  );
}
