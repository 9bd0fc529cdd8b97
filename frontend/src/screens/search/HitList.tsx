import type { HitOut } from "../../api/types";
import { formatScore } from "../../lib/format";
import { sourceName, sourceSubtitle } from "../../lib/sources";
import "./hit-list.css";

export function HitList({ hits, label }: { hits: HitOut[]; label: string }) {
  if (hits.length === 0) return <p className="muted">No passage matched.</p>;
  return (
    <ol className="hits" aria-label={label}>
      {hits.map((h, i) => {
        const subtitle = sourceSubtitle(h);
        return (
          <li key={h.chunk_id} className="hit" data-testid="search-hit">
            <div className="hit-head">
              <span className="rank" aria-label={`Rank ${i + 1}`}>
                {i + 1}
              </span>
              <span className="hit-name">
                <span data-testid="hit-name">{sourceName(h)}</span>
                {h.page ? <span className="muted small hit-subtitle">page {h.page}</span> : null}
                {subtitle && (
                  <span className="muted small hit-subtitle" data-testid="hit-subtitle">
                    “{subtitle}”
                  </span>
                )}
              </span>
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
        );
      })}
    </ol>
  );
}
