import { type FormEvent, useId, useState } from "react";
import { describeError } from "../../api/errors";
import type { ModelsOut, WorkspaceOut } from "../../api/types";
import { useServices } from "../../app/context";
import {
  type WorkspaceFormErrors,
  type WorkspaceFormValues,
  chunkBounds,
  defaultWorkspaceForm,
  validateWorkspaceForm,
} from "../../state/workspaceForm";
import { type RerankerOption, rerankerOption } from "../../state/rerankerOption";
import "./workspaces.css";

function FieldError({ id, error }: { id: string; error?: string }) {
  return error ? (
    <span id={id} className="error-text small" role="alert">
      {error}
    </span>
  ) : null;
}

/** The reranker choice; when the deployment has none it is disabled and says so (choosing one would fail with 422). */
function RerankerField({ option, value, onChange }: { option: RerankerOption; value: string; onChange: (id: string) => void }) {
  const selectId = useId();
  const hintId = useId();
  return (
    <div className="field">
      <label htmlFor={selectId} className="field-label">
        Reranker
      </label>
      <select
        id={selectId}
        value={option.available ? value : ""}
        onChange={(e) => onChange(e.target.value)}
        disabled={!option.available}
        aria-describedby={option.available ? undefined : hintId}
        data-testid="workspace-reranker"
      >
        <option value="">None</option>
        {option.available &&
          option.rerankers.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name} ({m.provider})
            </option>
          ))}
      </select>
      {!option.available && (
        <span id={hintId} className="muted small" data-testid="workspace-reranker-reason">
          {option.reason}
        </span>
      )}
    </div>
  );
}

export function WorkspaceForm({ models, onCreated }: { models: ModelsOut | null; onCreated: (w: WorkspaceOut) => void }) {
  const { api, modelsError } = useServices();
  const reranking = rerankerOption(models, modelsError);
  const [v, setV] = useState<WorkspaceFormValues>(defaultWorkspaceForm);
  const [errors, setErrors] = useState<WorkspaceFormErrors>({});
  const [busy, setBusy] = useState(false);
  const [serverError, setServerError] = useState<unknown>(null);
  const set = <K extends keyof WorkspaceFormValues>(k: K, value: WorkspaceFormValues[K]) => {
    setV((old) => ({ ...old, [k]: value }));
    if (errors[k]) setErrors((old) => ({ ...old, [k]: undefined }));
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { body, errors: errs } = validateWorkspaceForm(reranking.available ? v : { ...v, reranker: "" });
    setErrors(errs);
    if (!body) return;
    setBusy(true);
    setServerError(null);
    try {
      const ws = await api.createWorkspace(body);
      onCreated(ws);
      setV(defaultWorkspaceForm);
    } catch (err) {
      setServerError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card stack" onSubmit={(e) => void submit(e)} noValidate data-testid="workspace-form" aria-labelledby="new-ws-title">
      <h2 id="new-ws-title">New workspace</h2>
      <label className="field">
        <span>Name</span>
        <input
          value={v.name}
          onChange={(e) => set("name", e.target.value)}
          aria-invalid={!!errors.name}
          aria-describedby="ws-name-err"
          data-testid="workspace-name"
        />
        <FieldError id="ws-name-err" error={errors.name} />
      </label>
      <label className="field">
        <span>Embedding model</span>
        <select value={v.embeddingModel} onChange={(e) => set("embeddingModel", e.target.value)}>
          <option value="">Server default</option>
          {models?.embeddings.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name} ({m.provider})
            </option>
          ))}
        </select>
      </label>
      <div className="row wrap">
        <label className="field">
          <span>Chunk size (tokens)</span>
          <input
            type="number"
            inputMode="numeric"
            min={chunkBounds.size.min}
            max={chunkBounds.size.max}
            value={v.chunkSize}
            onChange={(e) => set("chunkSize", e.target.value)}
            aria-invalid={!!errors.chunkSize}
            aria-describedby="ws-size-err ws-size-hint"
            data-testid="workspace-chunk-size"
          />
          <span id="ws-size-hint" className="muted small">
            {chunkBounds.size.min}–{chunkBounds.size.max}
          </span>
          <FieldError id="ws-size-err" error={errors.chunkSize} />
        </label>
        <label className="field">
          <span>Overlap (tokens)</span>
          <input
            type="number"
            inputMode="numeric"
            min={chunkBounds.overlap.min}
            max={chunkBounds.overlap.max}
            value={v.chunkOverlap}
            onChange={(e) => set("chunkOverlap", e.target.value)}
            aria-invalid={!!errors.chunkOverlap}
            aria-describedby="ws-overlap-err ws-overlap-hint"
            data-testid="workspace-chunk-overlap"
          />
          <span id="ws-overlap-hint" className="muted small">
            Smaller than the chunk size
          </span>
          <FieldError id="ws-overlap-err" error={errors.chunkOverlap} />
        </label>
      </div>
      <label className="check">
        <input type="checkbox" checked={v.hybrid} onChange={(e) => set("hybrid", e.target.checked)} /> Hybrid search
        (dense + keyword)
      </label>
      <RerankerField option={reranking} value={v.reranker} onChange={(id) => set("reranker", id)} />
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy} data-testid="workspace-create">
          {busy ? "Creating…" : "Create workspace"}
        </button>
      </div>
      {serverError !== null && (
        <p className="error-text" role="alert">
          {describeError(serverError)}
        </p>
      )}
    </form>
  );
}
