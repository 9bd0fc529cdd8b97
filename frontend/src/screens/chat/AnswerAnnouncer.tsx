import { useState } from "react";
import type { AssistantTurn, Turn } from "../../state/chat";

function announcement(turn: AssistantTurn): string {
  if (turn.status === "done") return `Answer: ${turn.text}`;
  if (turn.status === "cancelled") return `Answer stopped: ${turn.text}`;
  return ""; // errors are announced where they are shown (role="alert")
}

/**
 * A polite live region that reads out each answer once, when it is finished (not every token): the
 * answer streamed in this screen, not the ones of a conversation opened from history.
 */
export function AnswerAnnouncer({ turns }: { turns: Turn[] }) {
  const [streamingId, setStreamingId] = useState<string | null>(null);
  const [message, setMessage] = useState("");
  const last = turns[turns.length - 1];
  const answer = last?.kind === "assistant" ? last : null;
  // State that follows the turns, updated while rendering (no effect, no extra render pass).
  if (answer?.status === "streaming" && streamingId !== answer.id) setStreamingId(answer.id);
  if (answer && answer.status !== "streaming" && streamingId === answer.id) {
    setStreamingId(null);
    setMessage(announcement(answer));
  }
  return (
    <div className="sr-only" aria-live="polite" aria-atomic="true" data-testid="answer-announcer">
      {message}
    </div>
  );
}
