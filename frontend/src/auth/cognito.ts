/**
 * Cognito sign-in with amazon-cognito-identity-js (SRP, no hosted UI). The library is loaded on
 * demand, so the local (dev) build never downloads it.
 */
import type { AuthSession } from "./session";

export interface CognitoConfig {
  userPoolId: string;
  clientId: string;
  region: string;
}

type Lib = typeof import("amazon-cognito-identity-js");
type User = import("amazon-cognito-identity-js").CognitoUser;
type UserSession = import("amazon-cognito-identity-js").CognitoUserSession;

export type SignInResult =
  | { kind: "signedIn"; session: AuthSession }
  | { kind: "newPassword"; complete: (newPassword: string) => Promise<AuthSession> };

let libPromise: Promise<Lib> | null = null;

function lib(): Promise<Lib> {
  // The library's `buffer` dependency expects Node's `global`.
  const g = globalThis as { global?: unknown };
  g.global ??= globalThis;
  libPromise ??= import("amazon-cognito-identity-js");
  return libPromise;
}

async function pool(cfg: CognitoConfig) {
  const { CognitoUserPool } = await lib();
  return new CognitoUserPool({ UserPoolId: cfg.userPoolId, ClientId: cfg.clientId });
}

function userSession(user: User): Promise<UserSession> {
  return new Promise((resolve, reject) => {
    user.getSession((err: Error | null, s: UserSession | null) => {
      if (err || !s) reject(err ?? new Error("no session"));
      else resolve(s);
    });
  });
}

/** Tokens are refreshed by getSession when they expire; the API receives the ID token. */
function toAuthSession(user: User): AuthSession {
  return {
    user: user.getUsername(),
    getToken: async () => (await userSession(user)).getIdToken().getJwtToken(),
    signOut: () => {
      user.signOut();
      window.location.reload();
    },
  };
}

/** The session remembered in this browser, if still valid. */
export async function restoreSession(cfg: CognitoConfig): Promise<AuthSession | null> {
  const user = (await pool(cfg)).getCurrentUser();
  if (!user) return null;
  try {
    const s = await userSession(user);
    return s.isValid() ? toAuthSession(user) : null;
  } catch {
    return null;
  }
}

function describe(err: unknown): Error {
  if (err instanceof Error) return err;
  const msg = (err as { message?: string } | null)?.message;
  return new Error(msg ?? "Sign-in failed.");
}

export async function signIn(cfg: CognitoConfig, username: string, password: string): Promise<SignInResult> {
  const { AuthenticationDetails, CognitoUser } = await lib();
  const user = new CognitoUser({ Username: username, Pool: await pool(cfg) });
  const details = new AuthenticationDetails({ Username: username, Password: password });
  return new Promise((resolve, reject) => {
    user.authenticateUser(details, {
      onSuccess: () => resolve({ kind: "signedIn", session: toAuthSession(user) }),
      onFailure: (err: unknown) => reject(describe(err)),
      newPasswordRequired: () =>
        resolve({
          kind: "newPassword",
          complete: (newPassword: string) =>
            new Promise((ok, fail) => {
              user.completeNewPasswordChallenge(newPassword, {}, {
                onSuccess: () => ok(toAuthSession(user)),
                onFailure: (err: unknown) => fail(describe(err)),
              });
            }),
        }),
      mfaRequired: () => reject(new Error("This account needs multi-factor sign-in, which this app does not support yet.")),
      totpRequired: () => reject(new Error("This account needs multi-factor sign-in, which this app does not support yet.")),
    });
  });
}
