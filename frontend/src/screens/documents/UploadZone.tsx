import { type DragEvent, useId, useRef, useState } from "react";
import type { UserMetadata } from "../../api/metadata";
import { MetadataFields } from "../../components/MetadataFields";
import { useMetadataInput } from "../../lib/useMetadataInput";
import type { KeyInfo } from "../../state/metadataDraft";

/**
 * Drag-and-drop or pick several files; the input stays a real, labelled, keyboard-usable control. Metadata set
 * under it goes with every file uploaded (and stays for the next ones); files are refused while it has a problem.
 */
export function UploadZone({
  onFiles,
  disabled,
  suggestions = [],
}: {
  onFiles: (files: File[], metadata: UserMetadata) => void;
  disabled: boolean;
  suggestions?: KeyInfo[];
}) {
  const [over, setOver] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();
  const metadata = useMetadataInput();
  const take = (files: File[]) => {
    if (files.length === 0) return;
    const checked = metadata.check();
    if (checked) onFiles(files, checked);
  };
  const onDrop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setOver(false);
    if (disabled) return;
    take(Array.from(e.dataTransfer.files));
  };
  return (
    <div className="upload-area">
      <div
        className={`dropzone${over ? " over" : ""}${disabled ? " disabled" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          if (!disabled) setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
        data-testid="dropzone"
      >
        <p>
          <strong>Drop files here</strong> or{" "}
          <label htmlFor={id} className="btn small">
            choose files
          </label>
        </p>
        <p className="muted small">PDF, Word, PowerPoint, Excel, Markdown, HTML, CSV or text. Several at once is fine.</p>
        <input
          id={id}
          ref={inputRef}
          className="file-input"
          type="file"
          multiple
          disabled={disabled}
          aria-label="Upload files"
          data-testid="upload-input"
          onChange={(e) => {
            take(Array.from(e.target.files ?? []));
            if (inputRef.current) inputRef.current.value = "";
          }}
        />
      </div>
      <MetadataFields
        input={metadata}
        suggestions={suggestions}
        label="Metadata for uploaded files (optional)"
        testId="upload-metadata"
      />
    </div>
  );
}
