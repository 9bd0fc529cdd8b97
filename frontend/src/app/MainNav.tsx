import { useEffect, useId, useRef, useState } from "react";
import { MenuIcon } from "../components/icons";
import { type Route, hrefFor } from "./router";
import "./shell.css";

const NAV: { label: string; screen: Route["screen"] }[] = [
  { label: "Chat", screen: "chat" },
  { label: "Workspaces", screen: "workspaces" },
  { label: "Documents", screen: "documents" },
  { label: "Search", screen: "search" },
  { label: "Summaries", screen: "summaries" },
];

function navHref(screen: Route["screen"]): string {
  if (screen === "chat") return hrefFor({ screen, sessionId: null });
  if (screen === "workspaces") return hrefFor({ screen });
  return hrefFor({ screen, workspaceId: null });
}

/**
 * The main navigation. On narrow screens (shell.css) the links collapse behind a "Menu" disclosure button:
 * it says whether the list is open (aria-expanded); Escape, a click outside or choosing a screen closes it.
 */
export function MainNav({ current }: { current: Route["screen"] }) {
  const [open, setOpen] = useState(false);
  const navRef = useRef<HTMLElement>(null);
  const toggleRef = useRef<HTMLButtonElement>(null);
  const listId = useId();

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape") return;
      setOpen(false);
      toggleRef.current?.focus();
    };
    const onPointer = (e: PointerEvent) => {
      if (e.target instanceof Node && !navRef.current?.contains(e.target)) setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("pointerdown", onPointer);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("pointerdown", onPointer);
    };
  }, [open]);

  return (
    <nav aria-label="Main" className={`main-nav${open ? " open" : ""}`} ref={navRef} data-testid="main-nav">
      <button
        type="button"
        className="btn nav-toggle"
        ref={toggleRef}
        aria-expanded={open}
        aria-controls={listId}
        onClick={() => setOpen((o) => !o)}
        data-testid="nav-toggle"
      >
        <MenuIcon />
        Menu
      </button>
      <ul className="nav" id={listId}>
        {NAV.map((n) => (
          <li key={n.screen}>
            <a
              href={navHref(n.screen)}
              aria-current={current === n.screen ? "page" : undefined}
              onClick={() => setOpen(false)}
              data-testid={`nav-${n.screen}`}
            >
              {n.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
