/** Validation of the workspace form, with bounds and defaults generated from the backend's WorkspaceIn. */
import { limits } from "../api/limits.gen";
import type { WorkspaceIn } from "../api/types";

const L = limits.WorkspaceIn;

export interface WorkspaceFormValues {
  name: string;
  embeddingModel: string;
  chunkSize: string;
  chunkOverlap: string;
  hybrid: boolean;
  reranker: string;
}

export type WorkspaceFormErrors = Partial<Record<keyof WorkspaceFormValues, string>>;

export const defaultWorkspaceForm: WorkspaceFormValues = {
  name: "",
  embeddingModel: "",
  chunkSize: String(L.chunk_size.default),
  chunkOverlap: String(L.chunk_overlap.default),
  hybrid: L.hybrid.default,
  reranker: "",
};

export const chunkBounds = {
  size: { min: L.chunk_size.minimum, max: L.chunk_size.maximum },
  overlap: { min: L.chunk_overlap.minimum, max: L.chunk_overlap.maximum },
  nameMax: L.name.maxLength,
};

function intIn(raw: string, min: number, max: number, what: string): [number | null, string | null] {
  if (!/^\s*\d+\s*$/.test(raw)) return [null, `${what} must be a whole number.`];
  const n = Number(raw);
  if (n < min || n > max) return [null, `${what} must be between ${min} and ${max}.`];
  return [n, null];
}

/** The request body, or the message for each invalid field. */
export function validateWorkspaceForm(v: WorkspaceFormValues): { body: WorkspaceIn | null; errors: WorkspaceFormErrors } {
  const errors: WorkspaceFormErrors = {};
  const name = v.name.trim();
  if (!name) errors.name = "Give the workspace a name.";
  else if (name.length > chunkBounds.nameMax) errors.name = `At most ${chunkBounds.nameMax} characters.`;
  const [size, sizeErr] = intIn(v.chunkSize, chunkBounds.size.min, chunkBounds.size.max, "Chunk size");
  const [overlap, overlapErr] = intIn(v.chunkOverlap, chunkBounds.overlap.min, chunkBounds.overlap.max, "Overlap");
  if (sizeErr) errors.chunkSize = sizeErr;
  if (overlapErr) errors.chunkOverlap = overlapErr;
  if (size !== null && overlap !== null && overlap >= size) errors.chunkOverlap = "Overlap must be smaller than the chunk size.";
  if (Object.keys(errors).length > 0 || size === null || overlap === null) return { body: null, errors };
  return {
    body: {
      name,
      embedding_model: v.embeddingModel || null,
      chunk_size: size,
      chunk_overlap: overlap,
      hybrid: v.hybrid,
      reranker: v.reranker || null,
    },
    errors,
  };
}
