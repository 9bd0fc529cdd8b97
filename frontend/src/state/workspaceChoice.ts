/**
 * Which workspace a new conversation searches. Remembered per browser: the last one used, or an explicit
 * "no documents". Nothing remembered: the only workspace, else the most recently created one.
 */
import type { WorkspaceOut } from "../api/types";

/** What the user last chose: a workspace, or answering without documents on purpose. */
export type WorkspaceChoice = { kind: "workspace"; id: string } | { kind: "none" };

export const WORKSPACE_CHOICE_KEY = "quarry.chat.workspace";
const NONE = "none:";

export function encodeChoice(choice: WorkspaceChoice): string {
  return choice.kind === "none" ? NONE : choice.id;
}

export function decodeChoice(stored: string | null): WorkspaceChoice | null {
  if (!stored) return null;
  return stored === NONE ? { kind: "none" } : { kind: "workspace", id: stored };
}

/**
 * The workspace to use (null: no documents). A remembered workspace that no longer exists or is not
 * readable any more falls back to the default, as if nothing were remembered.
 */
export function resolveWorkspace(choice: WorkspaceChoice | null, workspaces: readonly WorkspaceOut[]): string | null {
  if (choice?.kind === "none") return null;
  if (choice && workspaces.some((w) => w.id === choice.id)) return choice.id;
  return newestWorkspace(workspaces);
}

function newestWorkspace(workspaces: readonly WorkspaceOut[]): string | null {
  let newest: WorkspaceOut | null = null;
  for (const w of workspaces) if (newest === null || Date.parse(w.created_at) > Date.parse(newest.created_at)) newest = w;
  return newest?.id ?? null;
}

export function readChoice(): WorkspaceChoice | null {
  try {
    return decodeChoice(localStorage.getItem(WORKSPACE_CHOICE_KEY));
  } catch {
    return null; // storage blocked: the default applies
  }
}

export function rememberChoice(choice: WorkspaceChoice): void {
  try {
    localStorage.setItem(WORKSPACE_CHOICE_KEY, encodeChoice(choice));
  } catch {
    // private mode: not remembered, no harm
  }
}
