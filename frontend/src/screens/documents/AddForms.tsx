import { type FormEvent, type ReactNode, useState } from "react";
import { describeError } from "../../api/errors";
import { limits } from "../../api/limits.gen";
import type { DocumentOut } from "../../api/types";
import { useServices } from "../../app/context";

const W = limits.WebsiteIn;

function useSubmit(run: () => Promise<DocumentOut>, onAdded: (d: DocumentOut) => void, reset: () => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const save = async () => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const doc = await run();
      onAdded(doc);
      setDone(`Added “${doc.name}”. Its status updates below.`);
      reset();
    } catch (err) {
      setError(err);
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

export function AddTextForm({ workspaceId, onAdded }: { workspaceId: string; onAdded: (d: DocumentOut) => void }) {
  const { api } = useServices();
  const [title, setTitle] = useState("");
  const [text, setText] = useState("");
  const { busy, error, done, submit } = useSubmit(
    () => api.addText(workspaceId, { type: "text", title: title.trim(), text }),
    onAdded,
    () => {
      setTitle("");
      setText("");
    },
  );
  return (
    <form className="stack" onSubmit={submit} data-testid="add-text-form">
      <Field label="Title">
        <input value={title} maxLength={limits.TextDocumentIn.title.maxLength} onChange={(e) => setTitle(e.target.value)} />
      </Field>
      <Field label="Text">
        <textarea required rows={6} value={text} onChange={(e) => setText(e.target.value)} />
      </Field>
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy || !text.trim()}>
          {busy ? "Adding…" : "Add text"}
        </button>
      </div>
      <Outcome error={error} done={done} />
    </form>
  );
}

export function AddQnaForm({ workspaceId, onAdded }: { workspaceId: string; onAdded: (d: DocumentOut) => void }) {
  const { api } = useServices();
  const [question, setQuestion] = useState("");
  const [answer, setAnswer] = useState("");
  const { busy, error, done, submit } = useSubmit(
    () => api.addText(workspaceId, { type: "qna", title: question.trim().slice(0, 300), question, answer }),
    onAdded,
    () => {
      setQuestion("");
      setAnswer("");
    },
  );
  return (
    <form className="stack" onSubmit={submit} data-testid="add-qna-form">
      <Field label="Question">
        <input required value={question} onChange={(e) => setQuestion(e.target.value)} />
      </Field>
      <Field label="Answer">
        <textarea required rows={4} value={answer} onChange={(e) => setAnswer(e.target.value)} />
      </Field>
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy || !question.trim() || !answer.trim()}>
          {busy ? "Adding…" : "Add Q&A pair"}
        </button>
      </div>
      <Outcome error={error} done={done} />
    </form>
  );
}

export function AddWebsiteForm({ workspaceId, onAdded }: { workspaceId: string; onAdded: (d: DocumentOut) => void }) {
  const { api } = useServices();
  const [url, setUrl] = useState("");
  const [followLinks, setFollowLinks] = useState<boolean>(W.follow_links.default);
  const [useSitemap, setUseSitemap] = useState<boolean>(W.use_sitemap.default);
  const [maxPages, setMaxPages] = useState(String(W.max_pages.default));
  const [maxDepth, setMaxDepth] = useState(String(W.max_depth.default));
  const urlOk = /^https?:\/\/\S+/.test(url.trim());
  const { busy, error, done, submit } = useSubmit(
    () =>
      api.addWebsite(workspaceId, {
        url: url.trim(),
        follow_links: followLinks,
        use_sitemap: useSitemap,
        max_pages: Number(maxPages),
        max_depth: Number(maxDepth),
      }),
    onAdded,
    () => setUrl(""),
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
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy || !urlOk}>
          {busy ? "Adding…" : "Crawl website"}
        </button>
      </div>
      <Outcome error={error} done={done} />
    </form>
  );
}
