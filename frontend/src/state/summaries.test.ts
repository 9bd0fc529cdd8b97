import { describe, expect, it } from "vitest";
import { point, summaryJob } from "../test/summaryFixtures";
import {
  anyActive,
  describeSchedule,
  evaluationFacts,
  groupPoints,
  isNoDocuments,
  jobTitle,
  mentionedIn,
  progressText,
} from "./summaries";

const progress = (documents_read: number, documents_total: number, batches_done = 0, batches_total = 0, batches_failed = 0) => ({
  documents_read,
  documents_total,
  batches_done,
  batches_total,
  batches_failed,
});

describe("summaries", () => {
  it("titles a job by its kind and filter", () => {
    expect(jobTitle(summaryJob())).toBe("Pros and cons of product = X");
    expect(jobTitle(summaryJob({ kind: "themes", filter_description: "" }))).toBe("Themes of all documents");
  });

  it("says how far a job got, documents first, then batches and failures", () => {
    expect(progressText(summaryJob({ status: "queued" }))).toBe("Waiting to start…");
    expect(progressText(summaryJob({ status: "running" }))).toBe("Selecting documents…");
    expect(progressText(summaryJob({ status: "running", progress: progress(120, 2000, 6, 100, 1) }))).toBe(
      "120 of 2,000 documents read · 6 of 100 batches (1 failed)",
    );
    expect(progressText(summaryJob({ status: "succeeded", progress: progress(1, 1, 1, 1) }))).toBe(
      "1 of 1 document read · 1 of 1 batch",
    );
  });

  it("polls while any job is queued or running", () => {
    expect(anyActive([summaryJob({ status: "succeeded" }), summaryJob({ status: "running" })])).toBe(true);
    expect(anyActive([summaryJob({ status: "cancelled" }), summaryJob({ status: "no_documents" })])).toBe(false);
    expect(anyActive(undefined)).toBe(false);
  });

  it("groups points as Pros, Cons, Themes, Points and counts mentions", () => {
    const groups = groupPoints([point("con", "Slow", [["d2", "b"]]), point("pro", "Fast", [["d1", "a"]]), point("pro", "Cheap", [])]);
    expect(groups.map((g) => [g.label, g.points.map((p) => p.text)])).toEqual([
      ["Pros", ["Fast", "Cheap"]],
      ["Cons", ["Slow"]],
    ]);
    expect(mentionedIn({ count: 1 })).toBe("mentioned in 1 document");
    expect(mentionedIn({ count: 1234 })).toBe("mentioned in 1,234 documents");
  });

  it("words schedules, the no-documents refusal and the evaluation", () => {
    expect(describeSchedule(null)).toBe("Once");
    expect(describeSchedule("rate(1 hour)")).toBe("Every hour");
    expect(describeSchedule("cron(15 3 * * ? *)")).toBe("cron(15 3 * * ? *)");
    expect(isNoDocuments("no documents match the filter (product = Z)")).toBe(true);
    expect(isNoDocuments("schedule: does not parse")).toBe(false);
    expect(evaluationFacts({ faithfulness: 0.954, citation_validity: 1, other_score: 0.5 })).toEqual([
      ["Faithfulness", "0.95"],
      ["Citation validity", "1.00"],
      ["other score", "0.50"],
    ]);
  });
});
