/** Whether reranking can be offered, from `GET /models`: a rerank request without a reranker fails with 422. */
import { describeError } from "../api/errors";
import type { ModelInfo, ModelsOut } from "../api/types";

export const NO_RERANKER = "No reranker is configured in this deployment";

export type RerankerOption = { available: true; rerankers: ModelInfo[] } | { available: false; reason: string };

/** `models` is null while `GET /models` is in flight; `modelsError` is why it failed, if it did. */
export function rerankerOption(models: ModelsOut | null, modelsError: unknown = null): RerankerOption {
  if (modelsError !== null && modelsError !== undefined) {
    return { available: false, reason: `Could not read which models this deployment offers: ${describeError(modelsError)}` };
  }
  if (!models) return { available: false, reason: "Checking which models this deployment offers…" };
  if (models.rerankers.length === 0) return { available: false, reason: NO_RERANKER };
  return { available: true, rerankers: models.rerankers };
}
