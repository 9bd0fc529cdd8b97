import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerMessage } from "../api/types";
import { FakeSocket } from "../test/fakeSocket";
import { type ConnectionState, ReconnectingSocket, socketUrl } from "./socket";

let sockets: FakeSocket[];
let states: ConnectionState[];

function make(extra: Partial<ConstructorParameters<typeof ReconnectingSocket>[0]> = {}) {
  let n = 0;
  const s = new ReconnectingSocket({
    url: () => socketUrl("ws://h/ws", `tok${++n}`),
    createSocket: (url) => {
      const f = new FakeSocket(url);
      sockets.push(f);
      return f;
    },
    backoff: { baseMs: 1000, maxMs: 8000, factor: 2, jitter: 0 },
    now: () => Date.now(),
    connectTimeoutMs: 5000,
    pingIntervalMs: 60_000,
    ...extra,
  });
  s.onState((st) => states.push(st));
  return s;
}

const last = () => sockets[sockets.length - 1] as FakeSocket;

beforeEach(() => {
  vi.useFakeTimers();
  sockets = [];
  states = [];
});
afterEach(() => vi.useRealTimers());

describe("ReconnectingSocket", () => {
  it("connects with the token in the URL and reports open", async () => {
    const s = make();
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(last().url).toBe("ws://h/ws?token=tok1");
    expect(s.state.status).toBe("connecting");
    last().serverOpens();
    expect(s.state).toMatchObject({ status: "open", attempt: 0 });
  });

  it("reconnects after a drop with growing delays, and resets after a success", async () => {
    const s = make();
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    last().serverOpens();
    last().serverDrops();
    expect(s.state).toMatchObject({ status: "offline", attempt: 1, lastError: "the connection was lost" });

    // first retry after 1 s; it fails; the next waits 2 s, then 4 s
    await vi.advanceTimersByTimeAsync(999);
    expect(sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets).toHaveLength(2);
    last().serverDrops();
    await vi.advanceTimersByTimeAsync(1999);
    expect(sockets).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets).toHaveLength(3);
    last().serverDrops();
    expect(s.state.attempt).toBe(3);
    await vi.advanceTimersByTimeAsync(4000);
    expect(sockets).toHaveLength(4);
    expect(last().url).toBe("ws://h/ws?token=tok4"); // a fresh token per attempt
    last().serverOpens();
    expect(s.state).toMatchObject({ status: "open", attempt: 0, retryAt: null, lastError: null });

    // after a success the backoff starts over at 1 s
    last().serverDrops();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets).toHaveLength(5);
  });

  it("never waits longer than the cap", async () => {
    const s = make();
    s.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(0);
      last().serverDrops();
      const delay = (s.state.retryAt ?? 0) - Date.now();
      delays.push(delay);
      await vi.advanceTimersByTimeAsync(delay);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(sockets).toHaveLength(7);
  });

  it("abandons an attempt that does not open in time", async () => {
    const s = make();
    s.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(sockets[0]?.closed).toBe(true);
    expect(s.state).toMatchObject({ status: "offline", lastError: "the server did not accept the connection in time" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets).toHaveLength(2);
  });

  it("a token failure is retried like a drop", async () => {
    const s = make({ url: () => Promise.reject(new Error("expired")) });
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets).toHaveLength(0);
    expect(s.state.status).toBe("offline");
    expect(s.state.lastError).toMatch(/expired/);
  });

  it("reconnectNow skips the wait; stop ends everything", async () => {
    const s = make();
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    last().serverDrops();
    s.reconnectNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets).toHaveLength(2);
    last().serverOpens();
    s.stop();
    expect(last().closed).toBe(true);
    expect(s.state.status).toBe("stopped");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(2);
  });

  it("delivers parsed server messages and drops malformed ones", async () => {
    const s = make();
    const got: ServerMessage[] = [];
    s.onMessage((m) => got.push(m));
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    last().serverOpens();
    last().serverSends({ type: "token", session_id: "s", message_id: "m", sequence: 0, text: "hi" });
    last().serverSends("not json");
    last().serverSends({ type: "token", session_id: "s" });
    last().serverSends({ type: "mystery" });
    last().serverSends({ type: "pong" });
    expect(got.map((m) => m.type)).toEqual(["token", "pong"]);
  });

  it("sends only while open, and pings to keep the connection alive", async () => {
    const s = make();
    expect(s.send({ action: "ping" })).toBe(false);
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.send({ action: "ping" })).toBe(false);
    last().serverOpens();
    expect(s.send({ action: "chat", text: "hi" })).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(last().sent.map((m) => (JSON.parse(m) as { action: string }).action)).toEqual(["chat", "ping"]);
  });

  it("reports every state change in order", async () => {
    const s = make();
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    last().serverOpens();
    last().serverDrops();
    expect(states.map((x) => x.status)).toEqual(["connecting", "open", "offline"]);
  });
});

describe("socketUrl", () => {
  it("adds the token as a query parameter, encoded", () => {
    expect(socketUrl("wss://x/prod", "a b+c")).toBe("wss://x/prod?token=a%20b%2Bc");
    expect(socketUrl("wss://x/prod?v=1", "t")).toBe("wss://x/prod?v=1&token=t");
    expect(socketUrl("ws://h/ws", "")).toBe("ws://h/ws");
  });
});
