import { type DragEvent, useId, useRef, useState } from "react";

/** Drag-and-drop or pick several files; the input stays a real, labelled, keyboard-usable control. */
export function UploadZone({ onFiles, disabled }: { onFiles: (files: File[]) => void; disabled: boolean }) {
  const [over, setOver] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();
  const onDrop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setOver(false);
    if (disabled) return;
    const files = Array.from(e.dataTransfer.files);
    if (files.length) onFiles(files);
  };
  return (
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
          const files = Array.from(e.target.files ?? []);
          if (files.length) onFiles(files);
          if (inputRef.current) inputRef.current.value = "";
        }}
      />
    </div>
  );
}
