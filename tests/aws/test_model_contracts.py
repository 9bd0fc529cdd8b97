"""The model contracts (tests/contracts) on the Bedrock and SageMaker adapters.

Each adapter talks to an in-process emulator of its service (``model_endpoints``) through a real boto3
client: botocore builds and signs every request and parses every answer, event streams included; the
SageMaker endpoint's own handlers validate the requests. The stand-in models behind the emulators give
any text its own vector or score, so the contracts can check order, batching, limits and streaming;
they judge no relevance (no trained model is behind them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import pytest

from quarry.adapters import bedrock, sagemaker
from quarry.adapters.aws_errors import RetryPolicy
from quarry.adapters.bedrock import BedrockChatModel, BedrockEmbedder, BedrockReranker
from quarry.adapters.sagemaker import SageMakerChatModel, SageMakerEmbedder, SageMakerReranker
from sagemaker_models import inference
from tests.contracts.chat_model_contract import ChatModelContract
from tests.contracts.embedder_contract import EmbedderContract
from tests.contracts.reranker_contract import RerankerContract

from .model_endpoints import (
    REGION,
    STAND_IN_EMBEDDER,
    STAND_IN_RERANKER,
    BedrockAgentRuntime,
    BedrockRuntime,
    SageMakerRuntime,
)

pytestmark = pytest.mark.aws

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
RERANK = "amazon.rerank-v1:0"
ENDPOINT = "quarry-models"
LLM = "quarry-llm"
DENIED = (403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
NO_ENDPOINT = (400, "ValidationError", f"Endpoint {ENDPOINT} of account 123456789012 not found.")


def test_the_adapters_limits_are_the_services() -> None:
    """The emulators refuse what the services refuse; the adapters keep under the same numbers."""
    assert bedrock._TITAN_MAX_CHARS == 50_000
    assert (bedrock._RERANK_MAX_SOURCES, bedrock._RERANK_MAX_CHARS) == (1000, 32_000)
    assert sagemaker._MAX_TEXT_CHARS == inference.MAX_TEXT_CHARS


# --------------------------------------------------------------------------- Bedrock


class TestBedrockEmbedder(EmbedderContract):
    batch_size = 1  # Titan embeds one text per call
    input_limit_chars = 50_000
    unit_vectors = True  # normalize=True, the default
    tolerance = 0.0  # JSON floats round-trip exactly

    @pytest.fixture
    def embedder(self, retry: RetryPolicy) -> BedrockEmbedder:
        return BedrockEmbedder(TITAN, dimensions=256, client=BedrockRuntime().client, retry=retry)

    @pytest.fixture
    def unreachable_embedder(self, retry: RetryPolicy) -> BedrockEmbedder:
        runtime = BedrockRuntime()
        runtime.fail_with(*DENIED)
        return BedrockEmbedder(TITAN, dimensions=256, client=runtime.client, retry=retry)


class TestBedrockReranker(RerankerContract):
    batch_size = 1000  # sources per Rerank call
    input_limit_chars = 32_000
    tolerance = 0.0

    @pytest.fixture
    def reranker(self, retry: RetryPolicy) -> BedrockReranker:
        return BedrockReranker(RERANK, region=REGION, client=BedrockAgentRuntime().client, retry=retry)

    @pytest.fixture
    def unreachable_reranker(self, retry: RetryPolicy) -> BedrockReranker:
        agent = BedrockAgentRuntime()
        agent.fail_with(403, "AccessDeniedException", "not authorized to perform bedrock:Rerank")
        return BedrockReranker(RERANK, region=REGION, client=agent.client, retry=retry)


class TestBedrockChatModel(ChatModelContract):
    @pytest.fixture
    def runtime(self) -> BedrockRuntime:
        return BedrockRuntime()

    @pytest.fixture
    def chat_model(self, runtime: BedrockRuntime, retry: RetryPolicy) -> BedrockChatModel:
        return BedrockChatModel(CLAUDE, client=runtime.client, retry=retry)

    @pytest.fixture
    def open_upstream_streams(self, runtime: BedrockRuntime) -> Callable[[], int]:
        return runtime.open_streams

    @pytest.fixture
    def unreachable_chat_model(self, retry: RetryPolicy) -> BedrockChatModel:
        runtime = BedrockRuntime()
        runtime.fail_with(*DENIED)
        return BedrockChatModel(CLAUDE, client=runtime.client, retry=retry)


# --------------------------------------------------------------------------- SageMaker


class TestSageMakerEmbedder(EmbedderContract):
    batch_size = 3
    input_limit_chars = inference.MAX_TEXT_CHARS
    tolerance = 1e-6  # float32 on the wire

    @pytest.fixture
    def embedder(self, retry: RetryPolicy) -> SageMakerEmbedder:
        client = SageMakerRuntime().client
        return SageMakerEmbedder(ENDPOINT, model=STAND_IN_EMBEDDER, batch_size=3, client=client, retry=retry)

    @pytest.fixture
    def unreachable_embedder(self, retry: RetryPolicy) -> SageMakerEmbedder:
        runtime = SageMakerRuntime()
        runtime.fail_with(*NO_ENDPOINT)
        return SageMakerEmbedder(ENDPOINT, dimensions=384, batch_size=3, client=runtime.client, retry=retry)


class TestSageMakerReranker(RerankerContract):
    batch_size = 3
    input_limit_chars = inference.MAX_TEXT_CHARS
    tolerance = 1e-6

    @pytest.fixture
    def reranker(self, retry: RetryPolicy) -> SageMakerReranker:
        client = SageMakerRuntime().client
        return SageMakerReranker(ENDPOINT, model=STAND_IN_RERANKER, batch_size=3, client=client, retry=retry)

    @pytest.fixture
    def unreachable_reranker(self, retry: RetryPolicy) -> SageMakerReranker:
        runtime = SageMakerRuntime()
        runtime.fail_with(*NO_ENDPOINT)
        return SageMakerReranker(ENDPOINT, batch_size=3, client=runtime.client, retry=retry)


class TestSageMakerMessagesChatModel(ChatModelContract):
    api: ClassVar[Literal["messages", "generate"]] = "messages"

    @pytest.fixture
    def runtime(self) -> SageMakerRuntime:
        return SageMakerRuntime()

    @pytest.fixture
    def chat_model(self, runtime: SageMakerRuntime, retry: RetryPolicy) -> SageMakerChatModel:
        return SageMakerChatModel(LLM, api=self.api, client=runtime.client, retry=retry)

    @pytest.fixture
    def open_upstream_streams(self, runtime: SageMakerRuntime) -> Callable[[], int]:
        return runtime.open_streams

    @pytest.fixture
    def unreachable_chat_model(self, retry: RetryPolicy) -> SageMakerChatModel:
        runtime = SageMakerRuntime()
        runtime.fail_with(403, "AccessDeniedException", "not authorized to perform sagemaker:InvokeEndpoint")
        return SageMakerChatModel(LLM, api=self.api, client=runtime.client, retry=retry)


class TestSageMakerGenerateChatModel(TestSageMakerMessagesChatModel):
    api = "generate"
