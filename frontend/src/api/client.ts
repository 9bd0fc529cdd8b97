import { ApiError, DATABASE_WAKING, errorFromResponse, networkError, timeoutError } from "./errors";
import type {
  ChatIn,
  ChatOut,
  DocumentOut,
  DocumentPatchIn,
  DocumentPreviewOut,
  EmbeddingsIn,
  EmbeddingsOut,
  FeedbackIn,
  ListOutDocumentOut,
  ListOutSessionOut,
  ListOutWorkspaceOut,
  ModelsOut,
  RerankIn,
  RerankOut,
  SearchIn,
  SearchOut,
  SessionDetailOut,
  SessionOut,
  SessionPatchIn,
  SourceLinkOut,
  TextDocumentIn,
  UploadUrlIn,
  UsageReportOut,
  UploadUrlOut,
  WebsiteIn,
  WorkspaceIn,
  WorkspaceOut,
} from "./types";
import type { ListOutSummaryJobOut, SummaryIn, SummaryJobOut } from "./summaries";

export type FetchFn = typeof fetch;

export interface ClientOptions {
  /** `apiUrl` from config.json, e.g. `/api` or `https://x.execute-api...`. */
  baseUrl: string;
  /** The bearer token, fetched per call so a refreshed Cognito token is used. */
  getToken: () => Promise<string>;
  fetch?: FetchFn;
  /** Every call fails with a `timeout` ApiError after this long. */
  timeoutMs?: number;
  /** Called on any 401, e.g. to sign out. */
  onUnauthorized?: () => void;
  /** How many times a call is repeated while the server answers 503 `database_waking` (default 3). */
  wakeRetries?: number;
}

/** A call is waiting for the database to wake up: when it asks again, and which retry that is. */
export interface WakingState {
  retryAt: number;
  attempt: number;
  maxAttempts: number;
}

/** Aurora resumes from pause in 15-30 s; a server's Retry-After is honoured within these bounds (ms). */
const WAKE_DELAY_MS = { fallback: 5_000, min: 1_000, max: 30_000 };

interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  timeoutMs?: number;
}

const MAX_PAGES = 20;

const enc = encodeURIComponent;

/** Resolves after `ms`, or rejects with an `aborted` ApiError as soon as `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () => new ApiError(0, "aborted", "The request was cancelled.");
    if (signal?.aborted) {
      reject(aborted());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/** Typed calls to the Quarry REST API; every failure is an {@link ApiError}. */
export class ApiClient {
  private readonly baseUrl: string;
  private readonly getToken: () => Promise<string>;
  private readonly fetchFn: FetchFn;
  private readonly timeoutMs: number;
  private readonly onUnauthorized?: () => void;
  private readonly wakeRetries: number;
  private readonly wakingCalls = new Map<symbol, WakingState>();
  private wakingState: WakingState | null = null;
  private readonly wakingListeners = new Set<(state: WakingState | null) => void>();

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl;
    this.getToken = opts.getToken;
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.onUnauthorized = opts.onUnauthorized;
    this.wakeRetries = Math.max(0, opts.wakeRetries ?? 3);
  }

  /** Non-null while some call waits for the database to wake up (the next retry among them). */
  get waking(): WakingState | null {
    return this.wakingState;
  }

  /** Subscribe to {@link waking}; returns the unsubscribe function. */
  onWaking(listener: (state: WakingState | null) => void): () => void {
    this.wakingListeners.add(listener);
    return () => {
      this.wakingListeners.delete(listener);
    };
  }

  private setWaking(call: symbol, state: WakingState | null): void {
    if (state) this.wakingCalls.set(call, state);
    else if (!this.wakingCalls.delete(call)) return;
    let next: WakingState | null = null;
    for (const s of this.wakingCalls.values()) if (!next || s.retryAt < next.retryAt) next = s;
    this.wakingState = next;
    for (const listener of this.wakingListeners) listener(next);
  }

  /**
   * One call. A 503 `database_waking` (the database is resuming from pause; nothing was done) is retried
   * after the server's Retry-After, at most `wakeRetries` times, while {@link waking} tells the UI.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const call = Symbol(path);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.requestOnce<T>(method, path, opts);
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 503 && e.code === DATABASE_WAKING) || attempt > this.wakeRetries) {
            throw e;
          }
          const seconds = e.retryAfterSeconds;
          const delay = Math.min(
            WAKE_DELAY_MS.max,
            Math.max(WAKE_DELAY_MS.min, seconds === null ? WAKE_DELAY_MS.fallback : seconds * 1000),
          );
          this.setWaking(call, { retryAt: Date.now() + delay, attempt, maxAttempts: this.wakeRetries });
          await pause(delay, opts.signal);
        }
      }
    } finally {
      this.setWaking(call, null);
    }
  }

  private async requestOnce<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort();
    opts.signal?.addEventListener("abort", onAbort);
    try {
      const headers: Record<string, string> = { Accept: "application/json" };
      const token = await this.getToken();
      if (token) headers.Authorization = `Bearer ${token}`;
      if (opts.body !== undefined) headers["Content-Type"] = "application/json";
      let res: Response;
      try {
        res = await this.fetchFn(joinUrl(this.baseUrl, path), {
          method,
          headers,
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: controller.signal,
        });
      } catch (e) {
        if (timedOut) throw timeoutError(timeoutMs);
        if (opts.signal?.aborted) throw new ApiError(0, "aborted", "The request was cancelled.");
        throw networkError(e);
      }
      return await this.readBody<T>(res, () => timedOut, timeoutMs);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  private async readBody<T>(res: Response, timedOut: () => boolean, timeoutMs: number): Promise<T> {
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw timedOut() ? timeoutError(timeoutMs) : networkError(e);
    }
    if (!res.ok) {
      if (res.status === 401) this.onUnauthorized?.();
      throw errorFromResponse(res.status, res.statusText, text, res.headers.get("Retry-After"));
    }
    if (res.status === 204 || text.trim() === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, "bad_response", "The server sent an answer that is not JSON.");
    }
  }

  /** Follows `cursor` until the last page (bounded, and stops if the server repeats a cursor). */
  private async listAll<I>(path: string): Promise<I[]> {
    const items: I[] = [];
    const seen = new Set<string>();
    let cursor: string | null = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const sep = path.includes("?") ? "&" : "?";
      const url: string = cursor ? `${path}${sep}cursor=${enc(cursor)}` : path;
      const out: { items: I[]; cursor: string | null } = await this.request("GET", url);
      items.push(...out.items);
      if (!out.cursor || seen.has(out.cursor)) break;
      seen.add(out.cursor);
      cursor = out.cursor;
    }
    return items;
  }

  health(): Promise<unknown> {
    return this.request("GET", "/health", { timeoutMs: 10_000 });
  }

  models(): Promise<ModelsOut> {
    return this.request("GET", "/models");
  }

  // ------------------------------------------------------------------ workspaces

  listWorkspaces(): Promise<WorkspaceOut[]> {
    return this.listAll<ListOutWorkspaceOut["items"][number]>("/workspaces");
  }

  getWorkspace(id: string): Promise<WorkspaceOut> {
    return this.request("GET", `/workspaces/${enc(id)}`);
  }

  createWorkspace(body: WorkspaceIn): Promise<WorkspaceOut> {
    return this.request("POST", "/workspaces", { body });
  }

  deleteWorkspace(id: string): Promise<void> {
    return this.request("DELETE", `/workspaces/${enc(id)}`);
  }

  // ------------------------------------------------------------------ documents

  uploadUrl(workspaceId: string, body: UploadUrlIn): Promise<UploadUrlOut> {
    return this.request("POST", `/workspaces/${enc(workspaceId)}/documents/upload-url`, { body });
  }

  addText(workspaceId: string, body: TextDocumentIn): Promise<DocumentOut> {
    return this.request("POST", `/workspaces/${enc(workspaceId)}/documents`, { body });
  }

  addWebsite(workspaceId: string, body: WebsiteIn): Promise<DocumentOut> {
    return this.request("POST", `/workspaces/${enc(workspaceId)}/websites`, { body });
  }

  listDocuments(workspaceId: string): Promise<DocumentOut[]> {
    return this.listAll<ListOutDocumentOut["items"][number]>(`/workspaces/${enc(workspaceId)}/documents`);
  }

  getDocument(workspaceId: string, documentId: string): Promise<DocumentOut> {
    return this.request("GET", `/workspaces/${enc(workspaceId)}/documents/${enc(documentId)}`);
  }

  /** Changes a document's metadata: a JSON merge patch (a null value removes the key); 422 names the field. */
  patchDocument(workspaceId: string, documentId: string, body: DocumentPatchIn): Promise<DocumentOut> {
    return this.request("PATCH", `/workspaces/${enc(workspaceId)}/documents/${enc(documentId)}`, { body });
  }

  deleteDocument(workspaceId: string, documentId: string): Promise<void> {
    return this.request("DELETE", `/workspaces/${enc(workspaceId)}/documents/${enc(documentId)}`);
  }

  /** Ingest a failed document again; the answer is the document back in `created` (409 unless it failed). */
  retryDocument(workspaceId: string, documentId: string): Promise<DocumentOut> {
    return this.request("POST", `/workspaces/${enc(workspaceId)}/documents/${enc(documentId)}/retry`);
  }

  /** The start of a processed document's extracted text, with its details (409 while it is not processed). */
  previewDocument(workspaceId: string, documentId: string): Promise<DocumentPreviewOut> {
    return this.request("GET", `/workspaces/${enc(workspaceId)}/documents/${enc(documentId)}/preview`);
  }

  /** Where a document itself opens: a short-lived download of its file (at `page` for a PDF), or a web page's address. */
  documentSource(workspaceId: string, documentId: string, page?: number | null): Promise<SourceLinkOut> {
    const query = page ? `?page=${enc(String(page))}` : "";
    return this.request("GET", `/workspaces/${enc(workspaceId)}/documents/${enc(documentId)}/source${query}`);
  }

  // ------------------------------------------------------------------ retrieval

  search(workspaceId: string, body: SearchIn, signal?: AbortSignal): Promise<SearchOut> {
    return this.request("POST", `/workspaces/${enc(workspaceId)}/search`, { body, signal });
  }

  rerank(body: RerankIn): Promise<RerankOut> {
    return this.request("POST", "/rerank", { body });
  }

  embeddings(body: EmbeddingsIn): Promise<EmbeddingsOut> {
    return this.request("POST", "/embeddings", { body });
  }

  // ------------------------------------------------------------------ summaries

  /** A workspace's summary jobs, newest first. */
  listSummaries(workspaceId: string): Promise<SummaryJobOut[]> {
    return this.listAll<ListOutSummaryJobOut["items"][number]>(`/workspaces/${enc(workspaceId)}/summaries`);
  }

  getSummary(workspaceId: string, jobId: string): Promise<SummaryJobOut> {
    return this.request("GET", `/workspaces/${enc(workspaceId)}/summaries/${enc(jobId)}`);
  }

  /** Starts a job (202); 422 "no documents match the filter (...)" when an unscheduled job selects nothing. */
  startSummary(workspaceId: string, body: SummaryIn): Promise<SummaryJobOut> {
    return this.request("POST", `/workspaces/${enc(workspaceId)}/summaries`, { body });
  }

  /**
   * A queued or running job is cancelled (202: the job, now `cancelled`); a finished one is removed with its
   * schedule (204: undefined).
   */
  deleteSummary(workspaceId: string, jobId: string): Promise<SummaryJobOut | undefined> {
    return this.request("DELETE", `/workspaces/${enc(workspaceId)}/summaries/${enc(jobId)}`);
  }

  /** Runs a job again now, over the documents new or changed since its last run (202). */
  rerunSummary(workspaceId: string, jobId: string): Promise<SummaryJobOut> {
    return this.request("POST", `/workspaces/${enc(workspaceId)}/summaries/${enc(jobId)}/runs`);
  }

  // ------------------------------------------------------------------ chat

  chat(body: ChatIn): Promise<ChatOut> {
    return this.request("POST", "/chat", { body, timeoutMs: 120_000 });
  }

  listSessions(): Promise<SessionOut[]> {
    return this.listAll<ListOutSessionOut["items"][number]>("/sessions");
  }

  getSession(id: string): Promise<SessionDetailOut> {
    return this.request("GET", `/sessions/${enc(id)}`);
  }

  deleteSession(id: string): Promise<void> {
    return this.request("DELETE", `/sessions/${enc(id)}`);
  }

  /** A conversation's new title (the owner's only: 404 otherwise). */
  renameSession(id: string, body: SessionPatchIn): Promise<SessionOut> {
    return this.request("PATCH", `/sessions/${enc(id)}`, { body });
  }

  feedback(body: FeedbackIn): Promise<void> {
    return this.request("POST", "/feedback", { body });
  }

  // ------------------------------------------------------------------ usage

  /** What the caller's chats cost per day and model (`since`/`until`: UTC days, YYYY-MM-DD; default 30 days). */
  usage(range: { since?: string; until?: string } = {}): Promise<UsageReportOut> {
    return this.request("GET", `/usage${usageQuery(range)}`);
  }

  /** A workspace's usage, by everyone who chatted in it: its owner only (404 otherwise). */
  workspaceUsage(workspaceId: string, range: { since?: string; until?: string } = {}): Promise<UsageReportOut> {
    return this.request("GET", `/workspaces/${enc(workspaceId)}/usage${usageQuery(range)}`);
  }
}

function usageQuery(range: { since?: string; until?: string }): string {
  const params = new URLSearchParams();
  if (range.since) params.set("since", range.since);
  if (range.until) params.set("until", range.until);
  const query = params.toString();
  return query ? `?${query}` : "";
}
