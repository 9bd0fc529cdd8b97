"""Bedrock adapters against botocore: Converse streaming, Titan embeddings, Rerank.

``converse_stream`` answers with an event stream, which botocore's Stubber cannot express
(see ``botocore_replay``): those tests answer at the HTTP layer with real event-stream bytes
and let botocore parse them. ``invoke_model`` and ``rerank`` use the Stubber.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from quarry import errors
from quarry.adapters.aws_errors import RetryPolicy, client_config
from quarry.adapters.bedrock import (
    BedrockChatModel,
    BedrockEmbedder,
    BedrockReranker,
    base_model_id,
    converse_request,
)
from quarry.models import Role, Usage
from quarry.ports import ChatDelta, ChatModel, ChatTurn, Embedder, Reranker
from quarry.settings import Settings

from .botocore_replay import HttpReplay, event, exception_event
from .conftest import Sleeps

pytestmark = pytest.mark.aws

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
RERANK_ARN = "arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0"


def runtime_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", config=client_config())


def turns(*pairs: tuple[Role, str]) -> list[ChatTurn]:
    return [ChatTurn(role=role, content=content) for role, content in pairs]


QUESTION = turns((Role.SYSTEM, "Answer from the sources."), (Role.USER, "What is Quarry?"))


def answer_events(*texts: str, input_tokens: int = 21, output_tokens: int = 7) -> list[bytes]:
    """The events Bedrock sends for a text answer, in order."""
    messages = [event("messageStart", {"role": "assistant"})]
    messages += [event("contentBlockDelta", {"delta": {"text": text}, "contentBlockIndex": 0}) for text in texts]
    messages += [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "end_turn"}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": 28},
                "metrics": {"latencyMs": 312},
            },
        ),
    ]
    return messages


# --------------------------------------------------------------------------- request building


def test_converse_request_uses_the_system_field_and_merges_same_role_turns() -> None:
    request = converse_request(
        CLAUDE,
        turns(
            (Role.ASSISTANT, "left over from a cut history"),
            (Role.SYSTEM, "Be brief."),
            (Role.USER, "Hello"),
            (Role.USER, "  "),
            (Role.USER, "Are you there?"),
            (Role.ASSISTANT, "Yes."),
            (Role.USER, "Good."),
        ),
        max_tokens=100,
        temperature=0.2,
    )
    assert request == {
        "modelId": CLAUDE,
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hello"}, {"text": "Are you there?"}]},
            {"role": "assistant", "content": [{"text": "Yes."}]},
            {"role": "user", "content": [{"text": "Good."}]},
        ],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.2},
    }


def test_models_without_system_prompts_get_it_in_the_first_user_turn() -> None:
    model = BedrockChatModel("mistral.mistral-7b-instruct-v0:2", client=runtime_client())
    request = converse_request(model.name, QUESTION, max_tokens=10, temperature=0.0, system_prompts=False)
    assert "system" not in request
    assert request["messages"][0]["content"] == [{"text": "Answer from the sources."}, {"text": "What is Quarry?"}]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 0, "temperature": 0.1}, "max_tokens"),
        ({"max_tokens": 10, "temperature": 1.5}, "temperature"),
    ],
)
def test_converse_request_rejects_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidInput, match=message):
        converse_request(CLAUDE, QUESTION, **kwargs)


def test_a_chat_needs_a_user_turn() -> None:
    with pytest.raises(errors.InvalidInput, match="user turn"):
        converse_request(CLAUDE, turns((Role.SYSTEM, "x"), (Role.ASSISTANT, "y")), max_tokens=5, temperature=0.1)


@pytest.mark.parametrize(
    ("model_id", "base", "context", "system"),
    [
        (CLAUDE, CLAUDE, 200_000, True),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0", 200_000, True),
        ("meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-8b-instruct-v1:0", 128_000, True),
        ("meta.llama3-8b-instruct-v1:0", "meta.llama3-8b-instruct-v1:0", 8_192, True),
        ("mistral.mistral-large-2402-v1:0", "mistral.mistral-large-2402-v1:0", 32_000, True),
        ("mistral.mistral-7b-instruct-v0:2", "mistral.mistral-7b-instruct-v0:2", 32_000, False),
        ("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0", 300_000, True),
        ("amazon.titan-text-express-v1", "amazon.titan-text-express-v1", 8_192, False),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-micro-v1:0",
            "amazon.nova-micro-v1:0",
            128_000,
            True,
        ),
        ("cohere.command-r-v1:0", "cohere.command-r-v1:0", 8_192, True),
    ],
)
def test_model_families(model_id: str, base: str, context: int, system: bool) -> None:
    model = BedrockChatModel(model_id)
    assert base_model_id(model_id) == base
    assert model.context_tokens == context
    assert model._system_prompts is system
    assert model._client is None  # nothing made until the first call


# --------------------------------------------------------------------------- streaming


@pytest.fixture
def chat(retry: RetryPolicy) -> Iterator[tuple[BedrockChatModel, HttpReplay]]:
    client = runtime_client()
    replay = HttpReplay().attach(client, "ConverseStream")
    yield BedrockChatModel(CLAUDE, client=client, retry=retry), replay
    replay.assert_done()


def test_stream_yields_text_deltas_then_usage(chat: tuple[BedrockChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = chat
    replay.stream(*answer_events("Quarry is ", "a RAG platform", " [1]."))
    deltas = list(model.stream(QUESTION, max_tokens=64, temperature=0.0))
    assert deltas == [
        ChatDelta("Quarry is "),
        ChatDelta("a RAG platform"),
        ChatDelta(" [1]."),
        ChatDelta("", usage=Usage(prompt_tokens=21, completion_tokens=7)),
    ]
    [request] = replay.requests
    assert request["url"].endswith("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
    assert request["json"] == {
        "messages": [{"role": "user", "content": [{"text": "What is Quarry?"}]}],
        "system": [{"text": "Answer from the sources."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.0},
    }
    assert sleeps == []
    assert isinstance(model, ChatModel)


def test_non_text_deltas_are_not_answer_text(chat: tuple[BedrockChatModel, HttpReplay]) -> None:
    model, replay = chat
    replay.stream(
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"delta": {"reasoningContent": {"text": "thinking..."}}, "contentBlockIndex": 0}),
        event("contentBlockDelta", {"delta": {"text": "Answer."}, "contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "end_turn"}),
        event(
            "metadata", {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 1}}
        ),
    )
    assert "".join(delta.text for delta in model.stream(QUESTION)) == "Answer."


def test_throttled_call_is_retried_then_streams(chat: tuple[BedrockChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = chat
    replay.error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
    replay.error(503, "ServiceUnavailableException", "Bedrock is unable to process your request.")
    replay.stream(*answer_events("ok"))
    deltas = list(model.stream(QUESTION))
    assert [delta.text for delta in deltas] == ["ok", ""]
    assert len(replay.requests) == 3
    assert replay.requests[0]["json"] == replay.requests[2]["json"]
    assert sleeps == [0.25, 0.5]


def test_throttled_until_giving_up(chat: tuple[BedrockChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = chat
    for _ in range(3):
        replay.error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
    with pytest.raises(errors.Throttled) as raised:
        list(model.stream(QUESTION))
    assert CLAUDE in raised.value.message
    assert "after 3 attempts" in raised.value.message
    assert len(replay.requests) == 3
    assert sleeps == [0.25, 0.5]


def test_throttling_inside_the_stream_before_any_text_is_retried(
    chat: tuple[BedrockChatModel, HttpReplay], sleeps: Sleeps
) -> None:
    model, replay = chat
    replay.stream(event("messageStart", {"role": "assistant"}), exception_event("throttlingException", "slow down"))
    replay.stream(*answer_events("fine"))
    assert [delta.text for delta in model.stream(QUESTION)] == ["fine", ""]
    assert sleeps == [0.25]


def test_failure_after_text_is_not_retried(chat: tuple[BedrockChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = chat
    replay.stream(
        event("contentBlockDelta", {"delta": {"text": "partial"}, "contentBlockIndex": 0}),
        exception_event("modelStreamErrorException", "The model stream failed"),
    )
    received: list[str] = []
    with pytest.raises(errors.UpstreamError, match="ModelStreamErrorException: The model stream failed"):
        for delta in model.stream(QUESTION):
            received.append(delta.text)
    assert received == ["partial"]
    assert sleeps == []


def test_access_denied_names_the_model(chat: tuple[BedrockChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = chat
    replay.error(403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
    with pytest.raises(errors.ModelUnavailable) as raised:
        list(model.stream(QUESTION))
    assert CLAUDE in raised.value.message
    assert "Model access" in raised.value.message
    assert len(replay.requests) == 1
    assert sleeps == []


def test_unknown_model_id_is_unavailable(chat: tuple[BedrockChatModel, HttpReplay]) -> None:
    model, replay = chat
    replay.error(400, "ValidationException", "The provided model identifier is invalid.")
    with pytest.raises(errors.ModelUnavailable, match="model identifier is invalid"):
        list(model.stream(QUESTION))


def test_stopping_early_closes_the_connection(chat: tuple[BedrockChatModel, HttpReplay]) -> None:
    model, replay = chat
    replay.stream(*answer_events("one", "two", "three"))
    stream = model.stream(QUESTION)
    assert next(stream).text == "one"
    stream.close()  # type: ignore[attr-defined]
    assert replay.bodies[0].closed


def test_from_settings_and_lazy_client() -> None:
    settings = Settings(bedrock_chat_model_id="us.amazon.nova-pro-v1:0", aws_region="eu-west-1", llm_context_tokens=999)
    model = BedrockChatModel.from_settings(settings)
    assert model.name == "us.amazon.nova-pro-v1:0"
    assert model.context_tokens == 300_000
    assert model._client is None
    client = model._runtime()
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.service_model.service_name == "bedrock-runtime"
    assert model._runtime() is client


def test_no_model_configured() -> None:
    with pytest.raises(errors.ModelUnavailable, match="QUARRY_BEDROCK_CHAT_MODEL_ID"):
        BedrockChatModel("")


# --------------------------------------------------------------------------- embeddings


def embedding_body(vector: list[float]) -> dict[str, Any]:
    data = json.dumps({"embedding": vector, "inputTextTokenCount": 3, "embeddingsByType": {"float": vector}}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def invoke_params(text: str, *, dimensions: int = 256, normalize: bool = True) -> dict[str, Any]:
    return {
        "modelId": TITAN,
        "body": json.dumps({"inputText": text, "dimensions": dimensions, "normalize": normalize}),
        "contentType": "application/json",
        "accept": "application/json",
    }


@pytest.fixture
def stubbed_runtime() -> Iterator[tuple[Any, Stubber]]:
    client = runtime_client()
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def vector(seed: float, dimensions: int = 256) -> list[float]:
    return [round(seed + i / 1000, 6) for i in range(dimensions)]


def test_titan_embeddings_loop_over_texts(stubbed_runtime: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed_runtime
    embedder = BedrockEmbedder(TITAN, dimensions=256, client=client, retry=retry)
    stubber.add_response("invoke_model", embedding_body(vector(0.1)), invoke_params("first chunk"))
    stubber.add_response("invoke_model", embedding_body(vector(0.2)), invoke_params("second chunk"))
    stubber.add_response("invoke_model", embedding_body(vector(0.3)), invoke_params("a question?"))
    assert embedder.embed_documents(["first chunk", "second chunk"]) == [vector(0.1), vector(0.2)]
    assert embedder.embed_query("a question?") == vector(0.3)
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dimensions) == (TITAN, 256)


def test_titan_throttling_is_retried(stubbed_runtime: tuple[Any, Stubber], retry: RetryPolicy, sleeps: Sleeps) -> None:
    client, stubber = stubbed_runtime
    embedder = BedrockEmbedder(TITAN, dimensions=512, normalize=False, client=client, retry=retry)
    stubber.add_client_error("invoke_model", "ThrottlingException", "Too many tokens per minute", 429)
    stubber.add_client_error("invoke_model", "ModelNotReadyException", "Model is not ready", 429)
    stubber.add_response(
        "invoke_model", embedding_body(vector(0.5, 512)), invoke_params("text", dimensions=512, normalize=False)
    )
    assert embedder.embed_query("text") == vector(0.5, 512)
    assert sleeps == [0.25, 0.5]


def test_titan_throttled_until_giving_up(stubbed_runtime: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed_runtime
    embedder = BedrockEmbedder(TITAN, dimensions=256, client=client, retry=retry)
    for _ in range(3):
        stubber.add_client_error("invoke_model", "ThrottlingException", "Too many tokens per minute", 429)
    with pytest.raises(errors.Throttled, match=TITAN):
        embedder.embed_query("text")


def test_titan_not_enabled_is_unavailable(stubbed_runtime: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed_runtime
    embedder = BedrockEmbedder(TITAN, dimensions=256, client=client, retry=retry)
    stubber.add_client_error(
        "invoke_model", "AccessDeniedException", "You don't have access to the model with the specified model ID.", 403
    )
    with pytest.raises(errors.ModelUnavailable, match=r"amazon\.titan-embed-text-v2:0"):
        embedder.embed_query("text")


def test_titan_wrong_size_vector_is_an_upstream_error(stubbed_runtime: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_runtime
    embedder = BedrockEmbedder(TITAN, dimensions=256, client=client)
    stubber.add_response("invoke_model", embedding_body([0.1, 0.2]), invoke_params("text"))
    with pytest.raises(errors.UpstreamError, match="returned 2 values, expected 256"):
        embedder.embed_query("text")


def test_titan_v1_takes_no_dimensions(stubbed_runtime: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_runtime
    embedder = BedrockEmbedder("amazon.titan-embed-text-v1", client=client)
    assert embedder.dimensions == 1536
    params = {
        "modelId": "amazon.titan-embed-text-v1",
        "body": json.dumps({"inputText": "text"}),
        "contentType": "application/json",
        "accept": "application/json",
    }
    stubber.add_response("invoke_model", embedding_body(vector(0.0, 1536)), params)
    assert len(embedder.embed_query("text")) == 1536


def test_titan_bad_input() -> None:
    with pytest.raises(errors.InvalidInput, match="256, 512, 1024"):
        BedrockEmbedder(TITAN, dimensions=384)
    with pytest.raises(errors.InvalidInput, match="empty"):
        BedrockEmbedder(TITAN).embed_query("   ")


def test_embedder_from_settings() -> None:
    embedder = BedrockEmbedder.from_settings(Settings(bedrock_embedding_dimensions=512, aws_region="us-west-2"))
    assert (embedder.name, embedder.dimensions, embedder.normalize) == (TITAN, 512, True)
    assert embedder._runtime().meta.region_name == "us-west-2"


# --------------------------------------------------------------------------- rerank


@pytest.fixture
def stubbed_agent() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("bedrock-agent-runtime", region_name="us-west-2", config=client_config())
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def rerank_params(query: str, passages: list[str], *, token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "queries": [{"type": "TEXT", "textQuery": {"text": query}}],
        "sources": [
            {"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": passage}}}
            for passage in passages
        ],
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "modelConfiguration": {"modelArn": RERANK_ARN},
                "numberOfResults": len(passages),
            },
        },
    }
    if token:
        params["nextToken"] = token
    return params


PASSAGES = ["Paris is in France.", "Bananas are yellow.", "The Eiffel tower is in Paris."]


def test_rerank_scores_follow_the_input_order(stubbed_agent: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed_agent
    reranker = BedrockReranker("amazon.rerank-v1:0", region="us-west-2", client=client, retry=retry)
    # Bedrock answers best first; ``index`` points back into the request's sources.
    stubber.add_response(
        "rerank",
        {"results": [{"index": 2, "relevanceScore": 0.91}, {"index": 0, "relevanceScore": 0.55}]},
        rerank_params("Where is the Eiffel tower?", PASSAGES),
    )
    scores = reranker.score("Where is the Eiffel tower?", PASSAGES)
    assert scores == [0.55, 0.0, 0.91]
    assert isinstance(reranker, Reranker)


def test_rerank_follows_next_token(stubbed_agent: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed_agent
    reranker = BedrockReranker(RERANK_ARN, region="us-west-2", client=client, retry=retry)
    query = "Where is the Eiffel tower?"
    stubber.add_response(
        "rerank",
        {"results": [{"index": 2, "relevanceScore": 0.91}, {"index": 0, "relevanceScore": 0.55}], "nextToken": "p2"},
        rerank_params(query, PASSAGES),
    )
    stubber.add_response(
        "rerank", {"results": [{"index": 1, "relevanceScore": 0.01}]}, rerank_params(query, PASSAGES, token="p2")
    )
    assert reranker.score(query, PASSAGES) == [0.55, 0.01, 0.91]


def test_rerank_batches_of_at_most_1000_sources(stubbed_agent: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_agent
    reranker = BedrockReranker(RERANK_ARN, region="us-west-2", client=client)
    passages = [f"passage {i}" for i in range(1001)]
    stubber.add_response(
        "rerank",
        {"results": [{"index": i, "relevanceScore": i / 1000} for i in range(1000)]},
        rerank_params("q", passages[:1000]),
    )
    stubber.add_response(
        "rerank", {"results": [{"index": 0, "relevanceScore": 0.5}]}, rerank_params("q", passages[1000:])
    )
    scores = reranker.score("q", passages)
    assert len(scores) == 1001
    assert scores[999] == 0.999
    assert scores[1000] == 0.5


def test_rerank_throttled_then_succeeding(
    stubbed_agent: tuple[Any, Stubber], retry: RetryPolicy, sleeps: Sleeps
) -> None:
    client, stubber = stubbed_agent
    reranker = BedrockReranker(RERANK_ARN, region="us-west-2", client=client, retry=retry)
    stubber.add_client_error("rerank", "ThrottlingException", "Rate exceeded", 429)
    stubber.add_response("rerank", {"results": [{"index": 0, "relevanceScore": 0.7}]}, rerank_params("q", ["p"]))
    assert reranker.score("q", ["p"]) == [0.7]
    assert sleeps == [0.25]


def test_rerank_access_denied(stubbed_agent: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed_agent
    reranker = BedrockReranker(RERANK_ARN, region="us-west-2", client=client, retry=retry)
    stubber.add_client_error("rerank", "AccessDeniedException", "not authorized to perform bedrock:Rerank", 403)
    with pytest.raises(errors.ModelUnavailable, match=r"amazon\.rerank-v1:0"):
        reranker.score("q", ["p"])


def test_rerank_edge_cases(stubbed_agent: tuple[Any, Stubber]) -> None:
    client, _ = stubbed_agent
    reranker = BedrockReranker(RERANK_ARN, region="us-west-2", client=client)
    assert reranker.score("q", []) == []  # no call
    with pytest.raises(errors.InvalidInput):
        reranker.score(" ", ["p"])
    with pytest.raises(errors.ModelUnavailable, match="QUARRY_BEDROCK_RERANK_MODEL_ARN"):
        BedrockReranker.from_settings(Settings(bedrock_rerank_model_arn=""))
    assert BedrockReranker("amazon.rerank-v1:0", region="cn-north-1")._model_arn.startswith("arn:aws-cn:")
