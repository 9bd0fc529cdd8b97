import { useId } from "react";
import type { WorkspaceOut } from "../api/types";

export function WorkspacePicker({
  workspaces,
  value,
  onChange,
  allowNone = false,
  label = "Workspace",
  testId = "workspace-picker",
  disabled = false,
}: {
  workspaces: WorkspaceOut[];
  value: string | null;
  onChange: (id: string | null) => void;
  allowNone?: boolean;
  label?: string;
  testId?: string;
  disabled?: boolean;
}) {
  const id = useId();
  return (
    <div className="field inline">
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={value ?? ""}
        onChange={(e) => onChange(e.target.value || null)}
        data-testid={testId}
        disabled={disabled}
      >
        {(allowNone || value === null) && <option value="">{allowNone ? "None (no documents)" : "Choose…"}</option>}
        {workspaces.map((w) => (
          <option key={w.id} value={w.id}>
            {w.name}
          </option>
        ))}
        {value !== null && workspaces.length > 0 && !workspaces.some((w) => w.id === value) && (
          <option value={value}>Unavailable workspace</option>
        )}
      </select>
    </div>
  );
}
