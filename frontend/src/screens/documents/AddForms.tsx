import { type FormEvent, type ReactNode, useState } from "react";
import { describeError } from "../../api/errors";
import { limits } from "../../api/limits.gen";
import type { UserMetadata } from "../../api/metadata";
import type { DocumentOut } from "../../api/types";
import { useServices } from "../../app/context";
import { MetadataFields } from "../../components/MetadataFields";
import { type MetadataInput, useMetadataInput } from "../../lib/useMetadataInput";
import type { KeyInfo } from "../../state/metadataDraft";

const W = limits.WebsiteIn;

/** `body` with the metadata set for it (left out when there is none). */
function withMetadata<T extends object>(body: T, metadata: UserMetadata): T & { metadata?: UserMetadata } {
  return Object.keys(metadata).length > 0 ? { ...body, metadata } : body;
}

/**
 * A form's submission: the metadata is checked first (its problems shown at its fields), and a 422 about
 * metadata is shown there too. The metadata stays for the next document; `reset` clears the rest.
 */
function useSubmit(
  run: (metadata: UserMetadata) => Promise<DocumentOut>,
  onAdded: (d: DocumentOut) => void,
  reset: () => void,
  metadataInput: MetadataInput,
) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const save = async () => {
    setError(null);
    setDone(null);
    const metadata = metadataInput.check();
    if (!metadata) return;
    setBusy(true);
    try {
      const doc = await run(metadata);
      onAdded(doc);
      setDone(`Added “${doc.name}”. Its status updates below.`);
      reset();
    } catch (err) {
      if (!metadataInput.showServerError(err)) setError(err);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save();
  };
  return { busy, error, done, submit };
}

function Outcome({ error, done }: { error: unknown; done: string | null }) {
  if (error !== null) {
    return (
      <p className="error-text" role="alert">
        {describeError(error)}
      </p>
    );
  }
  return done ? (
    <p className="ok-text" role="status">
      {done}
    </p>
  ) : null;
}

function Field({ label, children, hint }: { label: string; children: ReactNode; hint?: string }) {
  return (
    <label className="field">
      <span>{label}</span>
      {children}
      {hint && <span className="muted small">{hint}</span>}
    </label>
  );
}

interface AddFormProps {
  workspaceId: string;
  onAdded: (d: DocumentOut) => void;
  /** Metadata keys seen on the workspace's documents. */
  suggestions?: KeyInfo[];
}

export function AddTextForm({ workspaceId, onAdded, suggestions = [] }: AddFormProps) {
  const { api } = useServices();
  const [title, setTitle] = useState("");
  const [text, setText] = useState("");
  const metadata = useMetadataInput();
  const { busy, error, done, submit } = useSubmit(
    (meta) => api.addText(workspaceId, withMetadata({ type: "text", title: title.trim(), text }, meta)),
    onAdded,
    () => {
      setTitle("");
      setText("");
    },
    metadata,
  );
  return (
    <form className="stack" onSubmit={submit} data-testid="add-text-form">
      <Field label="Title">
        <input value={title} maxLength={limits.TextDocumentIn.title.maxLength} onChange={(e) => setTitle(e.target.value)} />
      </Field>
      <Field label="Text">
        <textarea required rows={6} value={text} onChange={(e) => setText(e.target.value)} />
      </Field>
      <MetadataFields input={metadata} suggestions={suggestions} testId="add-text-metadata" />
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy || !text.trim()}>
          {busy ? "Adding…" : "Add text"}
        </button>
      </div>
      <Outcome error={error} done={done} />
    </form>
  );
}

export function AddQnaForm({ workspaceId, onAdded, suggestions = [] }: AddFormProps) {
  const { api } = useServices();
  const [question, setQuestion] = useState("");
  const [answer, setAnswer] = useState("");
  const metadata = useMetadataInput();
  const { busy, error, done, submit } = useSubmit(
    (meta) =>
      api.addText(workspaceId, withMetadata({ type: "qna", title: question.trim().slice(0, 300), question, answer }, meta)),
    onAdded,
    () => {
      setQuestion("");
      setAnswer("");
    },
    metadata,
  );
  return (
    <form className="stack" onSubmit={submit} data-testid="add-qna-form">
      <Field label="Question">
        <input required value={question} onChange={(e) => setQuestion(e.target.value)} />
      </Field>
      <Field label="Answer">
        <textarea required rows={4} value={answer} onChange={(e) => setAnswer(e.target.value)} />
      </Field>
      <MetadataFields input={metadata} suggestions={suggestions} testId="add-qna-metadata" />
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy || !question.trim() || !answer.trim()}>
          {busy ? "Adding…" : "Add Q&A pair"}
        </button>
      </div>
      <Outcome error={error} done={done} />
    </form>
  );
}

export function AddWebsiteForm({ workspaceId, onAdded, suggestions = [] }: AddFormProps) {
  const { api } = useServices();
  const [url, setUrl] = useState("");
  const [followLinks, setFollowLinks] = useState<boolean>(W.follow_links.default);
  const [useSitemap, setUseSitemap] = useState<boolean>(W.use_sitemap.default);
  const [maxPages, setMaxPages] = useState(String(W.max_pages.default));
  const [maxDepth, setMaxDepth] = useState(String(W.max_depth.default));
  const urlOk = /^https?:\/\/\S+/.test(url.trim());
  const metadata = useMetadataInput();
  const { busy, error, done, submit } = useSubmit(
    (meta) =>
      api.addWebsite(
        workspaceId,
        withMetadata(
          {
            url: url.trim(),
            follow_links: followLinks,
            use_sitemap: useSitemap,
            max_pages: Number(maxPages),
            max_depth: Number(maxDepth),
          },
          meta,
        ),
      ),
    onAdded,
    () => setUrl(""),
    metadata,
  );
  return (
    <form className="stack" onSubmit={submit} data-testid="add-website-form">
      <Field label="Website address" hint="Starts with http:// or https://">
        <input
          type="url"
          required
          placeholder="https://example.com/docs"
          value={url}
          aria-invalid={url !== "" && !urlOk}
          onChange={(e) => setUrl(e.target.value)}
        />
      </Field>
      <div className="row wrap">
        <Field label="Max pages">
          <input
            type="number"
            min={W.max_pages.minimum}
            max={W.max_pages.maximum}
            value={maxPages}
            onChange={(e) => setMaxPages(e.target.value)}
          />
        </Field>
        <Field label="Max depth">
          <input
            type="number"
            min={W.max_depth.minimum}
            max={W.max_depth.maximum}
            value={maxDepth}
            onChange={(e) => setMaxDepth(e.target.value)}
          />
        </Field>
        <label className="check">
          <input type="checkbox" checked={followLinks} onChange={(e) => setFollowLinks(e.target.checked)} /> Follow links
        </label>
        <label className="check">
          <input type="checkbox" checked={useSitemap} onChange={(e) => setUseSitemap(e.target.checked)} /> Use sitemap
        </label>
      </div>
      <MetadataFields
        input={metadata}
        suggestions={suggestions}
        label="Metadata for the site and its pages (optional)"
        testId="add-website-metadata"
      />
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy || !urlOk}>
          {busy ? "Adding…" : "Crawl website"}
        </button>
      </div>
      <Outcome error={error} done={done} />
    </form>
  );
}
