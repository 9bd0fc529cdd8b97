import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "../../lib/markdown";
import { moveCitationFocus } from "./citationKeys";

const refs = [
  { n: 1, title: "", document_name: "a.md" },
  { n: 2, title: "", document_name: "b.md" },
  { n: 3, title: "", document_name: "c.md" },
];

function Answer({ text }: { text: string }) {
  return (
    <>
      <button type="button">before</button>
      <div onKeyDown={moveCitationFocus} dangerouslySetInnerHTML={{ __html: renderMarkdown(text, refs) }} />
      <button type="button">after</button>
    </>
  );
}

describe("citation groups and the keyboard", () => {
  it("makes a sentence's sources one Tab stop, with arrow keys between them", async () => {
    const user = userEvent.setup();
    render(<Answer text="First claim [1][2][3]. Second claim [2]." />);
    const label = (el: Element | null) => el?.getAttribute("aria-label");

    await user.tab();
    await user.tab();
    expect(label(document.activeElement)).toBe("Source 1: a.md");
    await user.keyboard("{ArrowRight}");
    expect(label(document.activeElement)).toBe("Source 2: b.md");
    await user.keyboard("{End}");
    expect(label(document.activeElement)).toBe("Source 3: c.md");
    await user.keyboard("{ArrowRight}"); // stays on the last
    expect(label(document.activeElement)).toBe("Source 3: c.md");
    await user.keyboard("{ArrowLeft}");
    expect(label(document.activeElement)).toBe("Source 2: b.md");

    const groups = [...document.querySelectorAll(".cite-group")];
    expect(groups).toHaveLength(2);
    await user.tab(); // leaves the group: the next sentence's group
    expect(label(document.activeElement)).toBe("Source 2: b.md");
    expect(document.activeElement?.closest(".cite-group")).toBe(groups[1]);
    await user.tab();
    expect(document.activeElement).toBe(screen.getByText("after"));

    await user.tab({ shift: true });
    await user.tab({ shift: true }); // back into the first group, where focus was last
    expect(label(document.activeElement)).toBe("Source 2: b.md");
    expect(document.activeElement?.closest(".cite-group")).toBe(groups[0]);
  });
});
