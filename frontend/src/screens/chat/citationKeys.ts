/**
 * Arrow keys inside a sentence's group of citation buttons (rendered by lib/markdown.ts): the group is one
 * Tab stop, and Left/Right (Up/Down, Home/End) move between its sources, carrying the Tab stop along.
 */
import type { KeyboardEvent } from "react";

const STEPS: Record<string, (i: number, last: number) => number> = {
  ArrowRight: (i, last) => Math.min(i + 1, last),
  ArrowDown: (i, last) => Math.min(i + 1, last),
  ArrowLeft: (i) => Math.max(i - 1, 0),
  ArrowUp: (i) => Math.max(i - 1, 0),
  Home: () => 0,
  End: (_i, last) => last,
};

/** Handles the key when it moves focus within a citation group; returns whether it did. */
export function moveCitationFocus(e: KeyboardEvent<HTMLElement>): boolean {
  const step = STEPS[e.key];
  const current = (e.target as HTMLElement).closest<HTMLButtonElement>("button.cite");
  const group = current?.closest(".cite-group");
  if (!step || !current || !group) return false;
  const buttons = [...group.querySelectorAll<HTMLButtonElement>("button.cite")];
  const next = buttons[step(buttons.indexOf(current), buttons.length - 1)];
  if (!next) return false;
  e.preventDefault();
  for (const b of buttons) b.tabIndex = b === next ? 0 : -1;
  next.focus();
  return true;
}
