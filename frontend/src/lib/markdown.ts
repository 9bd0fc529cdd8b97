/**
 * Markdown for answers: marked renders, DOMPurify sanitizes (model output is untrusted), and inline
 * citation markers `[n]` / `[1, 2]` become buttons that open the cited passage.
 *
 * A sentence's markers are set after its punctuation ("27 days [1]." reads "27 days.[1]"), never wrap
 * to a line of their own, and form one group: one Tab stop, the arrow keys move between its sources
 * (see `moveCitationFocus`).
 */
import DOMPurify from "dompurify";
import { Marked, type TokenizerAndRendererExtension, type Tokens } from "marked";
import { type NamedSource, sourceName } from "./sources";

export interface CitationRef extends NamedSource {
  n: number;
}

interface CitationToken extends Tokens.Generic {
  type: "citation";
  raw: string;
  /** Shown before the markers: the punctuation written before them, else the one written after. */
  before: string;
  /** Punctuation written after the markers when some was also written before ("x. [1]."): kept after. */
  after: string;
  numbers: number[];
}

/** U+2060 WORD JOINER: no line break between the sentence's last word and its markers. */
const WORD_JOINER = "\u2060";

// The citations of the answer being rendered (parse is synchronous, so a module slot is safe).
let current = new Map<number, CitationRef>();

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function citationButton(n: number, focusable: boolean): string {
  const ref = current.get(n);
  if (!ref) return `[${n}]`;
  const label = escapeHtml(`Source ${n}: ${sourceName(ref)}`);
  const tabindex = focusable ? "0" : "-1";
  return `<button type="button" class="cite" data-citation="${n}" data-testid="citation-link" tabindex="${tabindex}" aria-label="${label}" title="${label}">[${n}]</button>`;
}

/** The markers of one sentence: buttons for known sources (the first one the group's Tab stop), text for others. */
function citationGroup(numbers: number[]): string {
  const unique = [...new Set(numbers)];
  const known = unique.filter((n) => current.has(n));
  if (known.length === 0) return unique.map((n) => `[${n}]`).join("");
  const parts = unique.map((n) => citationButton(n, n === known[0]));
  const label = known.length > 1 ? `Sources ${known.join(", ")}: arrow keys move between them` : `Source ${known[0]}`;
  return `<span class="cite-group" role="group" aria-label="${escapeHtml(label)}" data-testid="citation-group">${parts.join("")}</span>`;
}

// One or more markers ("[1]", "[1][2]", "[1, 2]"; not a link's "[1](url)"), with the spaces before them and
// punctuation on either side.
const MARKERS = /^[ \t]*([.!?,;:]*)[ \t]*((?:\[\d{1,3}(?:\s*,\s*\d{1,3})*\](?!\())+)([.!?,;:]*)/;

const citationExtension: TokenizerAndRendererExtension = {
  name: "citation",
  level: "inline",
  start(src: string) {
    const i = src.search(/[ \t]*[.!?,;:]*[ \t]*\[\d/);
    return i < 0 ? undefined : i;
  },
  tokenizer(src: string): CitationToken | undefined {
    const m = MARKERS.exec(src);
    if (!m?.[2]) return undefined;
    const numbers = [...m[2].matchAll(/\d{1,3}/g)].map((d) => Number(d[0]));
    const [written, trailing] = [m[1] ?? "", m[3] ?? ""];
    const before = written || trailing;
    const after = written ? trailing : "";
    return { type: "citation", raw: m[0], before, after, numbers };
  },
  renderer(token: Tokens.Generic) {
    const { before, after, numbers } = token as CitationToken;
    const run = `${WORD_JOINER}${escapeHtml(before)}${citationGroup(numbers)}${escapeHtml(after)}`;
    return `<span class="cite-run">${run}</span>`;
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

// Passages are shown as written: Markdown, without turning their own "[1]" into citation buttons.
const passageMarked = new Marked({ gfm: true, breaks: false, async: false });

// Private-use characters marking the highlight through rendering; swapped for <mark> after sanitizing.
const MARK_OPEN = "\uE000";
const MARK_CLOSE = "\uE001";
// Block syntax a highlighted line starts with ("# ", "- ", "1. ", "> "): the mark goes after it.
const BLOCK_PREFIX = /^(?:#{1,6}\s+|[-*+]\s+|\d{1,9}[.)]\s+|>\s*)+/;

export interface TextSpan {
  start: number;
  end: number;
}

/** A span counted in code points (the server's) as UTF-16 offsets into `text` (JavaScript's). */
function toUtf16(text: string, span: TextSpan): TextSpan | null {
  const points = Array.from(text);
  if (!(span.start >= 0 && span.start < span.end && span.end <= points.length)) return null;
  return {
    start: points.slice(0, span.start).join("").length,
    end: points.slice(0, span.end).join("").length,
  };
}

/** Wraps the text between the sentinels in <mark>s (one per text node, so a mark never crosses elements). */
function markBetweenSentinels(root: DocumentFragment): void {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes: Text[] = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) nodes.push(n as Text);
  let inside = false;
  for (const node of nodes) {
    const value = node.data;
    if (!inside && !value.includes(MARK_OPEN)) continue;
    const pieces: Node[] = [];
    let run = "";
    const flush = () => {
      if (!run) return;
      if (inside) {
        const mark = document.createElement("mark");
        mark.className = "support";
        mark.dataset.testid = "citation-highlight";
        mark.textContent = run;
        pieces.push(mark);
      } else {
        pieces.push(document.createTextNode(run));
      }
      run = "";
    };
    for (const ch of value) {
      if (ch === MARK_OPEN || ch === MARK_CLOSE) {
        flush();
        inside = ch === MARK_OPEN;
      } else {
        run += ch;
      }
    }
    flush();
    node.replaceWith(...pieces);
  }
}

/** Safe HTML for a cited passage, with `highlight` (code points, as the server counts) in a <mark>. */
export function renderPassage(text: string, highlight: TextSpan | null = null): string {
  ensureHooks();
  const clean = text.replace(/[\uE000\uE001]/g, "");
  const span = highlight && clean === text ? toUtf16(text, highlight) : null;
  let source = clean;
  if (span) {
    const prefix = BLOCK_PREFIX.exec(text.slice(span.start, span.end))?.[0].length ?? 0;
    const start = span.start + prefix;
    source = `${text.slice(0, start)}${MARK_OPEN}${text.slice(start, span.end)}${MARK_CLOSE}${text.slice(span.end)}`;
  }
  const fragment = DOMPurify.sanitize(passageMarked.parse(source) as string, {
    ADD_ATTR: ["target"],
    FORBID_TAGS: ["style", "form", "input"],
    RETURN_DOM_FRAGMENT: true,
  });
  markBetweenSentinels(fragment);
  const container = document.createElement("div");
  container.append(fragment);
  // A sentinel that landed in an attribute (a link's title) is dropped there.
  return container.innerHTML.replace(/[\uE000\uE001]/g, "").trim();
}
