import { useEffect, useState } from "react";
import { userMetadata } from "../api/metadata";
import { useServices } from "../app/context";
import { type KeyInfo, keysSeen } from "../state/metadataDraft";

const NONE: KeyInfo[] = [];

/**
 * The metadata keys set on a workspace's documents (with their types and some values), to suggest in
 * filters. Read when `enabled` (nothing is asked for before); a failure only means no suggestions.
 */
export function useMetadataKeys(workspaceId: string | null, enabled = true): KeyInfo[] {
  const { api } = useServices();
  const [found, setFound] = useState<{ workspaceId: string; keys: KeyInfo[] } | null>(null);
  useEffect(() => {
    if (!workspaceId || !enabled) return;
    let live = true;
    api.listDocuments(workspaceId).then(
      (docs) => {
        if (live) setFound({ workspaceId, keys: keysSeen(docs.map((d) => userMetadata(d.metadata))) });
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [api, workspaceId, enabled]);
  return found && found.workspaceId === workspaceId ? found.keys : NONE;
}
