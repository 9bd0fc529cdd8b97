import type { AnswerProgress as Progress } from "../../state/chat";

/** What the server is doing before the first token, in words. */
function progressText(progress: Progress | null): string {
  if (progress === null) return "Sending the question…";
  switch (progress.phase) {
    case "condensing":
      return "Reading the conversation to understand the follow-up…";
    case "searching":
      return "Searching your documents…";
    case "reading":
      if (progress.sources === 0) return "No passage matches the question closely enough.";
      return progress.sources === 1 ? "Reading 1 source…" : `Reading ${progress.sources ?? "the"} sources…`;
    case "writing":
      if (progress.sources) return `Writing the answer from ${progress.sources === 1 ? "1 source" : `${progress.sources} sources`}…`;
      return "Writing the answer…";
  }
}

export function AnswerProgress({ progress }: { progress: Progress | null }) {
  return (
    <p className="turn-status answer-phase" role="status" data-testid="answer-phase" data-phase={progress?.phase ?? "sent"}>
      <span className="spinner" aria-hidden="true" /> {progressText(progress)}
    </p>
  );
}
