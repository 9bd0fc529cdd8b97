import type { ClientMessage, ServerMessage } from "../api/types";
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelay } from "./backoff";
import { encodeClientMessage, parseServerMessage } from "./messages";

/** The part of the browser WebSocket this module uses (tests pass a fake). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: Event) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type ConnectionStatus = "idle" | "connecting" | "open" | "offline" | "stopped";

export interface ConnectionState {
  status: ConnectionStatus;
  /** Failed attempts since the last successful open. */
  attempt: number;
  /** When the next attempt starts (epoch ms) while offline. */
  retryAt: number | null;
  /** Why the last connection ended, for the UI. */
  lastError: string | null;
}

export interface SocketOptions {
  /** The URL to open (resolved per attempt so a refreshed token is used). */
  url: () => string | Promise<string>;
  createSocket?: (url: string) => WebSocketLike;
  backoff?: BackoffPolicy;
  random?: () => number;
  now?: () => number;
  /** An attempt that has not opened after this long is abandoned and retried. */
  connectTimeoutMs?: number;
  /** Keep-alive ping (API Gateway drops idle connections after 10 minutes). */
  pingIntervalMs?: number;
}

const OPEN = 1;

/** A WebSocket that reconnects by itself with exponential backoff and reports its state. */
export class ReconnectingSocket {
  private readonly opts: Required<Omit<SocketOptions, "createSocket">> & Pick<SocketOptions, "createSocket">;
  private ws: WebSocketLike | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private generation = 0;
  private readonly messageListeners = new Set<(m: ServerMessage) => void>();
  private readonly stateListeners = new Set<(s: ConnectionState) => void>();
  private current: ConnectionState = { status: "idle", attempt: 0, retryAt: null, lastError: null };

  constructor(opts: SocketOptions) {
    this.opts = {
      backoff: DEFAULT_BACKOFF,
      random: Math.random,
      now: Date.now,
      connectTimeoutMs: 10_000,
      pingIntervalMs: 5 * 60_000,
      ...opts,
    };
  }

  get state(): ConnectionState {
    return this.current;
  }

  onMessage(fn: (m: ServerMessage) => void): () => void {
    this.messageListeners.add(fn);
    return () => this.messageListeners.delete(fn);
  }

  onState(fn: (s: ConnectionState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  start(): void {
    if (this.current.status !== "idle" && this.current.status !== "stopped") return;
    void this.connect();
  }

  stop(): void {
    this.generation++;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, "client closed");
    this.setState({ status: "stopped", attempt: 0, retryAt: null, lastError: null });
  }

  /** Skips the backoff wait (a "Retry now" button, or the browser coming back online). */
  reconnectNow(): void {
    if (this.current.status !== "offline") return;
    clearTimeout(this.retryTimer);
    void this.connect();
  }

  /** Sends when open; returns false (and sends nothing) otherwise. */
  send(msg: ClientMessage): boolean {
    if (!this.ws || this.ws.readyState !== OPEN || this.current.status !== "open") return false;
    this.ws.send(encodeClientMessage(msg));
    return true;
  }

  private setState(next: ConnectionState): void {
    this.current = next;
    for (const fn of this.stateListeners) fn(next);
  }

  private clearTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
  }

  private async connect(): Promise<void> {
    const gen = ++this.generation;
    this.setState({ ...this.current, status: "connecting", retryAt: null });
    let url: string;
    try {
      url = await this.opts.url();
    } catch (e) {
      if (gen === this.generation) this.scheduleRetry(`could not get a token: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (gen !== this.generation) return;
    let ws: WebSocketLike;
    try {
      ws = this.opts.createSocket ? this.opts.createSocket(url) : new WebSocket(url);
    } catch (e) {
      this.scheduleRetry(e instanceof Error ? e.message : String(e));
      return;
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (gen !== this.generation || this.current.status === "open") return;
      this.drop(ws, "the server did not accept the connection in time");
    }, this.opts.connectTimeoutMs);
    ws.onopen = () => {
      if (gen !== this.generation) return;
      clearTimeout(this.connectTimer);
      this.setState({ status: "open", attempt: 0, retryAt: null, lastError: null });
      this.pingTimer = setInterval(() => this.send({ action: "ping" }), this.opts.pingIntervalMs);
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation) return;
      const msg = parseServerMessage(ev.data);
      if (msg) for (const fn of this.messageListeners) fn(msg);
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      const why = ev.reason || (ev.code === 1006 ? "the connection was lost" : `closed (${ev.code})`);
      this.drop(null, why);
    };
    ws.onerror = () => {
      // A close event always follows an error; it does the work.
    };
  }

  private drop(ws: WebSocketLike | null, why: string): void {
    this.generation++;
    this.clearTimers();
    const old = ws ?? this.ws;
    this.ws = null;
    if (old) {
      old.onopen = old.onclose = old.onmessage = old.onerror = null;
      try {
        old.close();
      } catch {
        // already closed
      }
    }
    this.scheduleRetry(why);
  }

  private scheduleRetry(why: string): void {
    const wasOpen = this.current.status === "open";
    const attempt = wasOpen ? 0 : this.current.attempt;
    const delay = backoffDelay(attempt, this.opts.backoff, this.opts.random);
    this.setState({ status: "offline", attempt: attempt + 1, retryAt: this.opts.now() + delay, lastError: why });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }
}

/** `${wsUrl}?token=...` (or `&token=` when wsUrl already has a query); no token, no parameter. */
export function socketUrl(wsUrl: string, token: string): string {
  if (!token) return wsUrl;
  return `${wsUrl}${wsUrl.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}
