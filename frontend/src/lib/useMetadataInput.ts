import { useState } from "react";
import { ApiError } from "../api/errors";
import type { UserMetadata } from "../api/metadata";
import { isBlank, type MetadataEntry, metadataFrom, placeServerError } from "../state/metadataDraft";

export interface MetadataInput {
  entries: MetadataEntry[];
  onChange: (entries: MetadataEntry[]) => void;
  errors: Record<string, string>;
  /** A problem with the whole set, or a server message about metadata that names no row. */
  error: string | null;
  open: boolean;
  setOpen: (open: boolean) => void;
  /** Rows filled in. */
  count: number;
  /** The metadata to send, or null after showing what is wrong (and opening the fields). */
  check: () => UserMetadata | null;
  /** Shows a 422 about metadata at the field it names; false when the error is about something else. */
  showServerError: (e: unknown) => boolean;
}

/** The metadata given with what is being added (an upload, a text): kept for the next one. */
export function useMetadataInput(): MetadataInput {
  const [entries, setEntries] = useState<MetadataEntry[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const onChange = (next: MetadataEntry[]) => {
    setEntries(next);
    setErrors({});
    setError(null);
  };
  const check = (): UserMetadata | null => {
    const out = metadataFrom(entries);
    if (Object.keys(out.errors).length > 0 || out.error) {
      setErrors(out.errors);
      setError(out.error);
      setOpen(true);
      return null;
    }
    return out.metadata;
  };
  const showServerError = (e: unknown): boolean => {
    if (!(e instanceof ApiError) || e.status !== 422) return false;
    const placed = placeServerError(e.message, entries);
    if (!placed) return false;
    setErrors(placed.errors);
    setError(placed.general);
    setOpen(true);
    return true;
  };
  const count = entries.filter((e) => !isBlank(e)).length;
  return { entries, onChange, errors, error, open, setOpen, count, check, showServerError };
}
