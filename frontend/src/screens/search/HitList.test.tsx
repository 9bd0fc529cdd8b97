import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { HitOut } from "../../api/types";
import { HitList } from "./HitList";

function hit(id: string, patch: Partial<HitOut>): HitOut {
  return {
    chunk_id: id,
    document_id: `doc-${id}`,
    document_name: "",
    page: null,
    title: "",
    text: `Text ${id}`,
    start: 0,
    end: 10,
    score: 0.5,
    dense_rank: 1,
    keyword_rank: null,
    rerank_score: null,
    metadata: {},
    ...patch,
  };
}

describe("HitList", () => {
  it("labels hits by their document's name first, with a meaningful title after it", () => {
    render(
      <HitList
        label="Results"
        hits={[
          hit("a", { document_name: "report.pdf", title: "about:blank", page: 3 }),
          hit("b", { document_name: "README.md", title: "Quarry" }),
          hit("c", { document_name: "", title: "Stored before names were kept" }),
        ]}
      />,
    );
    expect(screen.getAllByTestId("hit-name").map((n) => n.textContent)).toEqual([
      "report.pdf",
      "README.md",
      "Stored before names were kept",
    ]);
    expect(screen.getAllByTestId("hit-subtitle").map((n) => n.textContent)).toEqual(["“Quarry”"]);
    expect(screen.getByText("page 3")).toBeTruthy();
  });
});
