import type { UserMetadata } from "../api/metadata";
import { displayValue } from "../state/metadataDraft";
import "./metadata.css";

/** A document's metadata as small "key value" chips; past `max`, "+N more". */
export function MetadataChips({ metadata, max = Infinity, label = "Metadata" }: { metadata: UserMetadata; max?: number; label?: string }) {
  const entries = Object.entries(metadata).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return null;
  const shown = entries.slice(0, max);
  const more = entries.length - shown.length;
  return (
    <ul className="meta-chips" aria-label={label} data-testid="metadata-chips">
      {shown.map(([key, value]) => (
        <li key={key} className="meta-chip" data-testid="metadata-chip" data-key={key}>
          <span className="meta-chip-key">{key}</span> <span className="meta-chip-value">{displayValue(value)}</span>
        </li>
      ))}
      {more > 0 && (
        <li className="meta-chip more" title={entries.slice(max).map(([k]) => k).join(", ")}>
          +{more} more
        </li>
      )}
    </ul>
  );
}
