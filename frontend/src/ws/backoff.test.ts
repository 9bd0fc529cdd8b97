import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff";

const policy = { baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

describe("backoffDelay", () => {
  it("doubles per attempt up to the cap (upper end of the jitter range)", () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffDelay(a, policy, () => 0.999999));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it("jitter draws from [50 %, 100 %] of the exponential delay", () => {
    expect(backoffDelay(3, policy, () => 0)).toBe(2000);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(3000);
  });

  it("no jitter gives the exact exponential delay", () => {
    expect(backoffDelay(2, { ...policy, jitter: 0 }, () => 0.3)).toBe(2000);
  });

  it("treats a negative or fractional attempt sanely", () => {
    expect(backoffDelay(-3, policy, () => 0.999999)).toBe(500);
    expect(backoffDelay(1.7, policy, () => 0.999999)).toBe(1000);
  });
});
