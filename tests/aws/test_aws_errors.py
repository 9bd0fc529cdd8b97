"""The shared retry / error policy of the AWS model adapters, on real botocore errors and clients."""

from __future__ import annotations

import io
import json
from collections.abc import Generator, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from quarry import errors
from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import (
    AwsTarget,
    Failure,
    RetryPolicy,
    call_with_retry,
    classify,
    client_config,
    error_code,
    map_error,
    stream_with_retry,
)

pytestmark = pytest.mark.aws

TARGET = AwsTarget("Bedrock model", "anthropic.claude-3-haiku-20240307-v1:0", "Enable it under Model access.")


def client_error(code: str, message: str = "boom", status: int = 400, **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    response.update(extra)
    return ClientError(response, "InvokeModel")  # type: ignore[arg-type]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def policy(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(attempts=3, base_delay=0.5, max_delay=4.0, sleep=sleeps, jitter=lambda: 1.0)


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 429, Failure.THROTTLED),
        ("throttlingException", 400, Failure.THROTTLED),  # as event-stream errors spell it
        ("ServiceQuotaExceededException", 400, Failure.THROTTLED),
        ("SomethingNew", 429, Failure.THROTTLED),
        ("ModelNotReadyException", 429, Failure.THROTTLED),  # a 429 is a 429
        ("ModelNotReadyException", 400, Failure.NOT_READY),
        ("ServiceUnavailable", 503, Failure.NOT_READY),
        ("InternalServerException", 500, Failure.TRANSIENT),
        ("internalStreamFailure", 500, Failure.TRANSIENT),
        ("AccessDeniedException", 403, Failure.UNAVAILABLE),
        ("ResourceNotFoundException", 404, Failure.UNAVAILABLE),
        ("ModelErrorException", 424, Failure.FAILED),
        ("ValidationException", 400, Failure.FAILED),
    ],
)
def test_classify_by_code_and_status(code: str, status: int, expected: Failure) -> None:
    assert classify(client_error(code, status=status)) is expected


def test_validation_errors_that_mean_the_model_is_unusable_are_unavailable() -> None:
    assert classify(client_error("ValidationException", "The provided model identifier is invalid.")) is (
        Failure.UNAVAILABLE
    )
    assert classify(client_error("ValidationError", "Endpoint x of account 1 not found.")) is Failure.UNAVAILABLE
    assert classify(client_error("ValidationException", "Input is too long for requested model.")) is Failure.FAILED


def test_classify_non_client_errors() -> None:
    assert classify(EndpointConnectionError(endpoint_url="https://x")) is Failure.TRANSIENT
    assert classify(NoCredentialsError()) is Failure.UNAVAILABLE
    assert classify(ValueError("x")) is Failure.FAILED


def test_error_code_normalises_event_stream_spelling() -> None:
    assert error_code(client_error("modelStreamErrorException")) == "ModelStreamErrorException"
    assert error_code(ValueError()) == "ValueError"


def test_map_error_messages_name_the_model_and_say_what_to_do() -> None:
    throttled = map_error(client_error("ThrottlingException", "Too many requests"), TARGET, attempts=4)
    assert isinstance(throttled, errors.Throttled)
    assert throttled.status == 429
    assert "anthropic.claude-3-haiku-20240307-v1:0" in throttled.message
    assert "after 4 attempts" in throttled.message

    denied = map_error(client_error("AccessDeniedException", "You don't have access to the model"), TARGET)
    assert isinstance(denied, errors.ModelUnavailable)
    assert denied.status == 503
    assert "anthropic.claude-3-haiku-20240307-v1:0" in denied.message
    assert "Model access" in denied.message

    other = map_error(client_error("ModelErrorException", "bad"), TARGET)
    assert isinstance(other, errors.UpstreamError)
    assert "ModelErrorException: bad" in other.message


def test_map_error_carries_sagemakers_original_message() -> None:
    exc = client_error("ModelError", "Received client error (400)", 424, OriginalMessage="text too long")
    mapped = map_error(exc, AwsTarget("SageMaker endpoint", "quarry-embeddings"))
    assert isinstance(mapped, errors.UpstreamError)
    assert "text too long" in mapped.message
    assert "'quarry-embeddings'" in mapped.message


# --------------------------------------------------------------------------- backoff


def test_backoff_is_exponential_capped_and_jittered() -> None:
    full = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=lambda: 1.0)
    assert [full.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    half = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=lambda: 0.5)
    assert half.delay(2) == 1.0
    real = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert all(0.0 <= real.delay(n) <= 4.0 for n in range(10))


def test_policy_needs_an_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


# --------------------------------------------------------------------------- call_with_retry on a stubbed client


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1", config=client_config())
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _ok_body() -> dict[str, Any]:
    data = json.dumps({"embedding": [0.1, 0.2]}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def test_throttled_then_succeeding(bedrock: tuple[Any, Stubber], policy: RetryPolicy, sleeps: Sleeps) -> None:
    client, stubber = bedrock
    stubber.add_client_error("invoke_model", "ThrottlingException", "Too many requests", 429)
    stubber.add_client_error("invoke_model", "ServiceQuotaExceededException", "quota", 400)
    stubber.add_response("invoke_model", _ok_body())
    response = call_with_retry(lambda: client.invoke_model(modelId="m", body=b"{}"), TARGET, policy)
    assert json.loads(response["body"].read()) == {"embedding": [0.1, 0.2]}
    assert sleeps.calls == [0.5, 1.0]


def test_throttled_until_giving_up(bedrock: tuple[Any, Stubber], policy: RetryPolicy, sleeps: Sleeps) -> None:
    client, stubber = bedrock
    for _ in range(3):
        stubber.add_client_error("invoke_model", "ThrottlingException", "Too many requests", 429)
    with pytest.raises(errors.Throttled, match="after 3 attempts") as raised:
        call_with_retry(lambda: client.invoke_model(modelId="m", body=b"{}"), TARGET, policy)
    assert isinstance(raised.value.__cause__, ClientError)
    assert sleeps.calls == [0.5, 1.0]  # no sleep after the last attempt


def test_access_denied_is_not_retried(bedrock: tuple[Any, Stubber], policy: RetryPolicy, sleeps: Sleeps) -> None:
    client, stubber = bedrock
    stubber.add_client_error("invoke_model", "AccessDeniedException", "You don't have access to the model.", 403)
    with pytest.raises(errors.ModelUnavailable, match=r"anthropic\.claude-3-haiku"):
        call_with_retry(lambda: client.invoke_model(modelId="m", body=b"{}"), TARGET, policy)
    assert sleeps.calls == []


# --------------------------------------------------------------------------- stream_with_retry


class FakeStream:
    """An iterator with ``close``, failing with ``error`` after handing out ``items``."""

    def __init__(self, items: list[str], error: BaseException | None = None) -> None:
        self.items, self.error, self.closed = items, error, False

    def __iter__(self) -> Iterator[str]:
        yield from self.items
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


def test_stream_retried_when_failing_before_its_first_item(policy: RetryPolicy, sleeps: Sleeps) -> None:
    streams = [FakeStream([], client_error("throttlingException", status=400)), FakeStream(["a", "b"])]
    opened = iter(streams)
    assert list(stream_with_retry(lambda: iter(next(opened)), TARGET, policy)) == ["a", "b"]
    assert sleeps.calls == [0.5]


def test_stream_failing_after_an_item_is_not_retried(policy: RetryPolicy, sleeps: Sleeps) -> None:
    stream = FakeStream(["a"], client_error("throttlingException", status=400))
    received: list[str] = []
    with pytest.raises(errors.Throttled):
        for item in stream_with_retry(lambda: iter(stream), TARGET, policy):
            received.append(item)
    assert received == ["a"]
    assert sleeps.calls == []


def test_stream_closed_when_the_caller_stops_early(policy: RetryPolicy) -> None:
    stream = FakeStream(["a", "b", "c"])
    opened: Any = stream  # iterable with close(), as botocore's EventStream
    iterator: Generator[str, None, None] = stream_with_retry(lambda: opened, TARGET, policy)  # type: ignore[assignment]
    assert next(iterator) == "a"
    iterator.close()
    assert stream.closed


def test_quarry_errors_inside_a_stream_pass_through(policy: RetryPolicy, sleeps: Sleeps) -> None:
    stream = FakeStream([], errors.UpstreamError("bad line"))
    with pytest.raises(errors.UpstreamError, match="bad line"):
        list(stream_with_retry(lambda: iter(stream), TARGET, policy))
    assert sleeps.calls == []


# --------------------------------------------------------------------------- clients


def test_clients_are_made_lazily_with_adaptive_rate_limiting_and_one_attempt() -> None:
    made: list[str] = []

    class Session(boto3.Session):
        def client(self, service: str, **kwargs: Any) -> Any:
            made.append(service)
            return super().client(service, **kwargs)

    lazy = LazyClient(
        "sagemaker-runtime", session=Session(), region="eu-west-1", config=client_config(read_timeout=42.0)
    )
    assert made == []  # nothing made until the first call
    client = lazy()
    assert lazy() is client and made == ["sagemaker-runtime"]
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 1}
    assert client.meta.config.read_timeout == 42.0
