/** What `GET /models` answers with and without a reranker. */
import type { ModelsOut } from "../api/types";

export const RERANKER_MODELS: ModelsOut = {
  llms: [],
  embeddings: [],
  rerankers: [{ id: "bge-reranker", name: "BGE reranker", provider: "sagemaker" }],
};

export const NO_RERANKER_MODELS: ModelsOut = { llms: [], embeddings: [], rerankers: [] };
