import { describe, expect, it } from "vitest";
import {
  entriesFrom,
  isIsoDate,
  keysSeen,
  metadataFrom,
  metadataPatch,
  newEntry,
  placeServerError,
  typeOf,
  withType,
} from "./metadataDraft";

describe("types and values", () => {
  it("shows each stored value with its type", () => {
    expect(typeOf("Acme")).toBe("text");
    expect(typeOf(4)).toBe("number");
    expect(typeOf(false)).toBe("boolean");
    expect(typeOf("2024-05-01")).toBe("date");
    expect(typeOf("2024-05-01T08:00:00Z")).toBe("date");
    expect(typeOf(["a", "b"])).toBe("list");
    const rows = entriesFrom({ tags: ["a", "b"], rating: 4, verified: true });
    expect(rows.map((r) => [r.key, r.type, r.value, r.origin])).toEqual([
      ["rating", "number", "4", "rating"],
      ["tags", "list", "a, b", "tags"],
      ["verified", "boolean", "true", "verified"],
    ]);
  });

  it("knows real dates", () => {
    expect(isIsoDate("2024-02-29")).toBe(true);
    expect(isIsoDate("2023-02-29")).toBe(false);
    expect(isIsoDate("2024-05-01T10:00:00+02:00")).toBe(true);
    expect(isIsoDate("May 1")).toBe(false);
  });

  it("carries a value over to another type where it still makes sense", () => {
    expect(withType(newEntry({ value: "12" }), "number").value).toBe("12");
    expect(withType(newEntry({ value: "twelve" }), "number").value).toBe("");
    expect(withType(newEntry({ value: "yes" }), "boolean").value).toBe("true");
    expect(withType(newEntry({ type: "boolean", value: "true" }), "text").value).toBe("");
  });
});

describe("metadataFrom", () => {
  it("types every row and skips blank ones", () => {
    const out = metadataFrom([
      newEntry({ key: "product", value: "X" }),
      newEntry({ key: "rating", type: "number", value: " 4.5 " }),
      newEntry({ key: "verified", type: "boolean", value: "false" }),
      newEntry({ key: "published", type: "date", value: "2024-05-01" }),
      newEntry({ key: "tags", type: "list", value: "a, b,, c" }),
      newEntry(),
    ]);
    expect(out.errors).toEqual({});
    expect(out.metadata).toEqual({
      product: "X",
      rating: 4.5,
      verified: false,
      published: "2024-05-01",
      tags: ["a", "b", "c"],
    });
  });

  it("names the problem of each row", () => {
    const rows = [
      newEntry({ key: "1st", value: "x" }),
      newEntry({ key: "source", value: "x" }),
      newEntry({ key: "rating", type: "number", value: "many" }),
      newEntry({ key: "when", type: "date", value: "yesterday" }),
      newEntry({ key: "", value: "orphan" }),
      newEntry({ key: "a", value: "1" }),
      newEntry({ key: "a", value: "2" }),
    ];
    const out = metadataFrom(rows);
    expect(rows.map((r) => out.errors[r.id] ?? null)).toEqual([
      "Names start with a letter and hold only letters, digits and _.",
      "“source” is a system field and cannot be set.",
      "Enter a number.",
      "Enter a date as YYYY-MM-DD.",
      "Give this field a name.",
      null,
      "“a” is already set above.",
    ]);
  });

  it("says when there are too many fields", () => {
    const rows = Array.from({ length: 33 }, (_, i) => newEntry({ key: `k${i}`, value: "v" }));
    expect(metadataFrom(rows).error).toBe("At most 32 fields (this has 33).");
  });
});

describe("metadataPatch", () => {
  const original = { product: "X", rating: 4, tags: ["a"] };

  it("is empty when nothing changed", () => {
    expect(metadataPatch(original, entriesFrom(original)).patch).toEqual({});
  });

  it("sends changed and new keys, and null for removed and renamed ones", () => {
    const rows = entriesFrom(original)
      .filter((r) => r.key !== "tags")
      .map((r) => (r.key === "rating" ? { ...r, value: "5" } : r.key === "product" ? { ...r, key: "brand" } : r));
    rows.push(newEntry({ key: "verified", type: "boolean", value: "true" }));
    expect(metadataPatch(original, rows).patch).toEqual({ product: null, brand: "X", rating: 5, tags: null, verified: true });
  });

  it("does not remove a key whose row is being fixed", () => {
    const rows = entriesFrom(original).map((r) => (r.key === "rating" ? { ...r, value: "" } : r));
    const out = metadataPatch(original, rows);
    expect(out.patch).toEqual({});
    expect(Object.values(out.errors)).toEqual(["Enter a number."]);
  });
});

describe("keysSeen", () => {
  it("collects keys, their types and distinct values across documents", () => {
    expect(keysSeen([{ product: "X", rating: 4 }, { product: "Y", tags: ["a", "b"] }, { product: "X", rating: "n/a" }])).toEqual([
      { key: "product", types: ["text"], values: ["X", "Y"] },
      { key: "rating", types: ["number", "text"], values: ["4", "n/a"] },
      { key: "tags", types: ["list"], values: ["a", "b"] },
    ]);
  });
});

describe("placeServerError", () => {
  it("puts a 422 at the row of the key it names, and the rest aside", () => {
    const rows = [newEntry({ key: "rating", value: "x" }), newEntry({ key: "product", value: "y" })];
    expect(placeServerError("metadata.rating: numbers must be finite", rows)).toEqual({
      errors: { [rows[0]?.id ?? ""]: "numbers must be finite" },
      general: null,
    });
    expect(placeServerError("metadata: at most 32 keys (got 40)", rows)).toEqual({
      errors: {},
      general: "metadata: at most 32 keys (got 40)",
    });
    expect(placeServerError("filename: too long", rows)).toBeNull();
  });
});
