/**
 * Markdown for answers: marked renders, DOMPurify sanitizes (model output is untrusted), and inline
 * citation markers `[n]` / `[1, 2]` become buttons that open the cited passage.
 */
import DOMPurify from "dompurify";
import { Marked, type TokenizerAndRendererExtension, type Tokens } from "marked";

export interface CitationRef {
  n: number;
  title: string;
}

interface CitationToken extends Tokens.Generic {
  type: "citation";
  raw: string;
  numbers: number[];
}

// The citations of the answer being rendered (parse is synchronous, so a module slot is safe).
let current = new Map<number, CitationRef>();

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function citationButton(n: number): string {
  const ref = current.get(n);
  if (!ref) return `[${n}]`;
  const label = escapeHtml(`Source ${n}: ${ref.title || "untitled"}`);
  return `<button type="button" class="cite" data-citation="${n}" data-testid="citation-link" aria-label="${label}" title="${label}">[${n}]</button>`;
}

const citationExtension: TokenizerAndRendererExtension = {
  name: "citation",
  level: "inline",
  start(src: string) {
    const i = src.search(/\[\d/);
    return i < 0 ? undefined : i;
  },
  tokenizer(src: string): CitationToken | undefined {
    const m = /^\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?!\()/.exec(src);
    if (!m?.[1]) return undefined;
    return { type: "citation", raw: m[0], numbers: m[1].split(",").map((s) => Number(s.trim())) };
  },
  renderer(token: Tokens.Generic) {
    return (token as CitationToken).numbers.map(citationButton).join("");
  },
};

const marked = new Marked({ gfm: true, breaks: false, async: false });
marked.use({ extensions: [citationExtension] });

let hooked = false;
function ensureHooks(): void {
  if (hooked) return;
  hooked = true;
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.getAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  });
}

/** Safe HTML for a (possibly partial, still streaming) markdown answer. */
export function renderMarkdown(text: string, citations: CitationRef[] = []): string {
  ensureHooks();
  current = new Map(citations.map((c) => [c.n, c]));
  try {
    const html = marked.parse(text) as string;
    return DOMPurify.sanitize(html, { ADD_ATTR: ["target"], FORBID_TAGS: ["style", "form", "input"] });
  } finally {
    current = new Map();
  }
}
