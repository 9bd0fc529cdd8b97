import { useEffect, useMemo, useState } from "react";
import { ApiClient } from "../api/client";
import type { AppConfig, ModelsOut } from "../api/types";
import type { AuthSession } from "../auth/session";
import { ChatScreen } from "../screens/chat/ChatScreen";
import { DocumentsScreen } from "../screens/documents/DocumentsScreen";
import { SearchScreen } from "../screens/search/SearchScreen";
import { WorkspacesScreen } from "../screens/workspaces/WorkspacesScreen";
import { ReconnectingSocket, socketUrl } from "../ws/socket";
import { absoluteWsUrl } from "../api/config";
import { ConnectionBadge } from "./ConnectionBadge";
import { WakingBanner } from "./WakingBanner";
import { ServicesContext, type Services } from "./context";
import { type Route, hrefFor, useRoute } from "./router";

const NAV: { label: string; screen: Route["screen"] }[] = [
  { label: "Chat", screen: "chat" },
  { label: "Workspaces", screen: "workspaces" },
  { label: "Documents", screen: "documents" },
  { label: "Search", screen: "search" },
];

function navHref(screen: Route["screen"]): string {
  if (screen === "chat") return hrefFor({ screen, sessionId: null });
  if (screen === "workspaces") return hrefFor({ screen });
  return hrefFor({ screen, workspaceId: null });
}

function Screen({ route }: { route: Route }) {
  switch (route.screen) {
    case "chat":
      return <ChatScreen sessionId={route.sessionId} />;
    case "workspaces":
      return <WorkspacesScreen />;
    case "documents":
      return <DocumentsScreen key={route.workspaceId ?? ""} workspaceId={route.workspaceId} />;
    case "search":
      return <SearchScreen workspaceId={route.workspaceId} />;
  }
}

/** One API client and one live connection for the whole app, then the current screen. */
export function Shell({ config, auth }: { config: AppConfig; auth: AuthSession }) {
  const route = useRoute();
  const api = useMemo(
    () => new ApiClient({ baseUrl: config.apiUrl, getToken: auth.getToken, onUnauthorized: auth.signOut ?? undefined }),
    [config, auth],
  );
  const socket = useMemo(
    () =>
      new ReconnectingSocket({
        url: async () => socketUrl(absoluteWsUrl(config.wsUrl, window.location), await auth.getToken()),
      }),
    [config, auth],
  );
  const [models, setModels] = useState<ModelsOut | null>(null);

  useEffect(() => {
    socket.start();
    const online = () => socket.reconnectNow();
    const visible = () => document.visibilityState === "visible" && socket.reconnectNow();
    window.addEventListener("online", online);
    document.addEventListener("visibilitychange", visible);
    return () => {
      window.removeEventListener("online", online);
      document.removeEventListener("visibilitychange", visible);
      socket.stop();
    };
  }, [socket]);

  useEffect(() => {
    api.models().then(setModels, () => setModels({ llms: [], embeddings: [], rerankers: [] }));
  }, [api]);

  const services: Services = useMemo(
    () => ({ api, socket, user: auth.user, signOut: auth.signOut, models }),
    [api, socket, auth, models],
  );

  return (
    <ServicesContext value={services}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <div className="app">
        <header className="topbar">
          <a className="brand" href="#/chat">
            <span className="logo" aria-hidden="true">
              ▲
            </span>
            Quarry
          </a>
          <nav aria-label="Main">
            <ul className="nav">
              {NAV.map((n) => (
                <li key={n.screen}>
                  <a
                    href={navHref(n.screen)}
                    aria-current={route.screen === n.screen ? "page" : undefined}
                    data-testid={`nav-${n.screen}`}
                  >
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <div className="topbar-right">
            <ConnectionBadge />
            <span className="user muted small" title="Signed in as">
              {auth.user}
            </span>
            {auth.signOut && (
              <button type="button" className="btn small" onClick={auth.signOut}>
                Sign out
              </button>
            )}
          </div>
        </header>
        <WakingBanner />
        <main id="main" className={`main screen-${route.screen}`} tabIndex={-1}>
          <Screen route={route} />
        </main>
      </div>
    </ServicesContext>
  );
}
