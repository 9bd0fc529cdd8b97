import { type FormEvent, useEffect, useId, useRef, useState } from "react";
import { limits } from "../../api/limits.gen";
import type { SearchMode, SearchOut } from "../../api/types";
import { useServices } from "../../app/context";
import { navigate } from "../../app/router";
import { Empty, ErrorNote, Loading } from "../../components/common";
import { FilterBuilder } from "../../components/FilterBuilder";
import { FilterSummary } from "../../components/FilterSummary";
import { WorkspacePicker } from "../../components/WorkspacePicker";
import { useAsync } from "../../lib/hooks";
import { useFilterState } from "../../lib/useFilterState";
import { useMetadataKeys } from "../../lib/useMetadataKeys";
import { rerankerOption } from "../../state/rerankerOption";
import { HitList } from "./HitList";
import "./search.css";

const MODES: SearchMode[] = ["dense", "keyword", "hybrid"];
const S = limits.SearchIn;

type Outcome = { mode: SearchMode; out: SearchOut | null; error: unknown };

export function SearchScreen({ workspaceId }: { workspaceId: string | null }) {
  const { api, models, modelsError } = useServices();
  const reranking = rerankerOption(models, modelsError);
  const rerankHintId = useId();
  const workspaces = useAsync(() => api.listWorkspaces(), [api]);
  const [query, setQuery] = useState("");
  const [mode, setMode] = useState<SearchMode>(S.mode.default as SearchMode);
  const [rerankWanted, setRerank] = useState(false);
  const rerank = rerankWanted && reranking.available;
  const [compare, setCompare] = useState(false);
  const [topK, setTopK] = useState(5);
  const [results, setResults] = useState<Outcome[] | null>(null);
  const [busy, setBusy] = useState(false);
  const abortRef = useRef<AbortController | null>(null);
  // Metadata filter: the builder opens on demand; keys are read from the workspace's documents then.
  const [filterOpen, setFilterOpen] = useState(false);
  const filterId = useId();
  const keys = useMetadataKeys(workspaceId, filterOpen);
  const filter = useFilterState(keys);

  useEffect(() => {
    const first = workspaces.data?.[0];
    if (!workspaceId && first) navigate({ screen: "search", workspaceId: first.id }, { replace: true });
  }, [workspaceId, workspaces.data]);
  useEffect(() => () => abortRef.current?.abort(), []);

  const run = async (e: FormEvent) => {
    e.preventDefault();
    if (!workspaceId || !query.trim()) return;
    if (!filter.check()) {
      setFilterOpen(true);
      return;
    }
    const filters = filter.filter;
    abortRef.current?.abort();
    const ctl = new AbortController();
    abortRef.current = ctl;
    setBusy(true);
    const modes = compare ? MODES : [mode];
    const outcomes = await Promise.all(
      modes.map(async (m): Promise<Outcome> => {
        try {
          const body = { query: query.trim(), mode: m, rerank, top_k: topK, ...(filters ? { filters } : {}) };
          const out = await api.search(workspaceId, body, ctl.signal);
          return { mode: m, out, error: null };
        } catch (err) {
          return { mode: m, out: null, error: err };
        }
      }),
    );
    if (ctl.signal.aborted) return;
    setResults(outcomes);
    setBusy(false);
  };

  if (workspaces.loading && !workspaces.data) return <Loading label="Loading workspaces…" />;
  if (workspaces.error !== null) return <ErrorNote error={workspaces.error} onRetry={workspaces.reload} />;
  if (workspaces.data?.length === 0) {
    return (
      <Empty title="Nothing to search yet">
        <a href="#/workspaces">Create a workspace</a> and add documents first.
      </Empty>
    );
  }

  return (
    <div className="page">
      <header className="page-head">
        <h1>Search playground</h1>
        <WorkspacePicker
          workspaces={workspaces.data ?? []}
          value={workspaceId}
          onChange={(id) => navigate({ screen: "search", workspaceId: id })}
        />
      </header>
      <form className="card search-form" onSubmit={(e) => void run(e)} role="search">
        <label className="field grow">
          <span>Query</span>
          <input
            type="search"
            value={query}
            maxLength={S.query.maxLength}
            onChange={(e) => setQuery(e.target.value)}
            placeholder="What are you looking for?"
            data-testid="search-input"
          />
        </label>
        <fieldset className="modes" disabled={compare}>
          <legend>Mode</legend>
          {MODES.map((m) => (
            <label key={m} className="check">
              <input type="radio" name="mode" value={m} checked={mode === m} onChange={() => setMode(m)} /> {m}
            </label>
          ))}
        </fieldset>
        <label className="field narrow">
          <span>Top k</span>
          <input
            type="number"
            min={S.top_k.minimum}
            max={S.top_k.maximum}
            value={topK}
            onChange={(e) => setTopK(Math.max(S.top_k.minimum, Math.min(S.top_k.maximum, Number(e.target.value) || 1)))}
          />
        </label>
        <div className="field rerank-option">
          <label className="check">
            <input
              type="checkbox"
              checked={rerank}
              disabled={!reranking.available}
              onChange={(e) => setRerank(e.target.checked)}
              aria-describedby={reranking.available ? undefined : rerankHintId}
              data-testid="search-rerank"
            />{" "}
            Rerank
          </label>
          {!reranking.available && (
            <span id={rerankHintId} className="muted small" data-testid="search-rerank-reason">
              {reranking.reason}
            </span>
          )}
        </div>
        <label className="check">
          <input type="checkbox" checked={compare} onChange={(e) => setCompare(e.target.checked)} data-testid="search-compare" />{" "}
          Compare modes side by side
        </label>
        <button
          type="button"
          className="btn"
          aria-expanded={filterOpen}
          aria-controls={filterId}
          onClick={() => setFilterOpen((o) => !o)}
          data-testid="search-filter-toggle"
        >
          Filter{filter.draft.rows.length > 0 ? ` (${filter.draft.rows.length})` : ""}
        </button>
        <button type="submit" className="btn primary" disabled={busy || !query.trim() || !workspaceId} data-testid="search-submit">
          {busy ? "Searching…" : "Search"}
        </button>
        <div id={filterId} className="search-filter" hidden={!filterOpen}>
          {filterOpen && <FilterBuilder draft={filter.draft} onChange={filter.setDraft} keys={keys} errors={filter.errors} />}
        </div>
        {filter.invalid && Object.keys(filter.errors).length > 0 && (
          <p className="error-text small search-filter" role="alert">
            The filter has a problem: fix it above to search.
          </p>
        )}
        <div className="search-filter">
          <FilterSummary filter={filter.filter} onClear={filter.clear} prefix="Only documents where" />
        </div>
      </form>
      {busy && <Loading label="Searching…" />}
      {results && !busy && (
        <div className={`results cols-${results.length}`} data-testid="search-results">
          {results.map((r) => (
            <section key={r.mode} className="result-col" aria-label={`${r.mode} results`}>
              <h2 className="section-title">
                {r.mode}
                {rerank ? " + rerank" : ""}
                {r.out && <span className="muted small"> · {r.out.took_ms.toFixed(0)} ms</span>}
              </h2>
              {r.error !== null ? <ErrorNote error={r.error} /> : r.out && <HitList hits={r.out.hits} label={`${r.mode} hits`} />}
            </section>
          ))}
        </div>
      )}
    </div>
  );
}
