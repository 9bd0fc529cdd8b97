import { type MouseEvent, useEffect, useMemo, useState } from "react";
import { ApiClient } from "../api/client";
import type { AppConfig, ModelsOut } from "../api/types";
import type { AuthSession } from "../auth/session";
import { ChatScreen } from "../screens/chat/ChatScreen";
import { DocumentsScreen } from "../screens/documents/DocumentsScreen";
import { SearchScreen } from "../screens/search/SearchScreen";
import { SummariesScreen } from "../screens/summaries/SummariesScreen";
import { WorkspacesScreen } from "../screens/workspaces/WorkspacesScreen";
import { ReconnectingSocket, socketUrl } from "../ws/socket";
import { absoluteWsUrl } from "../api/config";
import { ConnectionBadge } from "./ConnectionBadge";
import { WakingBanner } from "./WakingBanner";
import { ServicesContext, type Services } from "./context";
import { MainNav } from "./MainNav";
import { type Route, useRoute } from "./router";

/** What the app offers when `GET /models` failed: the screens still work with the server defaults. */
const NO_MODELS: ModelsOut = { llms: [], embeddings: [], rerankers: [] };

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
    case "summaries":
      return <SummariesScreen key={route.workspaceId ?? ""} workspaceId={route.workspaceId} />;
  }
}

/** Moves focus to the screen's content; a plain `#main` link would be read as a route by the hash router. */
function SkipLink() {
  const skip = (e: MouseEvent<HTMLAnchorElement>) => {
    e.preventDefault();
    document.getElementById("main")?.focus();
  };
  return (
    <a className="skip" href="#main" onClick={skip}>
      Skip to content
    </a>
  );
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
  const [models, setModels] = useState<{ list: ModelsOut | null; error: unknown }>({ list: null, error: null });

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
    api.models().then(
      (list) => setModels({ list, error: null }),
      (error: unknown) => setModels({ list: NO_MODELS, error }),
    );
  }, [api]);

  const services: Services = useMemo(
    () => ({ api, socket, user: auth.user, signOut: auth.signOut, models: models.list, modelsError: models.error }),
    [api, socket, auth, models],
  );

  return (
    <ServicesContext value={services}>
      <SkipLink />
      <div className="app">
        <header className="topbar">
          <a className="brand" href="#/chat">
            <span className="logo" aria-hidden="true">
              ▲
            </span>
            Quarry
          </a>
          <MainNav current={route.screen} />
          <div className="topbar-right">
            <ConnectionBadge />
            <span className="user muted small" title={`Signed in as ${auth.user}`}>
              <span className="sr-only">Signed in as </span>
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
