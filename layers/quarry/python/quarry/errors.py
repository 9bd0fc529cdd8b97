"""Typed errors of the domain. Edges map ``status`` and ``code`` to HTTP / WebSocket errors."""

from __future__ import annotations

__all__ = [
    "BudgetExhausted",
    "Conflict",
    "DatabaseWaking",
    "Forbidden",
    "InvalidInput",
    "ModelUnavailable",
    "NotFound",
    "PayloadTooLarge",
    "QuarryError",
    "Throttled",
    "Unauthorized",
    "UnreadableDocument",
    "UnsupportedDocument",
    "UpstreamError",
]


class QuarryError(Exception):
    status: int = 500
    code: str = "internal_error"
    #: Seconds after which the same request may succeed; edges send it as ``Retry-After``.
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(QuarryError):
    status = 422
    code = "invalid_input"


class Unauthorized(QuarryError):
    status = 401
    code = "unauthorized"


class Forbidden(QuarryError):
    status = 403
    code = "forbidden"


class NotFound(QuarryError):
    status = 404
    code = "not_found"


class Conflict(QuarryError):
    status = 409
    code = "conflict"


class PayloadTooLarge(QuarryError):
    status = 413
    code = "payload_too_large"


class UnsupportedDocument(QuarryError):
    status = 415
    code = "unsupported_media_type"


class UnreadableDocument(QuarryError):
    status = 422
    code = "unreadable_document"


class Throttled(QuarryError):
    status = 429
    code = "throttled"


class BudgetExhausted(Throttled):
    """The user has spent their daily token allowance (``Settings.daily_token_budget``); it renews at 00:00 UTC.

    A 429 like the rate limit, but with its own code so the UI can say what happened in plain words, and a
    ``Retry-After`` of the seconds left until the next UTC midnight, when the same request will work again.
    """

    code = "budget_exhausted"

    def __init__(self, *, budget: int, retry_after: int) -> None:
        self.budget = budget
        self.retry_after = max(1, int(retry_after))
        hours, minutes = divmod(-(-self.retry_after // 60), 60)  # whole minutes, rounded up
        super().__init__(
            f"You have used your daily allowance of {budget:,} tokens; it renews at 00:00 UTC (in {hours}h {minutes}m)."
        )


class ModelUnavailable(QuarryError):
    status = 503
    code = "model_unavailable"


class UpstreamError(QuarryError):
    status = 502
    code = "upstream_error"


class DatabaseWaking(UpstreamError):
    """The database is resuming from pause (Aurora Serverless v2 at 0 ACU) and the caller's wait budget ran out.

    Nothing was done: a paused cluster runs no statement. The same request succeeds once the cluster is
    up, so the edges answer 503 with ``Retry-After: retry_after``.
    """

    status = 503
    code = "database_waking"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"the database is waking up; retry in {self.retry_after} s")
