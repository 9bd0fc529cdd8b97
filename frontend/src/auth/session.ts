/** Who is signed in, and how to get the bearer token for the API and the WebSocket. */
export interface AuthSession {
  user: string;
  getToken: () => Promise<string>;
  signOut: (() => void) | null;
}

/** Local `quarry serve`: the dev identity's token from config.json, no login screen. */
export function devSession(token: string): AuthSession {
  return { user: "dev", getToken: async () => token, signOut: null };
}

/** Authentication switched off on the server: no token is sent. */
export function anonymousSession(): AuthSession {
  return { user: "anonymous", getToken: async () => "", signOut: null };
}
