"""Amazon Bedrock adapters: Converse streaming chat, Titan text embeddings, and rerank.

boto3 is used directly rather than langchain-aws: the ChatModel port wants exactly the
Converse event stream (text deltas, then the ``metadata`` event's token usage), typed errors
from one retry/error policy (``aws_errors``), and a client that can be injected in tests.

Clients are injected or made lazily on first use; nothing talks to AWS at import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from quarry import errors
from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import AwsTarget, RetryPolicy, call_with_retry, client_config, stream_with_retry
from quarry.adapters.chat_checks import check_chat_request
from quarry.models import Role, Usage
from quarry.ports import ChatDelta, ChatTurn

if TYPE_CHECKING:
    from quarry.settings import Settings

__all__ = [
    "BedrockChatModel",
    "BedrockEmbedder",
    "BedrockReranker",
    "base_model_id",
    "converse_request",
    "deltas_from_events",
]

_ACCESS_HINT = (
    "Enable the model under Bedrock > Model access in this region, give the role bedrock:InvokeModel* on it, "
    "or configure another model id."
)
_GEO_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")

# Families whose Converse support has no system prompt: the system text goes into the first user turn.
_NO_SYSTEM_PROMPT = (
    "amazon.titan-text",
    "mistral.mistral-7b-instruct",
    "mistral.mixtral-8x7b-instruct",
    "cohere.command-text",
    "cohere.command-light-text",
    "ai21.j2",
)
# Context windows by family prefix (first match wins); anything else uses the configured default.
_CONTEXT_TOKENS: tuple[tuple[str, int], ...] = (
    ("anthropic.claude-v2", 100_000),
    ("anthropic.claude-instant", 100_000),
    ("anthropic.claude", 200_000),
    ("amazon.nova-micro", 128_000),
    ("amazon.nova", 300_000),
    ("amazon.titan-text", 8_192),
    ("meta.llama3-1", 128_000),
    ("meta.llama3-2", 128_000),
    ("meta.llama3-3", 128_000),
    ("meta.llama4", 128_000),
    ("meta.llama3", 8_192),
    ("mistral.mistral-large-2407", 128_000),
    ("mistral.mistral-large", 32_000),
    ("mistral.mistral-small", 32_000),
    ("mistral.mixtral", 32_000),
    ("mistral.mistral-7b", 32_000),
)

TITAN_V2_DIMENSIONS = (256, 512, 1024)
_TITAN_MAX_CHARS = 50_000  # Titan Text Embeddings v2 input limit (characters)
_RERANK_MAX_SOURCES = 1000  # Rerank API: at most 1000 sources per call
_RERANK_MAX_CHARS = 32_000  # Rerank API: at most 32 000 characters per text
_MAX_PAGES = 100


def base_model_id(model_id: str) -> str:
    """``us.anthropic.claude-...`` or an inference-profile / foundation-model ARN -> ``anthropic.claude-...``."""
    bare = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    for prefix in _GEO_PREFIXES:
        if bare.startswith(prefix):
            return bare[len(prefix) :]
    return bare


def _supports_system_prompt(model_id: str) -> bool:
    return not base_model_id(model_id).startswith(_NO_SYSTEM_PROMPT)


def _context_tokens(model_id: str, default: int) -> int:
    base = base_model_id(model_id)
    return next((tokens for prefix, tokens in _CONTEXT_TOKENS if base.startswith(prefix)), default)


# --------------------------------------------------------------------------- chat


def _conversation(turns: Sequence[ChatTurn]) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts, and user/assistant messages in Converse shape with same-role runs merged."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for turn in turns:
        text = turn.content.strip()
        if not text:
            continue  # Converse rejects blank text blocks
        if turn.role is Role.SYSTEM:
            system.append(text)
        elif not messages and turn.role is Role.ASSISTANT:
            continue  # history cut mid-exchange: Converse must start with the user
        elif messages and messages[-1]["role"] == turn.role.value:
            messages[-1]["content"].append({"text": text})
        else:
            messages.append({"role": turn.role.value, "content": [{"text": text}]})
    return system, messages


def converse_request(
    model_id: str,
    turns: Sequence[ChatTurn],
    *,
    max_tokens: int,
    temperature: float,
    system_prompts: bool = True,
) -> dict[str, Any]:
    """The keyword arguments of ``bedrock-runtime.converse_stream`` for ``turns``."""
    check_chat_request(turns, max_tokens=max_tokens, temperature=temperature, max_temperature=1.0)
    system, messages = _conversation(turns)  # not empty: some user turn has text
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": messages,
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
    }
    if system and system_prompts:
        request["system"] = [{"text": text} for text in system]
    elif system:
        messages[0]["content"].insert(0, {"text": "\n\n".join(system)})
    return request


def deltas_from_events(events: Iterable[Mapping[str, Any]]) -> Iterator[ChatDelta]:
    """Text deltas of a Converse stream, then one empty delta carrying the ``metadata`` usage."""
    usage = Usage()
    for event in events:
        if "contentBlockDelta" in event:
            text = event["contentBlockDelta"].get("delta", {}).get("text")
            if text:  # tool-use and reasoning deltas are not answer text
                yield ChatDelta(text=text)
        elif "metadata" in event:
            counts = event["metadata"].get("usage", {})
            usage = Usage(
                prompt_tokens=int(counts.get("inputTokens", 0)),
                completion_tokens=int(counts.get("outputTokens", 0)),
            )
    yield ChatDelta(text="", usage=usage)


class BedrockChatModel:
    """``ports.ChatModel`` over the Converse streaming API (Claude, Llama, Mistral, Nova, Titan ids)."""

    def __init__(
        self,
        model_id: str,
        *,
        client: Any | None = None,
        region: str | None = None,
        context_tokens: int | None = None,
        default_context_tokens: int = 8_192,
        system_prompts: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not model_id:
            raise errors.ModelUnavailable("no Bedrock chat model id configured (QUARRY_BEDROCK_CHAT_MODEL_ID)")
        self.name = model_id
        self.context_tokens = context_tokens or _context_tokens(model_id, default_context_tokens)
        self._client = client
        self._region = region
        self._system_prompts = _supports_system_prompt(model_id) if system_prompts is None else system_prompts
        self._retry = retry or RetryPolicy()
        self._target = AwsTarget("Bedrock model", model_id, _ACCESS_HINT)

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any | None = None) -> BedrockChatModel:
        return cls(
            settings.bedrock_chat_model_id,
            client=client,
            region=settings.aws_region,
            default_context_tokens=settings.llm_context_tokens,
        )

    def _runtime(self) -> Any:
        if self._client is None:
            config = client_config(read_timeout=300.0)
            self._client = LazyClient("bedrock-runtime", region=self._region, config=config)()
        return self._client

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        request = converse_request(
            self.name, turns, max_tokens=max_tokens, temperature=temperature, system_prompts=self._system_prompts
        )

        def open_stream() -> Iterator[ChatDelta]:
            events = self._runtime().converse_stream(**request)["stream"]
            try:
                yield from deltas_from_events(events)
            finally:
                events.close()

        return stream_with_retry(open_stream, self._target, self._retry)


# --------------------------------------------------------------------------- embeddings


def titan_request(text: str, *, model_id: str, dimensions: int, normalize: bool) -> dict[str, Any]:
    """The ``invoke_model`` body for one text (v1 takes no dimensions / normalize)."""
    body: dict[str, Any] = {"inputText": text[:_TITAN_MAX_CHARS]}
    if "titan-embed-text-v1" not in model_id:
        body["dimensions"] = dimensions
        body["normalize"] = normalize
    return body


class BedrockEmbedder:
    """``ports.Embedder`` for Titan Text Embeddings (v2: 256/512/1024 dimensions; v1: 1536).

    Titan embeds one text per call, so a batch is a loop of ``invoke_model`` calls, each with
    the shared retry policy.
    """

    def __init__(
        self,
        model_id: str = "amazon.titan-embed-text-v2:0",
        *,
        dimensions: int = 1024,
        normalize: bool = True,
        client: Any | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if "titan-embed-text-v1" in model_id:
            dimensions = 1536
        elif dimensions not in TITAN_V2_DIMENSIONS:
            raise errors.InvalidInput(
                f"Titan Text Embeddings v2 supports {TITAN_V2_DIMENSIONS} dimensions, not {dimensions}"
            )
        self.name = model_id
        self.dimensions = dimensions
        self.normalize = normalize
        self._client = client
        self._region = region
        self._retry = retry or RetryPolicy()
        self._target = AwsTarget("Bedrock model", model_id, _ACCESS_HINT)

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any | None = None) -> BedrockEmbedder:
        return cls(
            settings.bedrock_embedding_model_id,
            dimensions=settings.bedrock_embedding_dimensions,
            client=client,
            region=settings.aws_region,
        )

    def _runtime(self) -> Any:
        if self._client is None:
            self._client = LazyClient("bedrock-runtime", region=self._region, config=client_config())()
        return self._client

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)

    def _embed(self, text: str) -> list[float]:
        if not text.strip():
            raise errors.InvalidInput("cannot embed an empty text")
        body = json.dumps(titan_request(text, model_id=self.name, dimensions=self.dimensions, normalize=self.normalize))

        def invoke() -> Any:
            response = self._runtime().invoke_model(
                modelId=self.name, body=body, contentType="application/json", accept="application/json"
            )
            return json.loads(response["body"].read())

        payload = call_with_retry(invoke, self._target, self._retry)
        vector = payload.get("embedding") if isinstance(payload, dict) else None
        if not isinstance(vector, list) or len(vector) != self.dimensions:
            got = len(vector) if isinstance(vector, list) else type(vector).__name__
            raise errors.UpstreamError(f"Bedrock model {self.name!r} returned {got} values, expected {self.dimensions}")
        return [float(value) for value in vector]


# --------------------------------------------------------------------------- rerank


def rerank_model_arn(model: str, region: str) -> str:
    """A foundation-model ARN for ``amazon.rerank-v1:0`` style ids; ARNs pass through."""
    if model.startswith("arn:"):
        return model
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:bedrock:{region}::foundation-model/{model}"


def rerank_request(query: str, passages: Sequence[str], *, model_arn: str) -> dict[str, Any]:
    """The keyword arguments of ``bedrock-agent-runtime.rerank`` for one batch of passages."""
    return {
        "queries": [{"type": "TEXT", "textQuery": {"text": query[:_RERANK_MAX_CHARS]}}],
        "sources": [
            {
                "type": "INLINE",
                "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": passage[:_RERANK_MAX_CHARS] or " "}},
            }
            for passage in passages
        ],
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "modelConfiguration": {"modelArn": model_arn},
                "numberOfResults": len(passages),
            },
        },
    }


class BedrockReranker:
    """``ports.Reranker`` over the bedrock-agent-runtime ``Rerank`` API (Amazon Rerank, Cohere Rerank)."""

    def __init__(
        self,
        model: str,
        *,
        region: str,
        client: Any | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not model:
            raise errors.ModelUnavailable("no Bedrock rerank model configured (QUARRY_BEDROCK_RERANK_MODEL_ARN)")
        self.name = model
        self._model_arn = rerank_model_arn(model, region)
        self._region = region
        self._client = client
        self._retry = retry or RetryPolicy()
        self._target = AwsTarget("Bedrock rerank model", self._model_arn, _ACCESS_HINT)

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any | None = None) -> BedrockReranker:
        return cls(settings.bedrock_rerank_model_arn, region=settings.aws_region, client=client)

    def _agent_runtime(self) -> Any:
        if self._client is None:
            self._client = LazyClient("bedrock-agent-runtime", region=self._region, config=client_config())()
        return self._client

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not query.strip():
            raise errors.InvalidInput("cannot rerank for an empty query")
        scores = [0.0] * len(passages)
        for start in range(0, len(passages), _RERANK_MAX_SOURCES):
            batch = passages[start : start + _RERANK_MAX_SOURCES]
            for index, score in self._score_batch(query, batch):
                if 0 <= index < len(batch):
                    scores[start + index] = score
        return scores

    def _score_batch(self, query: str, batch: Sequence[str]) -> Iterator[tuple[int, float]]:
        request = rerank_request(query, batch, model_arn=self._model_arn)
        for _ in range(_MAX_PAGES):
            page = call_with_retry(partial(self._rerank, request), self._target, self._retry)
            for result in page.get("results", []):
                yield int(result["index"]), float(result["relevanceScore"])
            token = page.get("nextToken")
            if not token:
                return
            request = {**request, "nextToken": token}
        raise errors.UpstreamError(f"Bedrock rerank for {self._model_arn!r} returned more than {_MAX_PAGES} pages")

    def _rerank(self, request: dict[str, Any]) -> Any:
        return self._agent_runtime().rerank(**request)
