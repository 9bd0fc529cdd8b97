"""SageMaker adapters against botocore: the shared embeddings / cross-encoder endpoint
(``invoke_endpoint`` through the Stubber) and a streamed LLM endpoint
(``invoke_endpoint_with_response_stream``, answered with real event-stream bytes, see
``botocore_replay``)."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from quarry import errors
from quarry.adapters.aws_errors import RetryPolicy, client_config
from quarry.adapters.sagemaker import (
    JsonLineDecoder,
    SageMakerChatModel,
    SageMakerEmbedder,
    SageMakerReranker,
    chatml_prompt,
    deltas_from_payloads,
    float32_rows,
)
from quarry.models import Role, Usage
from quarry.ports import ChatDelta, ChatModel, ChatTurn, Embedder, Reranker
from quarry.settings import Settings

from .botocore_replay import HttpReplay, event, exception_event
from .conftest import Sleeps

pytestmark = pytest.mark.aws

ENDPOINT = "quarry-models"
LLM = "quarry-llm"


def runtime_client() -> Any:
    return boto3.client("sagemaker-runtime", region_name="us-east-1", config=client_config())


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = runtime_client()
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def answer(payload: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"}


NPY = "application/x-npy"


def invoke(payload: dict[str, Any], accept: str = "application/json") -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "Body": json.dumps(payload),
        "ContentType": "application/json",
        "Accept": accept,
    }


def npy(rows: Any, **kwargs: Any) -> bytes:
    """An .npy file as numpy writes it (what the endpoint's output_fn sends for application/x-npy)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(rows), allow_pickle=False, **kwargs)
    return buffer.getvalue()


def npy_answer(rows: list[list[float]]) -> dict[str, Any]:
    data = npy(np.array(rows, dtype="<f4"))
    return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": NPY}


def info(dimensions: int = 3, **max_inputs: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "all-MiniLM-L6-v2", "type": "embeddings", "dimensions": dimensions}
    if max_inputs:
        entry["max_inputs"] = {"application/json": max_inputs["json"], NPY: max_inputs["npy"]}
    return answer({"models": [entry]})


def vec(seed: float) -> list[float]:
    return [seed, seed + 0.5, seed + 1.0]


# --------------------------------------------------------------------------- embeddings


def test_embeddings_are_batched(stubbed: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, model="all-MiniLM-L6-v2", batch_size=2, client=client, retry=retry)
    texts = ["alpha", "beta", "gamma"]
    stubber.add_response("invoke_endpoint", info(json=512, npy=512), invoke({"type": "info"}))
    stubber.add_response(
        "invoke_endpoint",
        npy_answer([vec(0.125), vec(0.25)]),
        invoke({"type": "embeddings", "input": ["alpha", "beta"], "model": "all-MiniLM-L6-v2"}, NPY),
    )
    stubber.add_response(
        "invoke_endpoint",
        npy_answer([vec(0.375)]),
        invoke({"type": "embeddings", "input": ["gamma"], "model": "all-MiniLM-L6-v2"}, NPY),
    )
    assert embedder.embed_documents(texts) == [vec(0.125), vec(0.25), vec(0.375)]
    assert embedder.dimensions == 3  # from the info answer, no extra call
    assert embedder.name == "all-MiniLM-L6-v2"
    assert isinstance(embedder, Embedder)
    stubber.add_response(
        "invoke_endpoint",
        npy_answer([vec(0.625)]),
        invoke({"type": "embeddings", "input": ["delta"], "model": "all-MiniLM-L6-v2"}, NPY),
    )
    assert embedder.embed_documents(["delta"]) == [vec(0.625)]  # the limits were asked once


def test_batches_stay_under_the_endpoints_limit(stubbed: tuple[Any, Stubber]) -> None:
    """The endpoint answers at most 2 texts per request as .npy (a wide model): batch_size 32 is lowered."""
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, batch_size=32, client=client)
    stubber.add_response("invoke_endpoint", info(json=1, npy=2), invoke({"type": "info"}))
    for batch, seeds in ((["a", "b"], (0.125, 0.25)), (["c", "d"], (0.375, 0.5)), (["e"], (0.625,))):
        stubber.add_response(
            "invoke_endpoint",
            npy_answer([vec(seed) for seed in seeds]),
            invoke({"type": "embeddings", "input": batch}, NPY),
        )
    assert embedder.embed_documents(["a", "b", "c", "d", "e"]) == [vec(s) for s in (0.125, 0.25, 0.375, 0.5, 0.625)]
    assert embedder.max_batch() == 2


def test_endpoint_without_limits_uses_batch_size(stubbed: tuple[Any, Stubber]) -> None:
    """An endpoint with older inference code lists no max_inputs: only batch_size applies."""
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, batch_size=3, client=client)
    stubber.add_response("invoke_endpoint", info(), invoke({"type": "info"}))
    assert embedder.max_batch() == 3


def test_json_only_endpoint_is_answered_in_json(stubbed: tuple[Any, Stubber]) -> None:
    """Mid-deployment the endpoint may still run the JSON-only code: it refuses .npy, the embedder
    asks again in JSON and keeps to JSON."""
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, client=client)
    request = {"type": "embeddings", "input": ["q"]}
    stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (400) from primary with message ...",
        424,
        modeled_fields={
            "OriginalStatusCode": 400,
            "OriginalMessage": "this endpoint answers application/json, not 'application/x-npy'",
        },
        expected_params=invoke(request, NPY),
    )
    stubber.add_response("invoke_endpoint", answer({"embeddings": [vec(0.7)]}), invoke(request))
    assert embedder.embed_query("q") == vec(0.7)
    stubber.add_response("invoke_endpoint", answer({"embeddings": [vec(0.8)]}), invoke(request))
    assert embedder.embed_query("q") == vec(0.8)
    assert embedder.accept == "application/json"


def test_dimensions_are_asked_of_the_endpoint_once(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, model="all-MiniLM-L6-v2", client=client)
    stubber.add_response(
        "invoke_endpoint",
        answer(
            {
                "models": [
                    {"name": "ms-marco", "type": "cross-encoder"},
                    {"name": "all-MiniLM-L6-v2", "type": "embeddings", "dimensions": 384},
                ]
            }
        ),
        invoke({"type": "info"}),
    )
    assert embedder.dimensions == 384
    assert embedder.dimensions == 384


def test_unknown_embedding_model_is_unavailable(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, model="e5-large", client=client)
    stubber.add_response(
        "invoke_endpoint",
        answer({"models": [{"name": "all-MiniLM-L6-v2", "type": "embeddings", "dimensions": 384}]}),
        invoke({"type": "info"}),
    )
    with pytest.raises(errors.ModelUnavailable, match="e5-large"):
        _ = embedder.dimensions


def test_embeddings_throttled_then_succeeding(stubbed: tuple[Any, Stubber], retry: RetryPolicy, sleeps: Sleeps) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, client=client, retry=retry)
    stubber.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_client_error("invoke_endpoint", "ModelNotReadyException", "Model is not ready", 429)
    stubber.add_response(
        "invoke_endpoint", npy_answer([vec(0.875)]), invoke({"type": "embeddings", "input": ["q"]}, NPY)
    )
    assert embedder.embed_query("q") == vec(0.875)
    assert sleeps == [0.25, 0.5]


def test_embeddings_not_ready_until_giving_up(stubbed: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, client=client, retry=retry)
    for _ in range(3):
        stubber.add_client_error("invoke_endpoint", "ServiceUnavailable", "Service is unavailable", 503)
    with pytest.raises(errors.ModelUnavailable, match=r"'quarry-models' is not ready after 3 attempts"):
        embedder.embed_query("q")


def test_missing_endpoint_and_access_denied_are_unavailable(stubbed: tuple[Any, Stubber], retry: RetryPolicy) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, client=client, retry=retry)
    stubber.add_client_error(
        "invoke_endpoint", "ValidationError", "Endpoint quarry-models of account 123456789012 not found.", 400
    )
    with pytest.raises(errors.ModelUnavailable, match="InService"):
        embedder.embed_query("q")
    stubber.add_client_error(
        "invoke_endpoint", "AccessDeniedException", "not authorized: sagemaker:InvokeEndpoint", 403
    )
    with pytest.raises(errors.ModelUnavailable, match="quarry-models"):
        embedder.embed_query("q")


def test_container_errors_carry_its_message(stubbed: tuple[Any, Stubber], retry: RetryPolicy, sleeps: Sleeps) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, client=client, retry=retry)
    stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (400) from primary with message ...",
        424,
        modeled_fields={
            "OriginalStatusCode": 400,
            "OriginalMessage": '{"error": "unknown model \'x\'"}',
            "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/quarry-models",
        },
    )
    with pytest.raises(errors.UpstreamError, match="unknown model"):
        embedder.embed_query("q")
    assert sleeps == []


def test_malformed_answers_are_upstream_errors(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    embedder = SageMakerEmbedder(ENDPOINT, client=client)
    request = invoke({"type": "embeddings", "input": ["q"]}, NPY)
    stubber.add_response("invoke_endpoint", answer({"embeddings": []}), request)
    with pytest.raises(errors.UpstreamError, match="returned 0 embeddings for 1 texts"):
        embedder.embed_query("q")
    stubber.add_response("invoke_endpoint", answer({"vectors": []}), request)
    with pytest.raises(errors.UpstreamError, match="without 'embeddings'"):
        embedder.embed_query("q")
    bad_bodies = {
        b"<html>502</html>": "invalid JSON",
        npy(np.zeros((1, 3), dtype="<f4"))[:-2]: "unreadable .npy: 10 bytes of data for a 1x3",
        npy(np.zeros((1, 3), dtype="<f8")): "unreadable .npy: expected a C-ordered float32 matrix",
        npy(np.zeros(3, dtype="<f4")): "unreadable .npy: expected a matrix",
        npy(np.zeros((2, 3), dtype="<f4")): "returned 2 embeddings for 1 texts",
        npy(np.zeros((1, 4), dtype="<f4")): "not of 3 dimensions",
    }
    embedder.dimensions = 3
    for raw, message in bad_bodies.items():
        stubber.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(raw), len(raw))}, request)
        with pytest.raises(errors.UpstreamError, match=message):
            embedder.embed_query("q")


@pytest.mark.parametrize(
    "data",
    [
        npy(np.arange(12, dtype="<f4").reshape(3, 4) / 7),
        npy(np.arange(12, dtype=">f4").reshape(3, 4) / 7),  # big-endian writer
        npy(np.arange(12, dtype="<f4").reshape(3, 4) / 7, version=(2, 0)),
        npy(np.arange(12, dtype="<f4").reshape(3, 4) / 7, version=(3, 0)),
    ],
)
def test_npy_is_read_without_numpy(data: bytes) -> None:
    expected = (np.arange(12, dtype="<f4").reshape(3, 4) / 7).astype("<f4")
    assert float32_rows(data) == expected.tolist()


def test_npy_reader_refuses_what_is_not_a_float32_matrix() -> None:
    for data, message in [
        (b"{}", "not a .npy file"),
        (b"\x93NUMPY\x09\x00" + bytes(8), "unknown .npy version"),
        (npy(np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3))), "C-ordered float32"),
        (npy(np.zeros((1, 2, 3), dtype="<f4")), "expected a matrix"),
    ]:
        with pytest.raises(ValueError, match=message):
            float32_rows(data)
    assert float32_rows(npy(np.zeros((0, 384), dtype="<f4"))) == []


def test_embedder_bad_input() -> None:
    with pytest.raises(errors.InvalidInput):
        SageMakerEmbedder(ENDPOINT).embed_documents(["ok", ""])
    with pytest.raises(errors.InvalidInput):
        SageMakerEmbedder(ENDPOINT, batch_size=0)
    with pytest.raises(errors.ModelUnavailable, match="no SageMaker endpoint"):
        SageMakerEmbedder("")


# --------------------------------------------------------------------------- cross-encoder


def test_cross_encoder_scores(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    reranker = SageMakerReranker(ENDPOINT, model="ms-marco-MiniLM", batch_size=2, client=client)
    stubber.add_response(
        "invoke_endpoint",
        answer({"scores": [0.9, 0.1]}),
        invoke({"type": "cross-encoder", "input": ["q"], "passages": ["a", "b"], "model": "ms-marco-MiniLM"}),
    )
    stubber.add_response(
        "invoke_endpoint",
        answer({"scores": [0.5]}),
        invoke({"type": "cross-encoder", "input": ["q"], "passages": ["c"], "model": "ms-marco-MiniLM"}),
    )
    assert reranker.score("q", ["a", "b", "c"]) == [0.9, 0.1, 0.5]
    assert reranker.score("q", []) == []
    assert isinstance(reranker, Reranker)


def test_cross_encoder_count_mismatch(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    reranker = SageMakerReranker(ENDPOINT, client=client)
    stubber.add_response(
        "invoke_endpoint",
        answer({"scores": [0.9]}),
        invoke({"type": "cross-encoder", "input": ["q"], "passages": ["a", "b"]}),
    )
    with pytest.raises(errors.UpstreamError, match="does not match"):
        reranker.score("q", ["a", "b"])


def test_from_settings() -> None:
    settings = Settings(
        sagemaker_embedding_endpoint=ENDPOINT,
        sagemaker_llm_endpoint=LLM,
        cross_encoder_path="/models/ms-marco-MiniLM-L-6-v2/",
        aws_region="eu-central-1",
        llm_context_tokens=8192,
    )
    embedder = SageMakerEmbedder.from_settings(settings)
    assert (embedder.name, embedder.model, embedder.batch_size) == ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2", 64)
    assert SageMakerReranker.from_settings(settings).model == "ms-marco-MiniLM-L-6-v2"
    chat = SageMakerChatModel.from_settings(settings)
    assert (chat.name, chat.context_tokens) == (LLM, 8192)
    assert chat._endpoint._client is None
    assert chat._endpoint.client().meta.region_name == "eu-central-1"


# --------------------------------------------------------------------------- the byte stream


def test_json_lines_split_anywhere() -> None:
    decoder = JsonLineDecoder()
    data = 'data: {"token": {"text": "caf\u00e9"}}\n\ndata: {"token": {"text": "!"}}\n'.encode()
    out: list[dict[str, Any]] = []
    for start in range(0, len(data), 3):  # splits inside the JSON and inside the two-byte "é"
        out.extend(decoder.feed(data[start : start + 3]))
    out.extend(decoder.flush())
    assert out == [{"token": {"text": "caf\u00e9"}}, {"token": {"text": "!"}}]


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_json_lines_any_split_gives_the_same_objects(cuts: list[int]) -> None:
    objects = [{"token": {"id": i, "text": f"t{i} \u2713"}} for i in range(5)]
    data = b"".join(json.dumps(obj).encode() + b"\n" for obj in objects)
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    decoder = JsonLineDecoder()
    out = [obj for a, b in itertools.pairwise(bounds) for obj in decoder.feed(data[a:b])]
    out += list(decoder.flush())
    assert out == objects


def test_last_line_without_newline_is_flushed_and_sse_noise_ignored() -> None:
    decoder = JsonLineDecoder()
    assert list(decoder.feed(b": keep-alive\nevent: message\ndata: [DONE]\n")) == []
    assert list(decoder.feed(b'{"generated_text": "x"}')) == []
    assert list(decoder.flush()) == [{"generated_text": "x"}]


def test_garbage_line_is_an_upstream_error() -> None:
    with pytest.raises(errors.UpstreamError, match="not JSON"):
        list(JsonLineDecoder().feed(b"<html>\n"))


def test_tgi_generate_stream_skips_special_tokens_and_reads_details() -> None:
    payloads: list[dict[str, Any]] = [
        {"token": {"id": 1, "text": "Hello", "logprob": -0.1, "special": False}, "generated_text": None},
        {"token": {"id": 2, "text": " world", "logprob": -0.2, "special": False}, "generated_text": None},
        {
            "token": {"id": 3, "text": "</s>", "logprob": 0.0, "special": True},
            "generated_text": "Hello world",
            "details": {"finish_reason": "eos_token", "generated_tokens": 3, "seed": None},
        },
    ]
    assert list(deltas_from_payloads(payloads)) == [
        ChatDelta("Hello"),
        ChatDelta(" world"),
        ChatDelta("", usage=Usage(prompt_tokens=0, completion_tokens=3)),
    ]


def test_whole_answer_in_one_payload() -> None:
    assert list(deltas_from_payloads([{"generated_text": "All at once."}])) == [
        ChatDelta("All at once."),
        ChatDelta("", usage=Usage()),
    ]


def test_error_payload_is_an_upstream_error() -> None:
    with pytest.raises(errors.UpstreamError, match="validation: Input validation error"):
        list(deltas_from_payloads([{"error": "Input validation error", "error_type": "validation"}]))


# --------------------------------------------------------------------------- streaming through botocore


@pytest.fixture
def llm(retry: RetryPolicy) -> Iterator[tuple[SageMakerChatModel, HttpReplay]]:
    client = runtime_client()
    replay = HttpReplay().attach(client, "InvokeEndpointWithResponseStream")
    yield SageMakerChatModel(LLM, client=client, retry=retry), replay
    replay.assert_done()


def parts(data: bytes, size: int) -> list[bytes]:
    """``PayloadPart`` events of ``size`` bytes each: JSON lines end up split across events."""
    return [event("PayloadPart", data[i : i + size]) for i in range(0, len(data), size)]


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data:" + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks) + b"data: [DONE]\n\n"


def chat_chunk(
    content: str | None, *, finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    delta = {"role": "assistant", "content": content} if content is not None else {}
    return {
        "object": "chat.completion.chunk",
        "id": "",
        "created": 1,
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "system_fingerprint": "3.0.1-sha-bb9095a",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


CHAT = [ChatTurn(Role.SYSTEM, "Answer briefly."), ChatTurn(Role.USER, "Capital of France?")]


def test_messages_api_stream(llm: tuple[SageMakerChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = llm
    body = sse(
        chat_chunk("Par"),
        chat_chunk("is, "),
        chat_chunk("d\u00e9j\u00e0 vu."),
        chat_chunk(None, finish="stop"),
        {"choices": [], "usage": {"prompt_tokens": 17, "completion_tokens": 4, "total_tokens": 21}},
    )
    replay.stream(*parts(body, 11))  # 11-byte parts split lines, the JSON and "é"
    deltas = list(model.stream(CHAT, max_tokens=32, temperature=0.3))
    assert "".join(d.text for d in deltas) == "Paris, d\u00e9j\u00e0 vu."
    assert deltas[-1] == ChatDelta("", usage=Usage(prompt_tokens=17, completion_tokens=4))
    [request] = replay.requests
    assert request["url"].endswith(f"/endpoints/{LLM}/invocations-response-stream")
    assert request["json"] == {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "max_tokens": 32,
        "temperature": 0.3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert sleeps == []
    assert isinstance(model, ChatModel)


def test_generate_api_stream(retry: RetryPolicy) -> None:
    client = runtime_client()
    replay = HttpReplay().attach(client, "InvokeEndpointWithResponseStream")
    model = SageMakerChatModel(LLM, api="generate", client=client, retry=retry)
    lines = [
        {
            "token": {"id": 1, "text": "Paris", "logprob": -0.01, "special": False},
            "generated_text": None,
            "details": None,
        },
        {
            "token": {"id": 2, "text": "<|im_end|>", "logprob": 0.0, "special": True},
            "generated_text": "Paris",
            "details": {"finish_reason": "eos_token", "generated_tokens": 2, "seed": None},
        },
    ]
    body = b"".join(b"data:" + json.dumps(line).encode() + b"\n\n" for line in lines)
    replay.stream(*parts(body, 5))
    deltas = list(model.stream(CHAT, max_tokens=16, temperature=0.0))
    assert deltas == [ChatDelta("Paris"), ChatDelta("", usage=Usage(completion_tokens=2))]
    assert replay.requests[0]["json"] == {
        "inputs": chatml_prompt(CHAT),
        "parameters": {"max_new_tokens": 16, "return_full_text": False, "details": True, "do_sample": False},
        "stream": True,
    }
    assert chatml_prompt(CHAT) == (
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n"
        "<|im_start|>user\nCapital of France?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_stream_throttled_then_succeeding(llm: tuple[SageMakerChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = llm
    replay.error(400, "ThrottlingException", "Rate exceeded")
    replay.stream(exception_event("InternalStreamFailure", "stream broke", key="Message"))  # before any token: retried
    replay.stream(*parts(sse(chat_chunk("ok")), 64))
    assert [d.text for d in model.stream(CHAT)] == ["ok", ""]
    assert sleeps == [0.25, 0.5]
    assert len(replay.requests) == 3


def test_stream_throttled_until_giving_up(llm: tuple[SageMakerChatModel, HttpReplay]) -> None:
    model, replay = llm
    for _ in range(3):
        replay.error(400, "ThrottlingException", "Rate exceeded")
    with pytest.raises(errors.Throttled, match="'quarry-llm' is throttling requests after 3 attempts"):
        list(model.stream(CHAT))


def test_model_stream_error_mid_answer(llm: tuple[SageMakerChatModel, HttpReplay], sleeps: Sleeps) -> None:
    model, replay = llm
    replay.stream(
        *parts(sse(chat_chunk("Par")), 64),
        exception_event("ModelStreamError", "CUDA out of memory", key="Message", ErrorCode="424"),
    )
    seen: list[str] = []
    with pytest.raises(errors.UpstreamError, match="CUDA out of memory"):
        for delta in model.stream(CHAT):
            seen.append(delta.text)
    assert seen == ["Par"]
    assert sleeps == []


def test_access_denied_stream(llm: tuple[SageMakerChatModel, HttpReplay]) -> None:
    model, replay = llm
    replay.error(403, "AccessDeniedException", "not authorized to perform: sagemaker:InvokeEndpointWithResponseStream")
    with pytest.raises(errors.ModelUnavailable, match="quarry-llm"):
        list(model.stream(CHAT))
    assert len(replay.requests) == 1


def test_chat_bad_input() -> None:
    model = SageMakerChatModel(LLM)
    with pytest.raises(errors.InvalidInput, match="user turn"):
        model.stream([ChatTurn(Role.SYSTEM, "only a system prompt")])
    with pytest.raises(errors.InvalidInput, match="max_tokens"):
        model.stream(CHAT, max_tokens=0)
