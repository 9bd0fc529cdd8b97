import { createContext, type ReactNode, useContext, useEffect, useRef, useSyncExternalStore } from "react";
import type { ApiClient } from "../api/client";
import type { ModelsOut, ServerMessage } from "../api/types";
import type { ConnectionState, ReconnectingSocket } from "../ws/socket";

export interface Services {
  api: ApiClient;
  socket: ReconnectingSocket;
  user: string;
  signOut: (() => void) | null;
  models: ModelsOut | null;
}

const ServicesContext = createContext<Services | null>(null);

export function ServicesProvider({ value, children }: { value: Services; children: ReactNode }) {
  return <ServicesContext.Provider value={value}>{children}</ServicesContext.Provider>;
}

export function useServices(): Services {
  const s = useContext(ServicesContext);
  if (!s) throw new Error("useServices outside ServicesProvider");
  return s;
}

export function useConnection(): ConnectionState {
  const { socket } = useServices();
  return useSyncExternalStore(
    (cb) => socket.onState(cb),
    () => socket.state,
  );
}

/** Calls `handler` for every server message while mounted (the latest handler, no resubscribe). */
export function useServerMessages(handler: (m: ServerMessage) => void): void {
  const { socket } = useServices();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => socket.onMessage((m) => ref.current(m)), [socket]);
}

/** Calls `fn` each time the connection opens again after having been open before. */
export function useOnReconnect(fn: () => void): void {
  const conn = useConnection();
  const ref = useRef(fn);
  ref.current = fn;
  const wasOpen = useRef(conn.status === "open");
  const dropped = useRef(false);
  useEffect(() => {
    if (conn.status === "open") {
      if (dropped.current && wasOpen.current) ref.current();
      wasOpen.current = true;
      dropped.current = false;
    } else if (conn.status === "offline") {
      dropped.current = true;
    }
  }, [conn.status]);
}
