import { createContext, useContext, useEffect, useEffectEvent, useRef, useSyncExternalStore } from "react";
import type { ApiClient } from "../api/client";
import type { ModelsOut, ServerMessage } from "../api/types";
import type { ConnectionState, ReconnectingSocket } from "../ws/socket";

export interface Services {
  api: ApiClient;
  socket: ReconnectingSocket;
  user: string;
  signOut: (() => void) | null;
  /** `GET /models`: null while it loads (empty lists when it failed, see `modelsError`). */
  models: ModelsOut | null;
  /** Why `GET /models` failed, so an option that needs a model can say why it is off. */
  modelsError?: unknown;
}

/** Rendered as `<ServicesContext value={services}>` around the app (and around each component test). */
export const ServicesContext = createContext<Services | null>(null);

export function useServices(): Services {
  const s = useContext(ServicesContext);
  if (!s) throw new Error("useServices outside ServicesContext");
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
  const onMessage = useEffectEvent(handler);
  useEffect(() => socket.onMessage((m) => onMessage(m)), [socket]);
}

/** Calls `fn` each time the connection opens again after having been open before. */
export function useOnReconnect(fn: () => void): void {
  const conn = useConnection();
  const onReconnect = useEffectEvent(fn);
  const wasOpen = useRef(conn.status === "open");
  const dropped = useRef(false);
  useEffect(() => {
    if (conn.status === "open") {
      if (dropped.current && wasOpen.current) onReconnect();
      wasOpen.current = true;
      dropped.current = false;
    } else if (conn.status === "offline") {
      dropped.current = true;
    }
  }, [conn.status]);
}
