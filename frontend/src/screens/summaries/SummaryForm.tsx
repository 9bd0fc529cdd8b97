import { type FormEvent, type ReactNode, useId, useState } from "react";
import { ApiError, describeError } from "../../api/errors";
import { SUMMARY_LIMITS, type SummaryIn, type SummaryJobOut, type SummaryKind } from "../../api/summaries";
import { useServices } from "../../app/context";
import { FilterBuilder } from "../../components/FilterBuilder";
import { FilterSummary } from "../../components/FilterSummary";
import { fieldErrors, topField } from "../../lib/fieldErrors";
import { useFilterState } from "../../lib/useFilterState";
import type { KeyInfo } from "../../state/metadataDraft";
import { isNoDocuments, KIND_LABELS, SCHEDULE_PRESETS } from "../../state/summaries";
import "./summaries.css";

const L = SUMMARY_LIMITS;
const KINDS: SummaryKind[] = ["pros_cons", "themes", "custom"];
const CUSTOM_SCHEDULE = "custom";

type Field = "kind" | "filter" | "instructions" | "language" | "max_points" | "schedule";
const FIELDS: readonly string[] = ["kind", "filter", "instructions", "language", "max_points", "schedule"];

/** A labelled control with its hint and its problem (tied to it by aria-describedby in the caller). */
function Labelled({
  label,
  htmlFor,
  hint,
  hintId,
  error,
  errorId,
  children,
  className = "field",
}: {
  label: string;
  htmlFor: string;
  hint?: string;
  hintId?: string;
  error?: string;
  errorId: string;
  children: ReactNode;
  className?: string;
}) {
  return (
    <div className={className}>
      <label htmlFor={htmlFor} className="field-label">
        {label}
      </label>
      {children}
      {hint && (
        <span id={hintId} className="muted small">
          {hint}
        </span>
      )}
      {error && (
        <span id={errorId} className="error-text small" role="alert" data-testid={`summary-error-${htmlFor.split("-").pop() ?? ""}`}>
          {error}
        </span>
      )}
    </div>
  );
}

const describedBy = (...ids: (string | false | undefined)[]) => ids.filter(Boolean).join(" ") || undefined;

/**
 * Starts a summary job: its kind, the documents (a metadata filter), instructions for a custom summary, the
 * language, how many points, and an optional schedule. The server's 422 is shown at the field it names; "no
 * documents match" is said plainly above the button.
 */
export function SummaryForm({
  workspaceId,
  keys,
  onStarted,
}: {
  workspaceId: string;
  keys: KeyInfo[];
  onStarted: (job: SummaryJobOut) => void;
}) {
  const { api } = useServices();
  const id = useId();
  const ids = (name: string) => ({ input: `${id}-${name}`, hint: `${id}-${name}-hint`, error: `${id}-${name}-error` });
  const [kind, setKind] = useState<SummaryKind>("pros_cons");
  const filter = useFilterState(keys);
  const [instructions, setInstructions] = useState("");
  const [language, setLanguage] = useState<string>(L.defaultLanguage);
  const [maxPoints, setMaxPoints] = useState(String(L.maxPoints.default));
  const [scheduleChoice, setScheduleChoice] = useState("");
  const [customSchedule, setCustomSchedule] = useState("");
  const [errors, setErrors] = useState<Partial<Record<Field, string>>>({});
  const [noDocuments, setNoDocuments] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const [started, setStarted] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const schedule = scheduleChoice === CUSTOM_SCHEDULE ? customSchedule.trim() : scheduleChoice;

  /** Problems found before sending (the server checks the same). */
  const localProblems = (): Partial<Record<Field, string>> => {
    const out: Partial<Record<Field, string>> = {};
    if (kind === "custom" && !instructions.trim()) out.instructions = "A custom summary needs instructions.";
    if (instructions.length > L.instructionsMaxLength) out.instructions = `At most ${L.instructionsMaxLength} characters.`;
    const lang = language.trim();
    if (!lang) out.language = "Name a language, e.g. English.";
    else if (lang.length > L.languageMaxLength || !L.languagePattern.test(lang)) {
      out.language = `Letters and spaces only, at most ${L.languageMaxLength} characters.`;
    }
    const n = Number(maxPoints);
    if (!Number.isInteger(n) || n < L.maxPoints.minimum || n > L.maxPoints.maximum) {
      out.max_points = `A whole number from ${L.maxPoints.minimum} to ${L.maxPoints.maximum}.`;
    }
    if (scheduleChoice === CUSTOM_SCHEDULE && !schedule) out.schedule = "Enter a cron(...) or rate(...) expression.";
    return out;
  };

  /** A 422 from the server, at the fields it names. */
  const showServerError = (e: unknown) => {
    if (!(e instanceof ApiError) || e.status !== 422) {
      setFormError(describeError(e));
      return;
    }
    if (isNoDocuments(e.message)) {
      setNoDocuments(e.message);
      return;
    }
    const placed: Partial<Record<Field, string>> = {};
    const rest: string[] = [];
    for (const part of fieldErrors(e.message)) {
      const top = topField(part.path);
      const field = (top === "filters" ? "filter" : top) as Field;
      // A deeper path (filter.rating.gte) says more than its field: it stays in the message.
      const text = part.path === top ? part.message : `${part.path}: ${part.message}`;
      if (FIELDS.includes(field)) placed[field] = placed[field] ? `${placed[field]}; ${text}` : text;
      else rest.push(part.path ? `${part.path}: ${part.message}` : part.message);
    }
    setErrors(placed);
    setFormError(rest.length ? rest.join("; ") : null);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setNoDocuments(null);
    setFormError(null);
    setStarted(null);
    const problems = localProblems();
    const filterOk = filter.check();
    setErrors(problems);
    if (Object.keys(problems).length > 0 || !filterOk) return;
    const body: SummaryIn = {
      kind,
      filter: filter.filter ?? {},
      instructions: instructions.trim() || null,
      language: language.trim(),
      max_points: Number(maxPoints),
      schedule: schedule || null,
    };
    setBusy(true);
    try {
      const job = await api.startSummary(workspaceId, body);
      onStarted(job);
      setStarted(schedule ? "Started, and scheduled: its progress shows below." : "Started: its progress shows below.");
    } catch (err) {
      showServerError(err);
    } finally {
      setBusy(false);
    }
  };

  const kindIds = ids("kind");
  const instructionsIds = ids("instructions");
  const languageIds = ids("language");
  const pointsIds = ids("points");
  const scheduleIds = ids("schedule");
  const customIds = ids("expression");
  const filterErrorId = `${id}-filter-error`;
  const noDocsId = `${id}-no-documents`;

  return (
    <form className="card summary-form" onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-title`} noValidate>
      <h2 id={`${id}-title`}>Start a summary</h2>
      <p className="muted small">
        Reads every document the filter selects, in batches, and lists what they say with the documents behind each
        point.
      </p>
      <div className="summary-form-grid">
        <Labelled label="Kind" htmlFor={kindIds.input} errorId={kindIds.error} error={errors.kind}>
          <select
            id={kindIds.input}
            value={kind}
            onChange={(e) => setKind(e.target.value as SummaryKind)}
            aria-describedby={describedBy(errors.kind && kindIds.error)}
          >
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {KIND_LABELS[k]}
              </option>
            ))}
          </select>
        </Labelled>
        <Labelled
          label="Language"
          htmlFor={languageIds.input}
          hint="The summary is written in it, whatever the documents' languages."
          hintId={languageIds.hint}
          errorId={languageIds.error}
          error={errors.language}
        >
          <input
            id={languageIds.input}
            value={language}
            maxLength={L.languageMaxLength}
            onChange={(e) => setLanguage(e.target.value)}
            aria-invalid={errors.language !== undefined}
            aria-describedby={describedBy(languageIds.hint, errors.language && languageIds.error)}
          />
        </Labelled>
        <Labelled
          label="Points per group (max)"
          htmlFor={pointsIds.input}
          errorId={pointsIds.error}
          error={errors.max_points}
        >
          <input
            id={pointsIds.input}
            type="number"
            min={L.maxPoints.minimum}
            max={L.maxPoints.maximum}
            value={maxPoints}
            onChange={(e) => setMaxPoints(e.target.value)}
            aria-invalid={errors.max_points !== undefined}
            aria-describedby={describedBy(errors.max_points && pointsIds.error)}
          />
        </Labelled>
        <Labelled label="When" htmlFor={scheduleIds.input} errorId={scheduleIds.error} error={scheduleChoice === CUSTOM_SCHEDULE ? undefined : errors.schedule}>
          <select
            id={scheduleIds.input}
            value={scheduleChoice}
            onChange={(e) => setScheduleChoice(e.target.value)}
            aria-describedby={describedBy(scheduleChoice !== CUSTOM_SCHEDULE && errors.schedule && scheduleIds.error)}
          >
            <option value="">Once, now</option>
            {SCHEDULE_PRESETS.map((p) => (
              <option key={p.value} value={p.value}>
                {p.label}
              </option>
            ))}
            <option value={CUSTOM_SCHEDULE}>On a schedule I write…</option>
          </select>
        </Labelled>
        {scheduleChoice === CUSTOM_SCHEDULE && (
          <Labelled
            label="Schedule expression"
            htmlFor={customIds.input}
            hint="cron(minute hour day-of-month month day-of-week year) or rate(6 hours), in UTC, at least an hour apart. A scheduled run reads only new or changed documents."
            hintId={customIds.hint}
            errorId={customIds.error}
            error={errors.schedule}
            className="field wide"
          >
            <input
              id={customIds.input}
              value={customSchedule}
              placeholder="cron(0 6 * * ? *)"
              spellCheck={false}
              onChange={(e) => setCustomSchedule(e.target.value)}
              aria-invalid={errors.schedule !== undefined}
              aria-describedby={describedBy(customIds.hint, errors.schedule && customIds.error)}
            />
          </Labelled>
        )}
        {kind === "custom" && (
          <Labelled
            label="Instructions"
            htmlFor={instructionsIds.input}
            hint={`What to summarise, e.g. “the delivery problems customers mention”. At most ${L.instructionsMaxLength.toLocaleString()} characters.`}
            hintId={instructionsIds.hint}
            errorId={instructionsIds.error}
            error={errors.instructions}
            className="field wide"
          >
            <textarea
              id={instructionsIds.input}
              rows={3}
              value={instructions}
              maxLength={L.instructionsMaxLength}
              onChange={(e) => setInstructions(e.target.value)}
              aria-invalid={errors.instructions !== undefined}
              aria-describedby={describedBy(instructionsIds.hint, errors.instructions && instructionsIds.error)}
            />
          </Labelled>
        )}
      </div>
      <FilterBuilder
        draft={filter.draft}
        onChange={(draft) => {
          filter.setDraft(draft);
          setNoDocuments(null);
        }}
        keys={keys}
        errors={filter.errors}
        legend="Documents to read (no conditions: all of them)"
      />
      {errors.filter && (
        <p id={filterErrorId} className="error-text small" role="alert" data-testid="summary-error-filter">
          {errors.filter}
        </p>
      )}
      <FilterSummary filter={filter.filter} onClear={filter.clear} prefix="Reads documents where" />
      {noDocuments && (
        <div id={noDocsId} className="error-note no-documents" role="alert" data-testid="summary-no-documents">
          <span>
            <strong>No documents match.</strong> The server says: {noDocuments}. Change or clear the filter, or choose a
            schedule to summarise documents as they arrive.
          </span>
        </div>
      )}
      {formError && (
        <p className="error-text" role="alert" data-testid="summary-form-error">
          {formError}
        </p>
      )}
      <div className="row wrap">
        <button type="submit" className="btn primary" disabled={busy} aria-describedby={noDocuments ? noDocsId : undefined}>
          {busy ? "Starting…" : "Start summary"}
        </button>
        {started && (
          <span className="ok-text" role="status">
            {started}
          </span>
        )}
      </div>
    </form>
  );
}
