import type { HitOut } from "../../api/types";
import { formatScore } from "../../lib/format";

export function HitList({ hits, label }: { hits: HitOut[]; label: string }) {
  if (hits.length === 0) return <p className="muted">No passage matched.</p>;
  return (
    <ol className="hits" aria-label={label}>
      {hits.map((h, i) => (
        <li key={h.chunk_id} className="hit" data-testid="search-hit">
          <div className="hit-head">
            <span className="rank" aria-label={`Rank ${i + 1}`}>
              {i + 1}
            </span>
            <span className="hit-title">{h.title || "Untitled"}</span>
            <span className="score" title="Score" data-testid="hit-score">
              {formatScore(h.score)}
            </span>
          </div>
          <div className="hit-meta small muted">
            {h.dense_rank !== null && <span>dense #{h.dense_rank}</span>}
            {h.keyword_rank !== null && <span>keyword #{h.keyword_rank}</span>}
            {h.rerank_score !== null && <span>rerank {formatScore(h.rerank_score)}</span>}
            <span>
              chars {h.start}–{h.end}
            </span>
          </div>
          <p className="hit-text">{h.text}</p>
        </li>
      ))}
    </ol>
  );
}
