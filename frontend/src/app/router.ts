import { useEffect, useState } from "react";

export type Route =
  | { screen: "chat"; sessionId: string | null }
  | { screen: "workspaces" }
  | { screen: "documents"; workspaceId: string | null }
  | { screen: "search"; workspaceId: string | null }
  | { screen: "summaries"; workspaceId: string | null };

/** `#/chat/abc` -> route. Hash routing needs no server-side fallback (quarry serve, CloudFront). */
export function parseHash(hash: string): Route {
  const [screen, id] = hash.replace(/^#\/?/, "").split("/").map((p) => decodeURIComponent(p));
  const param = id ? id : null;
  switch (screen) {
    case "workspaces":
      return { screen: "workspaces" };
    case "documents":
      return { screen: "documents", workspaceId: param };
    case "search":
      return { screen: "search", workspaceId: param };
    case "summaries":
      return { screen: "summaries", workspaceId: param };
    default:
      return { screen: "chat", sessionId: param };
  }
}

export function hrefFor(route: Route): string {
  switch (route.screen) {
    case "chat":
      return route.sessionId ? `#/chat/${encodeURIComponent(route.sessionId)}` : "#/chat";
    case "workspaces":
      return "#/workspaces";
    case "documents":
    case "search":
    case "summaries":
      return route.workspaceId ? `#/${route.screen}/${encodeURIComponent(route.workspaceId)}` : `#/${route.screen}`;
  }
}

export function navigate(route: Route, { replace = false } = {}): void {
  const href = hrefFor(route);
  if (window.location.hash === href) return;
  if (replace) {
    window.history.replaceState(null, "", href);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = href;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(window.location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}
