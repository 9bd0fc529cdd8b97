/**
 * How a source is labelled: by the name people gave the document (its file name, or the title they
 * typed), with the text's own embedded title as secondary text only when it says something more.
 */

export interface NamedSource {
  /** The document's name (absent on citations stored before names were kept). */
  document_name?: string;
  /** The title the parser found in the text (a PDF's metadata, a page's <title>, a first heading). */
  title: string;
}

const PLACEHOLDER_TITLES = new Set(["about:blank", "untitled", "untitled document", "document", "microsoft word"]);

function stem(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

function comparable(s: string): string {
  return s.toLowerCase().replace(/[\s_\-.]+/g, " ").trim();
}

/** The label of a source: the document's name, else its title. */
export function sourceName(source: NamedSource): string {
  return source.document_name?.trim() || source.title.trim() || "Untitled";
}

/** The embedded title, when it is worth showing next to the name (not empty, a placeholder, or the name again). */
export function sourceSubtitle(source: NamedSource): string | null {
  const title = source.title.trim();
  const name = source.document_name?.trim();
  if (!title || !name) return null;
  const t = comparable(title);
  if (PLACEHOLDER_TITLES.has(t) || t === comparable(name) || t === comparable(stem(name))) return null;
  return title;
}
