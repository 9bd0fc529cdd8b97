import { type FormEvent, type ReactNode, useEffect, useState } from "react";
import { Loading } from "../components/common";
import { type CognitoConfig, type SignInResult, restoreSession, signIn } from "./cognito";
import type { AuthSession } from "./session";

const TIMEOUT_MS = 20_000;

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} did not finish within ${TIMEOUT_MS / 1000} s. Check your connection.`)), TIMEOUT_MS),
    ),
  ]);
}

/** The minimal Cognito sign-in: username and password, then a new password when Cognito asks for one. */
export function CognitoGate({ config, children }: { config: CognitoConfig; children: (s: AuthSession) => ReactNode }) {
  const [session, setSession] = useState<AuthSession | null>(null);
  const [restoring, setRestoring] = useState(true);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [newPassword, setNewPassword] = useState("");
  const [challenge, setChallenge] = useState<Extract<SignInResult, { kind: "newPassword" }> | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    withTimeout(restoreSession(config), "Restoring your session")
      .then(setSession, () => setSession(null))
      .finally(() => setRestoring(false));
  }, [config]);

  if (session) return <>{children(session)}</>;
  if (restoring) return <Loading label="Checking your session…" />;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (challenge) {
        setSession(await withTimeout(challenge.complete(newPassword), "Setting the password"));
      } else {
        const r = await withTimeout(signIn(config, username.trim(), password), "Signing in");
        if (r.kind === "signedIn") setSession(r.session);
        else setChallenge(r);
      }
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin">
      <form className="card stack" onSubmit={(e) => void submit(e)} aria-labelledby="signin-title" data-testid="signin-form">
        <h1 id="signin-title">Sign in to Quarry</h1>
        {challenge ? (
          <label className="field">
            <span>Choose a new password</span>
            <input type="password" autoComplete="new-password" required value={newPassword} onChange={(e) => setNewPassword(e.target.value)} />
          </label>
        ) : (
          <>
            <label className="field">
              <span>Username or email</span>
              <input autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
            </label>
            <label className="field">
              <span>Password</span>
              <input
                type="password"
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            </label>
          </>
        )}
        <button type="submit" className="btn primary" disabled={busy}>
          {busy ? "Signing in…" : challenge ? "Set password" : "Sign in"}
        </button>
        {error && (
          <p className="error-text" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
