import { describe, expect, it } from "vitest";
import { ApiError } from "../api/errors";
import { NO_RERANKER_MODELS, RERANKER_MODELS } from "../test/modelFixtures";
import { NO_RERANKER, rerankerOption } from "./rerankerOption";

describe("rerankerOption", () => {
  it("offers the deployment's rerankers", () => {
    expect(rerankerOption(RERANKER_MODELS)).toEqual({ available: true, rerankers: RERANKER_MODELS.rerankers });
  });

  it("is off, with the reason, when none is configured", () => {
    expect(rerankerOption(NO_RERANKER_MODELS)).toEqual({ available: false, reason: NO_RERANKER });
  });

  it("is off while the models load, and says why when they could not be read", () => {
    expect(rerankerOption(null)).toMatchObject({ available: false, reason: expect.stringContaining("Checking") as string });
    const failed = rerankerOption(NO_RERANKER_MODELS, new ApiError(502, "bad_gateway", "Upstream failed"));
    expect(failed).toMatchObject({ available: false, reason: expect.stringContaining("Upstream failed") as string });
  });
});
