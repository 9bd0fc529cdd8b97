"""In-process stand-ins for the model services, answered at botocore's HTTP layer.

The model contracts (``tests/contracts``) ask an adapter for any text, so a queue of canned answers
(``Stubber``, ``HttpReplay``) cannot answer them. These emulators answer any request the way the service
does on the wire, with a stand-in model behind it whose output depends on its input alone:

* ``BedrockRuntime``: ``InvokeModel`` (Titan Text Embeddings) and ``ConverseStream`` (event stream),
* ``BedrockAgentRuntime``: ``Rerank``,
* ``SageMakerRuntime``: ``InvokeEndpoint`` through the endpoint's real handlers
  (``sagemaker_models/inference.py``: validation, limits, ``.npy`` answers) over stand-in models, and
  ``InvokeEndpointWithResponseStream`` as a TGI container streams (Messages API or generate API).

Each refuses what its service refuses that the adapters must avoid (too many or too long texts, roles
out of turn, a bad ``maxTokens``), honours the generation limit it is sent, and records every response
body so a test can see whether the adapter closed its stream. ``fail_with`` makes every call answer one
error. The stand-in models rank nothing meaningfully: a contract test of relevance needs a real model.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import random
import re
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import unquote, urlparse

import boto3
import numpy as np
from botocore.awsrequest import AWSResponse

from quarry.adapters.aws_errors import client_config
from sagemaker_models import inference

from .botocore_replay import event, json_error

__all__ = [
    "BedrockAgentRuntime",
    "BedrockRuntime",
    "SageMakerRuntime",
    "WireBody",
    "pseudo_score",
    "pseudo_vector",
]

REGION = "us-east-1"
TITAN_MAX_CHARS = 50_000  # Titan Text Embeddings v2 refuses longer input
RERANK_MAX_SOURCES = 1000
RERANK_MAX_CHARS = 32_000
STAND_IN_EMBEDDER = "stand-in-embedder"
STAND_IN_RERANKER = "stand-in-reranker"

Handler = Callable[[Any], AWSResponse]


# --------------------------------------------------------------------------- stand-in models


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()


def pseudo_vector(text: str, dimensions: int, *, normalize: bool = True) -> list[float]:
    """A vector that depends on the text alone, as a model's does: one text, one vector."""
    rng = random.Random(_digest(text))
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    if not normalize:
        return values
    norm = math.sqrt(sum(value * value for value in values))
    return [value / norm for value in values]


def pseudo_score(query: str, passage: str) -> float:
    """A relevance score in [0, 1) that depends on the pair alone."""
    return int.from_bytes(_digest(query, passage)[:8], "big") / 2**64


def answer_tokens(question: str) -> list[str]:
    """The stand-in chat model's answer to ``question``, one token a word, long enough for any test's limit."""
    words = (
        f"This is the emulated answer to '{question}', and it runs on for thirty words or so, "
        "so that any small max tokens limit a test sets cuts it well before its natural end."
    ).split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


class StandInEncoder:
    """What the endpoint's handlers call on a sentence-transformers model: ``encode``."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions

    def encode(self, texts: list[str], *, normalize_embeddings: bool = True, **_: Any) -> np.ndarray:
        rows = [pseudo_vector(text, self.dimensions, normalize=normalize_embeddings) for text in texts]
        return np.array(rows, dtype=np.float32).reshape(len(texts), self.dimensions)


class StandInCrossEncoder:
    """What the endpoint's handlers call on a CrossEncoder: ``predict``."""

    def predict(self, pairs: list[tuple[str, str]], **_: Any) -> np.ndarray:
        return np.array([pseudo_score(query, passage) for query, passage in pairs], dtype=np.float32)


# --------------------------------------------------------------------------- the wire


class WireBody(io.BytesIO):
    """A response body as urllib3 hands it to botocore: ``read`` for blobs, ``stream`` in small chunks."""

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        while chunk := self.read(7):
            yield chunk


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name, b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def _json_body(request: Any) -> Any:
    body = request.body or b"{}"
    return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)


class _Emulator:
    """Answers some operations of one client at the HTTP layer and keeps every response body."""

    def __init__(self, service: str, region: str = REGION) -> None:
        self.client: Any = boto3.client(service, region_name=region, config=client_config())
        self.bodies: list[WireBody] = []
        self.stream_bodies: list[WireBody] = []
        self.calls: dict[str, int] = {}
        self._failure: tuple[int, dict[str, str], bytes] | None = None

    def fail_with(self, status: int, code: str, message: str) -> None:
        """From now on every call answers this error, as the service does for a missing or denied model."""
        self._failure = json_error(status, code, message)

    def open_streams(self) -> int:
        """Streamed responses the client has not closed yet."""
        return sum(not body.closed for body in self.stream_bodies)

    def _serve(self, operation: str, handler: Handler) -> None:
        service = self.client.meta.service_model.service_id.hyphenize()

        def send(request: Any, **_: Any) -> AWSResponse:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            if self._failure is not None:
                status, headers, data = self._failure
                return self._respond(request, status, headers, data)
            return handler(request)

        self.client.meta.events.register(f"before-send.{service}.{operation}", send)

    def _respond(self, request: Any, status: int, headers: dict[str, str], data: bytes) -> AWSResponse:
        body = WireBody(data)
        self.bodies.append(body)
        if headers.get("content-type") == "application/vnd.amazon.eventstream":
            self.stream_bodies.append(body)
        headers = {**headers, "content-length": str(len(data)), "x-amzn-requestid": "emulated"}
        return AWSResponse(request.url, status, cast(Any, headers), body)

    def _json(self, request: Any, payload: Any, status: int = 200) -> AWSResponse:
        return self._respond(request, status, {"content-type": "application/json"}, json.dumps(payload).encode())

    def _invalid(self, request: Any, message: str) -> AWSResponse:
        return self._respond(request, *json_error(400, "ValidationException", message))

    def _events(self, request: Any, messages: list[bytes]) -> AWSResponse:
        return self._respond(request, 200, {"content-type": "application/vnd.amazon.eventstream"}, b"".join(messages))


def _model_id(request: Any) -> str:
    """``/model/{modelId}/invoke`` -> the model id."""
    return unquote(urlparse(request.url).path.split("/")[2])


# --------------------------------------------------------------------------- Bedrock


class BedrockRuntime(_Emulator):
    """``bedrock-runtime``: Titan Text Embeddings through ``InvokeModel``, any chat model through ``ConverseStream``."""

    def __init__(self) -> None:
        super().__init__("bedrock-runtime")
        self._serve("InvokeModel", self._invoke_model)
        self._serve("ConverseStream", self._converse_stream)

    def _invoke_model(self, request: Any) -> AWSResponse:
        model_id, body = _model_id(request), _json_body(request)
        text = body.get("inputText")
        if not isinstance(text, str) or not text.strip():
            return self._invalid(request, "Malformed input request: inputText must not be blank")
        if len(text) > TITAN_MAX_CHARS:
            return self._invalid(request, f"Malformed input request: expected maxLength: {TITAN_MAX_CHARS}")
        if "titan-embed-text-v1" in model_id:
            dimensions, normalize = 1536, False
        else:
            dimensions, normalize = int(body.get("dimensions", 1024)), bool(body.get("normalize", True))
            if dimensions not in (256, 512, 1024):
                return self._invalid(request, f"Malformed input request: dimensions {dimensions} is not allowed")
        vector = pseudo_vector(text, dimensions, normalize=normalize)
        return self._json(request, {"embedding": vector, "inputTextTokenCount": len(text.split())})

    def _converse_stream(self, request: Any) -> AWSResponse:
        body = _json_body(request)
        messages = body.get("messages") or []
        problem = _converse_problem(messages, body.get("inferenceConfig") or {})
        if problem:
            return self._invalid(request, problem)
        question = messages[-1]["content"][-1]["text"]
        limit = int((body.get("inferenceConfig") or {}).get("maxTokens", 4096))
        tokens = answer_tokens(question)
        said = tokens[:limit]
        prompt = [block["text"] for block in body.get("system") or []]
        prompt += [block["text"] for message in messages for block in message["content"]]
        input_tokens = sum(len(text.split()) for text in prompt)
        frames = [event("messageStart", {"role": "assistant"})]
        frames += [event("contentBlockDelta", {"delta": {"text": token}, "contentBlockIndex": 0}) for token in said]
        frames += [
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "max_tokens" if len(said) < len(tokens) else "end_turn"}),
            event(
                "metadata",
                {
                    "usage": {
                        "inputTokens": input_tokens,
                        "outputTokens": len(said),
                        "totalTokens": input_tokens + len(said),
                    },
                    "metrics": {"latencyMs": 1},
                },
            ),
        ]
        return self._events(request, frames)


def _converse_problem(messages: list[dict[str, Any]], config: dict[str, Any]) -> str | None:
    """What Converse would refuse in these messages and inference settings (None: nothing)."""
    if not messages or messages[0].get("role") != "user":
        return "A conversation must start with a user message."
    for previous, current in itertools.pairwise(messages):
        if previous.get("role") == current.get("role"):
            return "A conversation must alternate between user and assistant roles."
    for message in messages:
        if not message.get("content") or any(not str(block.get("text", "")).strip() for block in message["content"]):
            return "The text field in the ContentBlock object is blank. Add text to the text field, and try again."
    if "maxTokens" in config and int(config["maxTokens"]) < 1:
        return "1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy constraint"
    if "temperature" in config and not 0.0 <= float(config["temperature"]) <= 1.0:
        return "1 validation error detected: Value at 'inferenceConfig.temperature' failed to satisfy constraint"
    return None


class BedrockAgentRuntime(_Emulator):
    """``bedrock-agent-runtime``: ``Rerank``, results best first as the service sends them."""

    def __init__(self, region: str = REGION) -> None:
        super().__init__("bedrock-agent-runtime", region)
        self._serve("Rerank", self._rerank)

    def _rerank(self, request: Any) -> AWSResponse:
        body = _json_body(request)
        query = body["queries"][0]["textQuery"]["text"]
        texts = [source["inlineDocumentSource"]["textDocument"]["text"] for source in body["sources"]]
        wanted = body["rerankingConfiguration"]["bedrockRerankingConfiguration"].get("numberOfResults", len(texts))
        if not 1 <= len(texts) <= RERANK_MAX_SOURCES:
            return self._invalid(request, f"sources must hold 1 to {RERANK_MAX_SOURCES} documents")
        if any(not text or len(text) > RERANK_MAX_CHARS for text in [query, *texts]):
            return self._invalid(request, f"every text must hold 1 to {RERANK_MAX_CHARS} characters")
        if not 1 <= wanted <= len(texts):
            return self._invalid(request, "numberOfResults must be between 1 and the number of sources")
        scored = sorted(
            ({"index": index, "relevanceScore": pseudo_score(query, text)} for index, text in enumerate(texts)),
            key=lambda result: -cast(float, result["relevanceScore"]),
        )
        return self._json(request, {"results": scored[:wanted]})


# --------------------------------------------------------------------------- SageMaker


class SageMakerRuntime(_Emulator):
    """``sagemaker-runtime``: the embeddings + cross-encoder endpoint through its real handlers, and a
    TGI container's token stream."""

    def __init__(self, *, dimensions: int = 384) -> None:
        super().__init__("sagemaker-runtime")
        embedder = inference.ModelSpec(STAND_IN_EMBEDDER, inference.EMBEDDINGS, "unused")
        reranker = inference.ModelSpec(STAND_IN_RERANKER, inference.CROSS_ENCODER, "unused")
        self.registry = inference.Registry(
            {
                embedder.name: inference.LoadedModel(embedder, StandInEncoder(dimensions), dimensions),
                reranker.name: inference.LoadedModel(reranker, StandInCrossEncoder()),
            }
        )
        self._serve("InvokeEndpoint", self._invoke_endpoint)
        self._serve("InvokeEndpointWithResponseStream", self._invoke_stream)

    def _invoke_endpoint(self, request: Any) -> AWSResponse:
        """As the Hugging Face inference toolkit runs the handlers; their refusals come back as SageMaker's
        424 ModelError carrying the container's message."""
        accept = _header(request, "Accept")
        accept = inference.JSON if accept in ("", "*/*") else accept
        try:
            parsed = inference.input_fn(request.body, _header(request, "Content-Type"))
            data = inference.output_fn(inference.predict_fn(parsed, self.registry), accept)
        except inference.RequestError as exc:
            return self._model_error(request, str(exc))
        return self._respond(request, 200, {"content-type": accept}, data)

    def _model_error(self, request: Any, message: str) -> AWSResponse:
        error = {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "Message": "Received client error (400) from primary with message ...",
            "OriginalStatusCode": 400,
            "OriginalMessage": message,
        }
        headers = {"x-amzn-ErrorType": "ModelError:http://internal.amazon.com/", "content-type": "application/json"}
        return self._respond(request, 424, headers, json.dumps(error).encode())

    def _invoke_stream(self, request: Any) -> AWSResponse:
        body = _json_body(request)
        lines = self._messages_api(body) if "messages" in body else self._generate_api(body)
        if isinstance(lines, str):
            return self._model_error(request, lines)
        data = b"".join(b"data:" + json.dumps(line).encode() + b"\n\n" for line in lines) + b"data: [DONE]\n\n"
        # 13-byte parts: JSON lines and multi-byte characters end up split across PayloadPart events
        parts = [event("PayloadPart", data[start : start + 13]) for start in range(0, len(data), 13)]
        return self._events(request, parts)

    def _messages_api(self, body: dict[str, Any]) -> list[dict[str, Any]] | str:
        """A TGI Messages API stream: chat-completion chunks, then the usage chunk when asked for."""
        messages, limit = body["messages"], int(body.get("max_tokens", 4096))
        if limit < 1 or not any(message["role"] == "user" for message in messages):
            return "Input validation error: `max_tokens` must be strictly positive and a user message is needed"
        question = [message["content"] for message in messages if message["role"] == "user"][-1]
        tokens = answer_tokens(question)
        said = tokens[:limit]
        lines: list[dict[str, Any]] = [_chat_chunk({"role": "assistant", "content": token}, None) for token in said]
        lines.append(_chat_chunk({}, "length" if len(said) < len(tokens) else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = sum(len(str(message["content"]).split()) for message in messages)
            usage = {"prompt_tokens": prompt, "completion_tokens": len(said), "total_tokens": prompt + len(said)}
            lines.append({"object": "chat.completion.chunk", "choices": [], "usage": usage})
        return lines

    def _generate_api(self, body: dict[str, Any]) -> list[dict[str, Any]] | str:
        """A TGI generate stream: one line per token (the last one special when the answer ends by itself),
        the last line with the whole text and the details."""
        parameters = body.get("parameters") or {}
        limit = int(parameters.get("max_new_tokens", 4096))
        if limit < 1:
            return "Input validation error: `max_new_tokens` must be strictly positive"
        users = re.findall(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", str(body.get("inputs", "")), flags=re.DOTALL)
        if not users:
            return "Input validation error: the prompt holds no user turn"
        tokens = answer_tokens(users[-1])
        said = [{"id": i, "text": token, "logprob": -0.1, "special": False} for i, token in enumerate(tokens[:limit])]
        if len(said) < limit:
            said.append({"id": len(said), "text": "<|im_end|>", "logprob": 0.0, "special": True})
        lines: list[dict[str, Any]] = [{"token": token, "generated_text": None, "details": None} for token in said]
        finish = "eos_token" if said[-1]["special"] else "length"
        lines[-1]["generated_text"] = "".join(str(token["text"]) for token in said if not token["special"])
        lines[-1]["details"] = {"finish_reason": finish, "generated_tokens": len(said), "seed": None}
        return lines


def _chat_chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "id": "",
        "created": 1,
        "model": "stand-in",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }
