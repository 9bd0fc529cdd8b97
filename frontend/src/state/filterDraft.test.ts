import { describe, expect, it } from "vitest";
import { buildFilter, describeFilter, type FilterDraft, type FilterRow, newRow, typedValue } from "./filterDraft";
import type { KeyInfo } from "./metadataDraft";

const KEYS: KeyInfo[] = [
  { key: "product", types: ["text"], values: ["X", "Y"] },
  { key: "rating", types: ["number"], values: ["1", "5"] },
  { key: "verified", types: ["boolean"], values: ["false", "true"] },
  { key: "code", types: ["text"], values: ["5"] },
];

const draft = (rows: Partial<FilterRow>[], matchAny = false): FilterDraft => ({ rows: rows.map((r) => newRow(r)), matchAny });

describe("buildFilter", () => {
  it("ANDs rows: one equality stays a value, ranges and exists become operator objects", () => {
    const out = buildFilter(
      draft([
        { key: "product", op: "eq", value: "X" },
        { key: "rating", op: "gte", value: "4" },
        { key: "published", op: "lte", value: "2024-05-01" },
        { key: "reviewed", op: "exists" },
        { key: "draft", op: "missing" },
      ]),
      KEYS,
    );
    expect(out.errors).toEqual({});
    expect(out.filter).toEqual({
      product: "X",
      rating: { gte: 4 },
      published: { lte: "2024-05-01" },
      reviewed: { exists: true },
      draft: { exists: false },
    });
  });

  it("joins several conditions on one key into one object", () => {
    const out = buildFilter(
      draft([
        { key: "rating", op: "gte", value: "2" },
        { key: "rating", op: "lte", value: "4" },
      ]),
    );
    expect(out.filter).toEqual({ rating: { gte: 2, lte: 4 } });
  });

  it("“is one of” takes comma-separated values, typed by the key", () => {
    expect(buildFilter(draft([{ key: "product", op: "in", value: "X, Y ,," }]), KEYS).filter).toEqual({ product: { in: ["X", "Y"] } });
    expect(buildFilter(draft([{ key: "rating", op: "in", value: "4,5" }]), KEYS).filter).toEqual({ rating: { in: [4, 5] } });
  });

  it("makes an $or of the rows with “match any”, and a plain group for one row", () => {
    const rows = [
      { key: "product", op: "eq" as const, value: "X" },
      { key: "rating", op: "lte" as const, value: "2" },
    ];
    expect(buildFilter(draft(rows, true), KEYS).filter).toEqual({ $or: [{ product: "X" }, { rating: { lte: 2 } }] });
    expect(buildFilter(draft(rows.slice(0, 1), true), KEYS).filter).toEqual({ product: "X" });
  });

  it("ignores blank rows and gives no filter when nothing is filled in", () => {
    expect(buildFilter(draft([{}, { op: "exists" }])).filter).toBeNull();
    expect(buildFilter(draft([])).filter).toBeNull();
  });

  it("names each row's problem and sends nothing while one has one", () => {
    const d = draft([
      { key: "rating", op: "gte", value: "high" },
      { key: "", op: "eq", value: "X" },
      { key: "bad key", op: "eq", value: "X" },
      { key: "product", op: "eq", value: "" },
      { key: "source", op: "gte", value: "3" },
    ]);
    const out = buildFilter(d, KEYS);
    expect(out.filter).toBeNull();
    const [a, b, c, e, f] = d.rows.map((r) => out.errors[r.id]);
    expect(a).toMatch(/number or a date/);
    expect(b).toMatch(/Choose a key/);
    expect(c).toMatch(/letters, digits and _/);
    expect(e).toMatch(/Enter a value/);
    expect(f).toMatch(/“is” and “is one of” only/);
  });

  it("refuses the same kind of condition twice on one key unless rows are ORed", () => {
    const rows = [
      { key: "product", op: "eq" as const, value: "X" },
      { key: "product", op: "eq" as const, value: "Y" },
    ];
    const and = draft(rows);
    expect(buildFilter(and).errors[and.rows[1]?.id ?? ""]).toMatch(/already has this kind of condition/);
    expect(buildFilter(draft(rows, true)).filter).toEqual({ $or: [{ product: "X" }, { product: "Y" }] });
  });

  it("compares number keys with numbers and date keys with dates", () => {
    const keys: KeyInfo[] = [...KEYS, { key: "published", types: ["date"], values: [] }];
    const d = draft([
      { key: "rating", op: "gte", value: "2024-01-01" },
      { key: "published", op: "lte", value: "4" },
    ]);
    const out = buildFilter(d, keys);
    expect(d.rows.map((r) => out.errors[r.id])).toEqual([
      "“rating” holds numbers: compare with a number.",
      "“published” holds dates: compare with a date (YYYY-MM-DD).",
    ]);
  });
});

describe("typedValue", () => {
  it("follows the key's type where it is known", () => {
    const info = (key: string) => KEYS.find((k) => k.key === key);
    expect(typedValue("5", info("code"))).toBe("5");
    expect(typedValue("5", info("rating"))).toBe(5);
    expect(typedValue("five", info("rating"))).toEqual({ error: "“rating” holds numbers: enter a number." });
    expect(typedValue("yes", info("verified"))).toBe(true);
    expect(typedValue("No", info("verified"))).toBe(false);
  });

  it("types numbers and true/false for an unknown key, and keeps the rest as text", () => {
    expect(typedValue("4.5", undefined)).toBe(4.5);
    expect(typedValue("true", undefined)).toBe(true);
    expect(typedValue("1.2.3", undefined)).toBe("1.2.3");
    expect(typedValue("2024-05-01", undefined)).toBe("2024-05-01");
  });
});

describe("describeFilter", () => {
  it("words a filter as the server's Filter.describe() does", () => {
    expect(describeFilter({ product: "X", rating: { gte: 4 } })).toBe("product = X and rating >= 4");
    expect(describeFilter({ product: ["X", "Y"], reviewed: { exists: true }, draft: { exists: false } })).toBe(
      "product in (X, Y) and reviewed is set and draft is not set",
    );
    expect(describeFilter({ $or: [{ product: "X" }, { rating: { lt: 2 } }] })).toBe("product = X or rating < 2");
    expect(describeFilter({ verified: true })).toBe("verified = yes");
    expect(describeFilter({})).toBe("all documents");
    expect(describeFilter(null)).toBe("all documents");
  });
});
