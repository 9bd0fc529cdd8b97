import { useId, useState } from "react";
import { describeError } from "../../api/errors";
import { limits } from "../../api/limits.gen";
import { useServices } from "../../app/context";
import { ThumbDownIcon, ThumbUpIcon } from "../../components/icons";

const MAX_COMMENT = limits.FeedbackIn.comment.maxLength;

/** Thumbs up/down (one click records it), then an optional comment. */
export function Feedback({
  sessionId,
  messageId,
  rating,
  onRated,
}: {
  sessionId: string;
  messageId: string;
  rating: -1 | 1 | null;
  onRated: (r: -1 | 1) => void;
}) {
  const { api } = useServices();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [commenting, setCommenting] = useState(false);
  const [comment, setComment] = useState("");
  const [commentSent, setCommentSent] = useState(false);
  const id = useId();

  const send = async (r: -1 | 1, text: string | null) => {
    setBusy(true);
    setError(null);
    try {
      await api.feedback({ session_id: sessionId, message_id: messageId, rating: r, comment: text });
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const rate = async (r: -1 | 1) => {
    if (await send(r, null)) onRated(r);
  };
  const submitComment = async () => {
    if (rating === null || !comment.trim()) return;
    if (await send(rating, comment.trim())) {
      setCommentSent(true);
      setCommenting(false);
    }
  };

  return (
    <div className="feedback" role="group" aria-label="Rate this answer">
      <button
        type="button"
        className="btn icon thumb"
        aria-label="Good answer"
        aria-pressed={rating === 1}
        disabled={busy}
        onClick={() => void rate(1)}
        data-testid="thumbs-up"
      >
        <ThumbUpIcon />
      </button>
      <button
        type="button"
        className="btn icon thumb"
        aria-label="Bad answer"
        aria-pressed={rating === -1}
        disabled={busy}
        onClick={() => void rate(-1)}
        data-testid="thumbs-down"
      >
        <ThumbDownIcon />
      </button>
      {rating !== null && !commenting && (
        <span className="muted small" data-testid="feedback-thanks">
          {commentSent ? "Thanks for the comment." : "Thanks for the feedback."}
          {!commentSent && (
            <button type="button" className="link" onClick={() => setCommenting(true)} data-testid="feedback-add-comment">
              Add a comment
            </button>
          )}
        </span>
      )}
      {commenting && (
        <form
          className="feedback-form"
          onSubmit={(e) => {
            e.preventDefault();
            void submitComment();
          }}
        >
          <label htmlFor={id} className="sr-only">
            Comment on this answer
          </label>
          <textarea
            id={id}
            rows={2}
            maxLength={MAX_COMMENT}
            value={comment}
            placeholder="What was good or wrong? (optional)"
            onChange={(e) => setComment(e.target.value)}
            data-testid="feedback-comment"
            autoFocus
          />
          <div className="row">
            <button type="submit" className="btn small primary" disabled={busy || !comment.trim()} data-testid="feedback-submit">
              Send comment
            </button>
            <button type="button" className="btn small" onClick={() => setCommenting(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {error !== null && (
        <span className="error-text" role="alert">
          {describeError(error)}
        </span>
      )}
    </div>
  );
}
