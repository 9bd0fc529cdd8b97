import { describe, expect, it } from "vitest";
import { renderMarkdown, renderPassage } from "./markdown";

function dom(html: string): HTMLElement {
  const div = document.createElement("div");
  div.innerHTML = html;
  return div;
}

describe("renderMarkdown", () => {
  it("turns known [n] markers into citation buttons", () => {
    const el = dom(renderMarkdown("Quarry is serverless [1] and local [2][3].", [
      { n: 1, title: "Design" },
      { n: 2, title: "Readme" },
    ]));
    const buttons = [...el.querySelectorAll<HTMLButtonElement>("button[data-citation]")];
    expect(buttons.map((b) => b.dataset.citation)).toEqual(["1", "2"]);
    expect(buttons[0]?.getAttribute("aria-label")).toBe("Source 1: Design");
    expect(buttons[0]?.dataset.testid).toBe("citation-link");
    expect(el.textContent).toContain("[3]"); // unknown: left as text
  });

  it("handles grouped markers and leaves links alone", () => {
    const el = dom(renderMarkdown("See [1, 2] and [the docs](https://example.com).", [
      { n: 1, title: "A" },
      { n: 2, title: "B" },
    ]));
    expect(el.querySelectorAll("button.cite")).toHaveLength(2);
    const a = el.querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://example.com");
    expect(a?.getAttribute("rel")).toBe("noopener noreferrer");
  });

  it("renders markdown while streaming (no citations yet)", () => {
    const el = dom(renderMarkdown("**Bold** and a list:\n\n- one\n- two [1]"));
    expect(el.querySelector("strong")?.textContent).toBe("Bold");
    expect(el.querySelectorAll("li")).toHaveLength(2);
    expect(el.querySelector("button")).toBeNull();
  });

  it("strips scripts and event handlers from model output", () => {
    const el = dom(renderMarkdown('Hi <script>alert(1)</script><img src=x onerror="alert(2)"> [1]', [{ n: 1, title: '"><b>x' }]));
    expect(el.querySelector("script")).toBeNull();
    expect(el.querySelector("img")?.getAttribute("onerror")).toBeNull();
    expect(el.querySelector("button")?.getAttribute("aria-label")).toBe('Source 1: "><b>x');
  });
});

describe("citation markers", () => {
  const refs = [
    { n: 1, title: "Quarry", document_name: "returns-policy.md" },
    { n: 2, title: "about:blank", document_name: "terms.pdf" },
  ];

  it("sets a sentence's markers after its full stop, on the line of its last word", () => {
    const el = dom(renderMarkdown("Refunds take 27 days [1]. Then write to us.", refs));
    expect(el.textContent?.trim()).toBe("Refunds take 27 days\u2060.[1] Then write to us.");
    const run = el.querySelector(".cite-run");
    // The word joiner, the full stop and the marker are one unbreakable run (white-space: nowrap in CSS).
    expect(run?.textContent).toBe("\u2060.[1]");
    expect(run?.querySelector("button.cite")?.getAttribute("aria-label")).toBe("Source 1: returns-policy.md");
  });

  it("keeps punctuation already written before the markers, and other punctuation", () => {
    expect(dom(renderMarkdown("Done.[1] Next, [2]: more [1]!", refs)).textContent?.trim()).toBe(
      "Done\u2060.[1] Next\u2060,[2]: more\u2060![1]",
    );
    expect(dom(renderMarkdown("Within reach [1]", refs)).textContent?.trim()).toBe("Within reach\u2060[1]");
  });

  it("groups a sentence's markers into one Tab stop", () => {
    const el = dom(renderMarkdown("It is free [1][2]. It is fast [2, 1].", refs));
    const groups = [...el.querySelectorAll<HTMLElement>("[data-testid=citation-group]")];
    expect(groups).toHaveLength(2);
    const first = [...(groups[0]?.querySelectorAll<HTMLButtonElement>("button.cite") ?? [])];
    expect(first.map((b) => [b.dataset.citation, b.getAttribute("tabindex")])).toEqual([
      ["1", "0"],
      ["2", "-1"],
    ]);
    expect(groups[0]?.getAttribute("role")).toBe("group");
    expect(groups[0]?.getAttribute("aria-label")).toContain("arrow keys");
    expect(el.textContent?.trim()).toBe("It is free\u2060.[1][2] It is fast\u2060.[2][1]");
  });

  it("leaves markers as text while the answer streams (no citations yet)", () => {
    const el = dom(renderMarkdown("Refunds take 27 days [1]."));
    expect(el.querySelector("button")).toBeNull();
    expect(el.textContent?.trim()).toBe("Refunds take 27 days\u2060.[1]");
  });
});

describe("renderPassage", () => {
  const passage = "# Returns\nRefunds are **possible** within 27 days. Shipping is free.\n- Returns go to Ghent";

  it("renders the passage as Markdown with the supporting sentence marked", () => {
    const start = passage.indexOf("Refunds");
    const end = passage.indexOf("days.") + 5;
    const el = dom(renderPassage(passage, { start, end }));
    expect(el.querySelector("h1")?.textContent).toBe("Returns");
    expect(el.querySelector("strong")?.textContent).toBe("possible");
    const marks = [...el.querySelectorAll("mark.support")];
    expect(marks.map((m) => m.textContent).join("")).toBe("Refunds are possible within 27 days.");
    expect(el.querySelector("li")?.textContent).toBe("Returns go to Ghent");
  });

  it("marks a list item or heading without breaking its Markdown", () => {
    const start = passage.indexOf("- Returns");
    const el = dom(renderPassage(passage, { start, end: passage.length }));
    expect(el.querySelector("li mark")?.textContent).toBe("Returns go to Ghent");
    const heading = dom(renderPassage(passage, { start: 0, end: 9 }));
    expect(heading.querySelector("h1 mark")?.textContent).toBe("Returns");
  });

  it("counts the span in code points, as the server does", () => {
    const text = "🙂 Emoji first. Then the claim.";
    // In code points the emoji is one ("Then" starts at 15); in UTF-16 it is two.
    const el = dom(renderPassage(text, { start: 15, end: 30 }));
    expect(el.querySelector("mark")?.textContent).toBe("Then the claim.");
  });

  it("ignores a span outside the passage and stays safe", () => {
    const el = dom(renderPassage('<img src=x onerror="alert(1)"> [t](http://x "a. b") Hi.', { start: 40, end: 999 }));
    expect(el.querySelector("mark")).toBeNull();
    expect(el.querySelector("img")?.getAttribute("onerror")).toBeNull();
    const inTitle = dom(renderPassage('Look [t](http://x "One. Two") here.', { start: 23, end: 35 }));
    expect(inTitle.querySelector("a")?.getAttribute("title")).toBe("One. Two");
    expect(inTitle.querySelectorAll("a")).toHaveLength(1);
  });
});
