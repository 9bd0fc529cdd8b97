import type { EarlierAnswer } from "../../state/chat";

/** The answers a regeneration replaced, folded away under the current one (oldest first). */
export function EarlierAnswers({ earlier }: { earlier: EarlierAnswer[] }) {
  if (earlier.length === 0) return null;
  return (
    <details className="earlier-answers" data-testid="earlier-answers">
      <summary>
        {earlier.length === 1 ? "1 earlier answer" : `${earlier.length} earlier answers`} to this question
      </summary>
      <ol>
        {earlier.map((a) => (
          <li key={a.id} className="earlier-answer" data-testid="earlier-answer">
            {a.stopped && <span className="stopped-mark">Stopped</span>}
            {a.text || "(no text)"}
          </li>
        ))}
      </ol>
    </details>
  );
}
