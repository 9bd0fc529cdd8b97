import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

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
