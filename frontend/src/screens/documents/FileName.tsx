import { Fragment } from "react";
import "./documents.css";

/** Points where a file name may wrap besides spaces: after a separator ("annual_report-2024.final.pdf"). */
const BREAK_AFTER = /(?<=[_\-./\\])(?=[^_\-./\\])/;

/**
 * A document's name that wraps at spaces and separators (never inside a word unless one word is longer
 * than the cell), clamped to two lines with an ellipsis. The whole name stays in the text (screen
 * readers read all of it) and in the tooltip.
 */
export function FileName({ name }: { name: string }) {
  const parts = name.split(BREAK_AFTER);
  return (
    <span className="file-name" title={name}>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {i > 0 && <wbr />}
          {part}
        </Fragment>
      ))}
    </span>
  );
}
