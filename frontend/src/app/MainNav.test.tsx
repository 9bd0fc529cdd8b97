import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { MainNav } from "./MainNav";

function renderNav() {
  render(
    <>
      <MainNav current="search" />
      <p data-testid="outside">Elsewhere</p>
    </>,
  );
  const toggle = screen.getByRole("button", { name: "Menu" });
  const list = document.getElementById(toggle.getAttribute("aria-controls") ?? "");
  return { toggle, list };
}

describe("MainNav", () => {
  it("is a disclosure: the Menu button controls the list of screens and says whether it is open", async () => {
    const user = userEvent.setup();
    const { toggle, list } = renderNav();
    expect(list?.tagName).toBe("UL");
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    expect(screen.getByTestId("main-nav").classList.contains("open")).toBe(false);
    await user.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    expect(screen.getByTestId("main-nav").classList.contains("open")).toBe(true);
    await user.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
  });

  it("marks the current screen", () => {
    renderNav();
    expect(screen.getByRole("link", { name: "Search" }).getAttribute("aria-current")).toBe("page");
    expect(screen.getByRole("link", { name: "Chat" }).getAttribute("aria-current")).toBeNull();
  });

  it("links to the Summaries screen", () => {
    renderNav();
    expect(screen.getByRole("link", { name: "Summaries" }).getAttribute("href")).toBe("#/summaries");
  });

  it("closes on Escape and gives focus back to the Menu button", async () => {
    const user = userEvent.setup();
    const { toggle } = renderNav();
    await user.click(toggle);
    await user.tab();
    expect(document.activeElement).toBe(screen.getByRole("link", { name: "Chat" }));
    await user.keyboard("{Escape}");
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    expect(document.activeElement).toBe(toggle);
  });

  it("closes when a screen is chosen or on a click outside", async () => {
    const user = userEvent.setup();
    const { toggle } = renderNav();
    await user.click(toggle);
    await user.click(screen.getByRole("link", { name: "Documents" }));
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    expect(window.location.hash).toBe("#/documents");
    await user.click(toggle);
    await user.click(screen.getByTestId("outside"));
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
  });
});
