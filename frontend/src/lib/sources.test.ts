import { describe, expect, it } from "vitest";
import { sourceName, sourceSubtitle } from "./sources";

describe("source labels", () => {
  it("label a source by its document's name, not the title embedded in the file", () => {
    expect(sourceName({ document_name: "report.pdf", title: "about:blank" })).toBe("report.pdf");
    expect(sourceName({ document_name: "README.md", title: "Quarry" })).toBe("README.md");
  });

  it("fall back to the title for citations stored before names were kept", () => {
    expect(sourceName({ title: "Design" })).toBe("Design");
    expect(sourceName({ document_name: "", title: "" })).toBe("Untitled");
  });

  it("show the title as secondary text only when it says something more", () => {
    expect(sourceSubtitle({ document_name: "README.md", title: "Quarry" })).toBe("Quarry");
    expect(sourceSubtitle({ document_name: "report.pdf", title: "about:blank" })).toBeNull();
    expect(sourceSubtitle({ document_name: "leave_policy.docx", title: "Leave policy" })).toBeNull();
    expect(sourceSubtitle({ document_name: "Tides", title: "Tides" })).toBeNull();
    expect(sourceSubtitle({ document_name: "a.md", title: "  " })).toBeNull();
    expect(sourceSubtitle({ title: "Design" })).toBeNull();
  });
});
