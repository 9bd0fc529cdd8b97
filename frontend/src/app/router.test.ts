import { describe, expect, it } from "vitest";
import { hrefFor, parseHash } from "./router";

describe("router", () => {
  it("routes the Summaries screen by workspace, like Documents and Search", () => {
    expect(parseHash("#/summaries/w%201")).toEqual({ screen: "summaries", workspaceId: "w 1" });
    expect(parseHash("#/summaries")).toEqual({ screen: "summaries", workspaceId: null });
    expect(hrefFor({ screen: "summaries", workspaceId: "w 1" })).toBe("#/summaries/w%201");
    expect(hrefFor({ screen: "summaries", workspaceId: null })).toBe("#/summaries");
  });
});
