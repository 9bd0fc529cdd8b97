import { useMemo } from "react";
import { renewDevToken } from "../api/config";
import type { AppConfig } from "../api/types";
import { anonymousSession, devSession } from "../auth/session";
import { CognitoGate } from "../auth/SignIn";
import { Shell } from "./Shell";

export function App({ config }: { config: AppConfig }) {
  const auth = config.auth;
  const local = useMemo(() => {
    if (auth.mode === "dev") return devSession(auth.token, { expiresAt: auth.expiresAt, renew: () => renewDevToken() });
    if (auth.mode === "none") return anonymousSession();
    return null;
  }, [auth]);
  if (local) return <Shell config={config} auth={local} />;
  if (auth.mode === "cognito") {
    return <CognitoGate config={auth}>{(session) => <Shell config={config} auth={session} />}</CognitoGate>;
  }
  return null;
}
