import { describe, expect, it } from "vitest";
import { fieldErrors, subField, topField } from "./fieldErrors";

describe("fieldErrors", () => {
  it("reads the field each part of a 422 message names", () => {
    expect(fieldErrors("metadata.rating: numbers must be finite")).toEqual([
      { path: "metadata.rating", message: "numbers must be finite" },
    ]);
    expect(fieldErrors("schedule: Value error, cron(0 6 * *) does not parse; max_points: Input should be less than or equal to 20")).toEqual([
      { path: "schedule", message: "cron(0 6 * *) does not parse" },
      { path: "max_points", message: "Input should be less than or equal to 20" },
    ]);
    expect(fieldErrors("filter.$or[0].rating.gte: ranges take a number")).toEqual([
      { path: "filter.$or[0].rating.gte", message: "ranges take a number" },
    ]);
    expect(fieldErrors("no documents match the filter (product = Z)")).toEqual([
      { path: "", message: "no documents match the filter (product = Z)" },
    ]);
  });

  it("reads pydantic's validator messages as the field's own", () => {
    expect(fieldErrors("schedule: Value error, schedule: cron(bad) does not parse")).toEqual([
      { path: "schedule", message: "cron(bad) does not parse" },
    ]);
    expect(fieldErrors("body: Value error, instructions: a custom summary needs instructions")).toEqual([
      { path: "instructions", message: "a custom summary needs instructions" },
    ]);
    expect(fieldErrors("filter: Value error, filter.rating.gte: ranges take a number")).toEqual([
      { path: "filter.rating.gte", message: "ranges take a number" },
    ]);
    expect(fieldErrors("metadata: Value error, metadata.rating: numbers must be finite")).toEqual([
      { path: "metadata.rating", message: "numbers must be finite" },
    ]);
  });

  it("splits a path into its field and sub-field", () => {
    expect(topField("filter.$or[0].rating")).toBe("filter");
    expect(topField("max_points")).toBe("max_points");
    expect(subField("metadata.rating", "metadata")).toBe("rating");
    expect(subField("metadata", "metadata")).toBeNull();
  });
});
