"""One place for how AWS model calls are retried and how their failures become ``quarry.errors``.

Shared by the Bedrock and SageMaker adapters. The policy:

* throttling (``ThrottlingException``, ``ServiceQuotaExceededException``...), a model that is
  not ready yet (``ModelNotReadyException``, ``ServiceUnavailable``) and transient server or
  connection failures are retried with exponential backoff and full jitter, a bounded number
  of times; when the attempts run out the caller gets ``Throttled`` / ``ModelUnavailable`` /
  ``UpstreamError`` respectively;
* access denied, unknown model or endpoint ("model not enabled") becomes ``ModelUnavailable``
  with a message naming the model id or endpoint, never retried;
* everything else becomes ``UpstreamError`` carrying AWS's own message.

``error_code`` is the one reading of an AWS error code, for every AWS adapter. The backoff is
``quarry.adapters.retry.RetryPolicy``, the same policy PostgreSQL connections use.

Model clients (``aws_clients.LazyClient`` with ``client_config()``) use botocore's *adaptive*
retry mode with a single attempt: botocore then rate-limits the client after throttling
responses (a token bucket shared by every call on that client), while the retrying itself
happens in one visible, bounded loop here, which also covers errors that arrive inside an
event stream (botocore never retries those).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from quarry import errors
from quarry.adapters.retry import RetryPolicy

__all__ = [
    "AwsTarget",
    "Failure",
    "RetryPolicy",
    "call_with_retry",
    "classify",
    "client_config",
    "error_code",
    "map_error",
    "stream_with_retry",
]

T = TypeVar("T")

_THROTTLE = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
    }
)
_NOT_READY = frozenset({"ModelNotReadyException", "ServiceUnavailableException", "ServiceUnavailable"})
_TRANSIENT = frozenset({"InternalServerException", "InternalFailure", "InternalStreamFailure"})
_UNAVAILABLE = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
    }
)
# Validation errors that really mean "this model / endpoint cannot be used from here".
_UNAVAILABLE_HINTS = (
    "model identifier is invalid",
    "model id is invalid",
    "not found",
    "don't have access",
    "do not have access",
    "not authorized",
    "isn't supported",
    "is not supported",
    "inference profile",
    "end of its life",
    "legacy",
)
_TRANSIENT_IO = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


class Failure(Enum):
    """What a failure means for the caller."""

    THROTTLED = "throttled"  # retry, then Throttled
    NOT_READY = "not_ready"  # retry, then ModelUnavailable
    TRANSIENT = "transient"  # retry, then UpstreamError
    UNAVAILABLE = "unavailable"  # ModelUnavailable at once
    FAILED = "failed"  # UpstreamError at once

    @property
    def retryable(self) -> bool:
        return self in (Failure.THROTTLED, Failure.NOT_READY, Failure.TRANSIENT)


@dataclass(frozen=True, slots=True)
class AwsTarget:
    """What is being called, for error messages: ``kind`` "Bedrock model", ``resource`` its id."""

    kind: str
    resource: str
    hint: str = ""

    def describe(self) -> str:
        return f"{self.kind} {self.resource!r}"


# --------------------------------------------------------------------------- classification


def error_code(exc: BaseException) -> str:
    """AWS's error code, normalised: event-stream errors arrive as ``throttlingException``."""
    if not isinstance(exc, ClientError):
        return type(exc).__name__
    code = str(exc.response.get("Error", {}).get("Code", "") or "")
    return code[:1].upper() + code[1:]


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = str(error.get("Message") or "")
        original = exc.response.get("OriginalMessage")  # SageMaker ModelError carries the container's text
        if original:
            message = f"{message} ({original})" if message else str(original)
        return message or error_code(exc)
    return str(exc) or type(exc).__name__


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, (NoCredentialsError, NoRegionError)):
        return Failure.UNAVAILABLE
    if isinstance(exc, _TRANSIENT_IO):
        return Failure.TRANSIENT
    if not isinstance(exc, ClientError):
        return Failure.FAILED
    code = error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _THROTTLE or status == 429:
        return Failure.THROTTLED
    if code in _NOT_READY:
        return Failure.NOT_READY
    if code in _TRANSIENT:
        return Failure.TRANSIENT
    if code in _UNAVAILABLE:
        return Failure.UNAVAILABLE
    if code in ("ValidationException", "ValidationError"):
        message = _error_message(exc).lower()
        if any(hint in message for hint in _UNAVAILABLE_HINTS):
            return Failure.UNAVAILABLE
    return Failure.FAILED


def map_error(exc: BaseException, target: AwsTarget, *, attempts: int = 1) -> errors.QuarryError:
    """The typed error for ``exc``; ``attempts`` is how many calls were made before giving up."""
    failure = classify(exc)
    code, message = error_code(exc), _error_message(exc)
    what = target.describe()
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    if failure is Failure.THROTTLED:
        return errors.Throttled(f"{what} is throttling requests{tried} ({code}: {message}); try again shortly")
    if failure is Failure.NOT_READY:
        return errors.ModelUnavailable(f"{what} is not ready{tried} ({code}: {message})")
    if failure is Failure.UNAVAILABLE:
        hint = f" {target.hint}" if target.hint else ""
        return errors.ModelUnavailable(f"{what} is not available to this account or region ({code}: {message}).{hint}")
    return errors.UpstreamError(f"{what} failed{tried} ({code}: {message})")


# --------------------------------------------------------------------------- retrying


def call_with_retry(call: Callable[[], T], target: AwsTarget, policy: RetryPolicy) -> T:
    """Run ``call``, retrying retryable AWS failures; any failure leaves as a ``QuarryError``."""
    failure: ClientError | BotoCoreError | None = None
    attempts = 0
    for attempts in policy.tries():
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            if not classify(exc).retryable:
                raise map_error(exc, target, attempts=attempts) from exc
            failure = exc
    assert failure is not None  # the policy allows at least one attempt
    raise map_error(failure, target, attempts=attempts) from failure


def stream_with_retry(open_stream: Callable[[], Iterator[T]], target: AwsTarget, policy: RetryPolicy) -> Iterator[T]:
    """Iterate a fresh stream, reopening it on a retryable failure *before its first item*.

    Once an item has been handed to the caller a retry would repeat it, so a later failure
    is raised at once (as a ``QuarryError``).
    """
    failure: ClientError | BotoCoreError | None = None
    attempts = 0
    for attempts in policy.tries():
        started = False
        stream: Iterator[T] | None = None
        try:
            stream = open_stream()
            for item in stream:
                started = True
                yield item
            return
        except (ClientError, BotoCoreError) as exc:
            if started or not classify(exc).retryable:
                raise map_error(exc, target, attempts=attempts) from exc
            failure = exc
        finally:
            close = getattr(stream, "close", None)
            if callable(close):
                close()  # release the HTTP connection, also when the caller stops early
    assert failure is not None  # the policy allows at least one attempt
    raise map_error(failure, target, attempts=attempts) from failure


# --------------------------------------------------------------------------- clients


def client_config(*, read_timeout: float = 60.0, connect_timeout: float = 5.0) -> Config:
    """Adaptive client-side rate limiting, one attempt per call (the retry loop above owns retries)."""
    return Config(
        retries={"mode": "adaptive", "total_max_attempts": 1},
        read_timeout=read_timeout,
        connect_timeout=connect_timeout,
        tcp_keepalive=True,
    )
