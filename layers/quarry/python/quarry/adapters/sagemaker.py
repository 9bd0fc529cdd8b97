"""SageMaker real-time endpoint adapters.

* ``SageMakerEmbedder`` and ``SageMakerReranker`` call ONE endpoint that serves both kinds of
  model (the code in ``sagemaker_models/inference.py``). Requests are JSON::

      {"type": "embeddings",    "model": NAME, "input": ["text", ...]}
      {"type": "cross-encoder", "model": NAME, "input": ["query"], "passages": ["p1", ...]}
      {"type": "info"}

  and answers ``{"embeddings": [[...], ...]}``, ``{"scores": [...]}``, ``{"models": [...]}``.
  ``model`` may be omitted when the endpoint serves one model of that type. A text past the
  endpoint's 100,000 characters is sent as its first 100,000 (the model reads far fewer tokens).

  ``SageMakerEmbedder`` asks for embeddings as ``application/x-npy`` (one little-endian float32
  matrix: a quarter of the JSON bytes, no float formatting on the endpoint) and decodes it with
  the standard library (``float32_rows``), so the Lambda path imports no numpy for it. It batches
  under the endpoint's per-request limit for that encoding (``max_inputs`` in the ``info``
  answer: the endpoint's answers must stay under SageMaker's 6 MB), asked once, only when more
  than one text is embedded. An endpoint still running the older JSON-only code is answered
  in JSON from then on.

* ``SageMakerChatModel`` streams from an LLM endpoint (Hugging Face TGI or LMI/DJL) with
  ``invoke_endpoint_with_response_stream``. The byte stream is newline-delimited JSON, plain
  or framed as server-sent events (``data: {...}``), and one JSON line may be split across
  several ``PayloadPart`` events: ``JsonLineDecoder`` reassembles them. Both the Messages API
  (OpenAI chat-completion chunks) and the TGI/LMI generate stream (``{"token": ...}``) are read.

Retries and error mapping are those of every AWS model call (``aws_errors``).
"""

from __future__ import annotations

import ast
import json
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from quarry import errors
from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import AwsTarget, RetryPolicy, call_with_retry, client_config, stream_with_retry
from quarry.adapters.chat_checks import check_chat_request
from quarry.models import Usage
from quarry.ports import ChatDelta, ChatTurn

if TYPE_CHECKING:
    from quarry.settings import Settings

__all__ = [
    "JsonLineDecoder",
    "SageMakerChatModel",
    "SageMakerEmbedder",
    "SageMakerReranker",
    "chatml_prompt",
    "deltas_from_payloads",
    "float32_rows",
]

JSON = "application/json"
NPY = "application/x-npy"
_NPY_MAGIC = b"\x93NUMPY"
_JSON_ONLY = "answers application/json"  # what an endpoint with the JSON-only inference code says to NPY
# The endpoint refuses longer texts (``MAX_TEXT_CHARS`` in sagemaker_models/inference.py); its models read
# a few hundred tokens of each anyway, so the adapters send the head of a longer text, as Bedrock's do.
_MAX_TEXT_CHARS = 100_000

_ENDPOINT_HINT = (
    "Check the endpoint name and region, that it is InService, and that the role may sagemaker:InvokeEndpoint."
)


class _Endpoint:
    """JSON request/response calls to one real-time endpoint, with the shared retry policy."""

    def __init__(self, name: str, *, client: Any | None, region: str | None, retry: RetryPolicy | None) -> None:
        if not name:
            raise errors.ModelUnavailable("no SageMaker endpoint configured")
        self.name = name
        self.target = AwsTarget("SageMaker endpoint", name, _ENDPOINT_HINT)
        self.retry = retry or RetryPolicy()
        self._client = client
        self._region = region

    def client(self) -> Any:
        if self._client is None:
            config = client_config(read_timeout=120.0)
            self._client = LazyClient("sagemaker-runtime", region=self._region, config=config)()
        return self._client

    def invoke_json(self, payload: Mapping[str, Any]) -> Any:
        return self.parse_json(self.invoke(payload, accept=JSON))

    def invoke(self, payload: Mapping[str, Any], *, accept: str) -> bytes:
        body = json.dumps(payload)
        return call_with_retry(partial(self._invoke, body, accept), self.target, self.retry)

    def parse_json(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise errors.UpstreamError(f"SageMaker endpoint {self.name!r} answered with invalid JSON") from exc

    def _invoke(self, body: str, accept: str) -> bytes:
        response = self.client().invoke_endpoint(EndpointName=self.name, Body=body, ContentType=JSON, Accept=accept)
        data: bytes = response["Body"].read()
        return data


def _field(payload: Any, key: str, endpoint: str) -> Any:
    if not isinstance(payload, dict) or key not in payload:
        raise errors.UpstreamError(f"SageMaker endpoint {endpoint!r} answered without {key!r}")
    return payload[key]


# --------------------------------------------------------------------------- embeddings and rerank


def float32_rows(data: bytes) -> list[list[float]]:
    """The rows of a ``.npy`` file holding one C-ordered float32 matrix, read with the standard library."""
    if not data.startswith(_NPY_MAGIC) or len(data) < 10:
        raise ValueError("not a .npy file")
    major = data[6]
    if major == 1:
        (header_len,), start = struct.unpack_from("<H", data, 8), 10
    elif major in (2, 3):
        (header_len,), start = struct.unpack_from("<I", data, 8), 12
    else:
        raise ValueError(f"unknown .npy version {major}")
    try:
        header = ast.literal_eval(data[start : start + header_len].decode("utf-8" if major == 3 else "latin-1"))
    except (ValueError, SyntaxError, UnicodeDecodeError) as exc:
        raise ValueError("unreadable .npy header") from exc
    if not isinstance(header, dict) or header.get("descr") not in ("<f4", ">f4") or header.get("fortran_order"):
        raise ValueError(f"expected a C-ordered float32 matrix, not {header!r}")
    shape = header.get("shape")
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ValueError(f"expected a matrix, not shape {shape!r}")
    rows, dimensions = shape
    values = array("f")
    if values.itemsize != 4:  # pragma: no cover - every CPython platform has a 4-byte C float
        raise ValueError("this platform's C float is not float32")
    payload = data[start + header_len :]
    if len(payload) != rows * dimensions * 4:
        raise ValueError(f"{len(payload)} bytes of data for a {rows}x{dimensions} float32 matrix")
    values.frombytes(payload)
    if (header["descr"] == "<f4") != (sys.byteorder == "little"):
        values.byteswap()
    return [values[row * dimensions : (row + 1) * dimensions].tolist() for row in range(rows)]


def embeddings_request(texts: Sequence[str], *, model: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"type": "embeddings", "input": [text[:_MAX_TEXT_CHARS] for text in texts]}
    if model:
        request["model"] = model
    return request


def cross_encoder_request(query: str, passages: Sequence[str], *, model: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "type": "cross-encoder",
        "input": [query[:_MAX_TEXT_CHARS]],
        "passages": [passage[:_MAX_TEXT_CHARS] for passage in passages],
    }
    if model:
        request["model"] = model
    return request


class SageMakerEmbedder:
    """``ports.Embedder`` on the shared embeddings + cross-encoder endpoint.

    ``dimensions`` is asked of the endpoint (an ``info`` request) the first time it is read,
    unless given or already learnt from an answer; the same request gives the most texts per
    request the endpoint answers (``max_inputs``), asked before the first multi-text batch.
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        model: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 32,
        client: Any | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if batch_size < 1:
            raise errors.InvalidInput("batch_size must be at least 1")
        self._endpoint = _Endpoint(endpoint_name, client=client, region=region, retry=retry)
        self.model = model
        self.name = model or endpoint_name
        self.batch_size = batch_size
        self._dimensions = dimensions
        self.accept = NPY
        self._max_inputs: dict[str, int] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any | None = None) -> SageMakerEmbedder:
        return cls(
            settings.sagemaker_embedding_endpoint,
            model=settings.embedding_model or None,
            batch_size=settings.embedding_batch_size,
            client=client,
            region=settings.aws_region,
        )

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = self._ask_dimensions()
        return self._dimensions

    @dimensions.setter
    def dimensions(self, value: int) -> None:
        self._dimensions = value

    def _ask_dimensions(self) -> int:
        return int(self._describe()["dimensions"])

    def _describe(self) -> dict[str, Any]:
        """This model's ``info`` entry; records its per-encoding request limits."""
        models = _field(self._endpoint.invoke_json({"type": "info"}), "models", self._endpoint.name)
        for entry in models if isinstance(models, list) else []:
            if entry.get("type") == "embeddings" and (self.model is None or entry.get("name") == self.model):
                limits = entry.get("max_inputs")
                # an endpoint with older inference code lists none: then only batch_size applies
                self._max_inputs = (
                    {str(kind): int(count) for kind, count in limits.items()} if isinstance(limits, dict) else {}
                )
                return dict(entry)
        raise errors.ModelUnavailable(
            f"SageMaker endpoint {self._endpoint.name!r} serves no embeddings model named {self.model!r}"
        )

    def max_batch(self) -> int:
        """Texts per request: ``batch_size``, lowered to what the endpoint answers in the encoding asked for."""
        if self._max_inputs is None:
            entry = self._describe()
            if self._dimensions is None:
                self._dimensions = int(entry["dimensions"])
        assert self._max_inputs is not None
        limit = self._max_inputs.get(self.accept)
        if limit is not None and limit < 1:
            raise errors.ModelUnavailable(
                f"SageMaker endpoint {self._endpoint.name!r} cannot answer even one embedding as {self.accept}"
            )
        return min(self.batch_size, limit) if limit is not None else self.batch_size

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if any(not text.strip() for text in texts):
            raise errors.InvalidInput("cannot embed an empty text")
        if len(texts) <= 1:
            return [self._embed_batch(texts)[0]] if texts else []
        size = self.max_batch()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), size):
            vectors.extend(self._embed_batch(texts[start : start + size]))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._embed_batch([text])[0]

    def _request(self, texts: Sequence[str]) -> bytes:
        payload = embeddings_request(texts, model=self.model)
        try:
            return self._endpoint.invoke(payload, accept=self.accept)
        except errors.UpstreamError as exc:
            if self.accept == JSON or _JSON_ONLY not in str(exc):
                raise
        self.accept = JSON  # the endpoint runs the older JSON-only inference code (e.g. mid-deployment)
        return self._endpoint.invoke(payload, accept=JSON)

    def _decode(self, raw: bytes) -> list[list[float]]:
        if raw.startswith(_NPY_MAGIC):
            try:
                return float32_rows(raw)
            except ValueError as exc:
                raise errors.UpstreamError(
                    f"SageMaker endpoint {self._endpoint.name!r} answered with an unreadable .npy: {exc}"
                ) from exc
        vectors = _field(self._endpoint.parse_json(raw), "embeddings", self._endpoint.name)
        if not isinstance(vectors, list):
            raise errors.UpstreamError(f"SageMaker endpoint {self._endpoint.name!r} answered embeddings not as a list")
        return [[float(value) for value in vector] for vector in vectors]

    def _embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        if any(not text.strip() for text in texts):
            raise errors.InvalidInput("cannot embed an empty text")
        result = self._decode(self._request(texts))
        if len(result) != len(texts):
            raise errors.UpstreamError(
                f"SageMaker endpoint {self._endpoint.name!r} returned {len(result)} embeddings for {len(texts)} texts"
            )
        if self._dimensions is None and result:
            self._dimensions = len(result[0])
        if any(len(vector) != self._dimensions for vector in result):
            raise errors.UpstreamError(
                f"SageMaker endpoint {self._endpoint.name!r} returned vectors not of {self._dimensions} dimensions"
            )
        return result


class SageMakerReranker:
    """``ports.Reranker`` on the shared endpoint's cross-encoder."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        model: str | None = None,
        batch_size: int = 64,
        client: Any | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._endpoint = _Endpoint(endpoint_name, client=client, region=region, retry=retry)
        self.model = model
        self.name = model or endpoint_name
        self.batch_size = max(1, batch_size)

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any | None = None) -> SageMakerReranker:
        # The endpoint names its models; a configured cross-encoder folder name selects one, else its only one.
        model = settings.cross_encoder_path.rstrip("/").rsplit("/", 1)[-1] or None
        return cls(settings.sagemaker_embedding_endpoint, model=model, client=client, region=settings.aws_region)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not query.strip():
            raise errors.InvalidInput("cannot rerank for an empty query")
        scores: list[float] = []
        for start in range(0, len(passages), self.batch_size):
            batch = passages[start : start + self.batch_size]
            answer = self._endpoint.invoke_json(cross_encoder_request(query, batch, model=self.model))
            values = _field(answer, "scores", self._endpoint.name)
            if not isinstance(values, list) or len(values) != len(batch):
                raise errors.UpstreamError(
                    f"SageMaker endpoint {self._endpoint.name!r} returned a score list that does not match the passages"
                )
            scores.extend(float(value) for value in values)
        return scores


# --------------------------------------------------------------------------- LLM token stream


class JsonLineDecoder:
    """Newline-delimited JSON from arbitrarily split byte chunks (``data:`` SSE framing allowed)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        self._buffer += chunk
        while (end := self._buffer.find(b"\n")) >= 0:
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            parsed = _parse_line(line)
            if parsed is not None:
                yield parsed

    def flush(self) -> Iterator[dict[str, Any]]:
        line, self._buffer = self._buffer, b""
        parsed = _parse_line(line)
        if parsed is not None:
            yield parsed


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    line = raw.strip()
    if line.startswith(b"data:"):
        line = line[5:].strip()
    elif line.startswith((b"event:", b"id:", b"retry:", b":")):
        return None  # other server-sent-event fields and comments
    if not line or line == b"[DONE]":
        return None
    try:
        parsed = json.loads(line)
    except ValueError as exc:
        raise errors.UpstreamError(f"LLM endpoint sent a line that is not JSON: {line[:200]!r}") from exc
    if not isinstance(parsed, dict):
        raise errors.UpstreamError(f"LLM endpoint sent JSON that is not an object: {line[:200]!r}")
    return parsed


def payloads_from_events(events: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """JSON objects carried by the ``PayloadPart`` events of a SageMaker response stream."""
    decoder = JsonLineDecoder()
    for event in events:
        part = event.get("PayloadPart")
        if part:
            yield from decoder.feed(part.get("Bytes", b""))
    yield from decoder.flush()


class _StreamState:
    def __init__(self) -> None:
        self.tokens = 0
        self.text_seen = False
        self.usage: Usage | None = None

    def read(self, payload: Mapping[str, Any]) -> str:
        """The answer text in one payload; records usage and token counts on the way."""
        if payload.get("error"):
            kind = payload.get("error_type") or "error"
            raise errors.UpstreamError(f"LLM endpoint {kind}: {payload['error']}")
        if "choices" in payload:  # Messages API chunk (TGI, LMI, vLLM)
            return self._read_chat_chunk(payload)
        token = payload.get("token")
        if isinstance(token, dict):  # TGI / LMI generate stream
            self._read_details(payload.get("details"))
            if token.get("special"):
                return ""
            self.tokens += 1
            return str(token.get("text") or "")
        self._read_details(payload.get("details"))
        generated = payload.get("generated_text")
        if isinstance(generated, str) and not self.text_seen:  # container answered in one piece
            return generated
        return ""

    def _read_chat_chunk(self, payload: Mapping[str, Any]) -> str:
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        text = ""
        for choice in payload.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                text += content
                self.tokens += 1
        return text

    def _read_details(self, details: Any) -> None:
        if isinstance(details, dict) and details.get("generated_tokens") is not None:
            prompt = details.get("prefill") or []
            self.usage = Usage(prompt_tokens=len(prompt), completion_tokens=int(details["generated_tokens"]))

    def final_usage(self) -> Usage:
        return self.usage or Usage(completion_tokens=self.tokens)


def deltas_from_payloads(payloads: Iterable[Mapping[str, Any]]) -> Iterator[ChatDelta]:
    """Answer text deltas, then one empty delta with the usage (counted tokens when none was sent)."""
    state = _StreamState()
    for payload in payloads:
        text = state.read(payload)
        if text:
            state.text_seen = True
            yield ChatDelta(text=text)
    yield ChatDelta(text="", usage=state.final_usage())


def chatml_prompt(turns: Sequence[ChatTurn]) -> str:
    """A ChatML prompt (Qwen and others) for the generate API; pass another ``render`` for other families."""
    parts = [f"<|im_start|>{turn.role.value}\n{turn.content}<|im_end|>\n" for turn in turns if turn.content.strip()]
    return "".join(parts) + "<|im_start|>assistant\n"


def messages_request(turns: Sequence[ChatTurn], *, max_tokens: int, temperature: float) -> dict[str, Any]:
    """A streamed Messages API (OpenAI chat completion) request; the server applies the chat template."""
    return {
        "messages": [{"role": turn.role.value, "content": turn.content} for turn in turns if turn.content.strip()],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def generate_request(prompt: str, *, max_tokens: int, temperature: float) -> dict[str, Any]:
    """A streamed TGI/LMI generate request (TGI wants a strictly positive temperature when sampling)."""
    parameters: dict[str, Any] = {
        "max_new_tokens": max_tokens,
        "return_full_text": False,
        "details": True,
        "do_sample": temperature > 0,
    }
    if temperature > 0:
        parameters["temperature"] = temperature
    return {"inputs": prompt, "parameters": parameters, "stream": True}


class SageMakerChatModel:
    """``ports.ChatModel`` on a TGI or LMI endpoint, streamed."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        api: Literal["messages", "generate"] = "messages",
        render: Callable[[Sequence[ChatTurn]], str] = chatml_prompt,
        context_tokens: int = 4096,
        client: Any | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._endpoint = _Endpoint(endpoint_name, client=client, region=region, retry=retry)
        self.name = endpoint_name
        self.context_tokens = context_tokens
        self.api = api
        self._render = render

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any | None = None) -> SageMakerChatModel:
        return cls(
            settings.sagemaker_llm_endpoint,
            context_tokens=settings.llm_context_tokens,
            client=client,
            region=settings.aws_region,
        )

    def request(self, turns: Sequence[ChatTurn], *, max_tokens: int, temperature: float) -> dict[str, Any]:
        check_chat_request(turns, max_tokens=max_tokens, temperature=temperature, max_temperature=2.0)
        if self.api == "messages":
            return messages_request(turns, max_tokens=max_tokens, temperature=temperature)
        return generate_request(self._render(turns), max_tokens=max_tokens, temperature=temperature)

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        body = json.dumps(self.request(turns, max_tokens=max_tokens, temperature=temperature))

        def open_stream() -> Iterator[ChatDelta]:
            response = self._endpoint.client().invoke_endpoint_with_response_stream(
                EndpointName=self._endpoint.name, Body=body, ContentType="application/json"
            )
            events = response["Body"]
            try:
                yield from deltas_from_payloads(payloads_from_events(events))
            finally:
                events.close()

        return stream_with_retry(open_stream, self._endpoint.target, self._endpoint.retry)
