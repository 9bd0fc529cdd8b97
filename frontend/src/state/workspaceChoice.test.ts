import { beforeEach, describe, expect, it } from "vitest";
import { workspace } from "../test/fixtures";
import { WORKSPACE_CHOICE_KEY, decodeChoice, encodeChoice, readChoice, rememberChoice, resolveWorkspace } from "./workspaceChoice";

const older = workspace({ id: "old", created_at: "2025-01-01T00:00:00Z" });
const newer = workspace({ id: "new", created_at: "2025-06-01T00:00:00Z" });

describe("resolveWorkspace", () => {
  it("uses the remembered workspace when it still exists", () => {
    expect(resolveWorkspace({ kind: "workspace", id: "old" }, [newer, older])).toBe("old");
  });

  it("with nothing remembered takes the only workspace, else the most recently created", () => {
    expect(resolveWorkspace(null, [older])).toBe("old");
    expect(resolveWorkspace(null, [older, newer])).toBe("new");
    expect(resolveWorkspace(null, [newer, older])).toBe("new");
  });

  it("falls back to the default when the remembered one is gone", () => {
    expect(resolveWorkspace({ kind: "workspace", id: "deleted" }, [older, newer])).toBe("new");
  });

  it("keeps an explicit 'no documents', and has nothing to pick without workspaces", () => {
    expect(resolveWorkspace({ kind: "none" }, [older, newer])).toBeNull();
    expect(resolveWorkspace(null, [])).toBeNull();
  });
});

describe("the remembered choice", () => {
  beforeEach(() => localStorage.clear());

  it("round-trips a workspace and 'no documents' through localStorage", () => {
    expect(readChoice()).toBeNull();
    rememberChoice({ kind: "workspace", id: "w7" });
    expect(readChoice()).toEqual({ kind: "workspace", id: "w7" });
    rememberChoice({ kind: "none" });
    expect(localStorage.getItem(WORKSPACE_CHOICE_KEY)).toBe(encodeChoice({ kind: "none" }));
    expect(readChoice()).toEqual({ kind: "none" });
  });

  it("reads an empty value as nothing remembered", () => {
    expect(decodeChoice("")).toBeNull();
  });
});
