"""SageMaker inference handlers for Quarry's embeddings + cross-encoder endpoint.

One real-time endpoint serves every model listed in its configuration, so a single
instance answers both ``SageMakerEmbedder`` and ``SageMakerReranker``
(``quarry.adapters.sagemaker``). The model list is configuration, never code:

* ``QUARRY_SM_MODELS``: a JSON list, when set (the endpoint's environment), else
* ``models.json`` at the root of ``model.tar.gz`` (written by ``package.py``).

Each entry is ``{"name": ..., "type": "embeddings" | "cross-encoder", "path": ...}`` with
optional ``normalize`` (embeddings, default true), ``max_length`` and ``batch_size``;
a relative ``path`` is inside the model directory.

Requests (``application/json``)::

    {"type": "embeddings",    "model": NAME?, "input": ["text", ...]}
    {"type": "cross-encoder", "model": NAME?, "input": ["query"] | "query", "passages": ["...", ...]}
    {"type": "info"}

answered with ``{"model", "embeddings", "dimensions"}``, ``{"model", "scores"}`` or
``{"models": [...]}``. ``model`` may be left out when one model of that type is served
(the first listed is used when there are several).

Embeddings are also answered as ``application/x-npy`` (a NumPy ``.npy`` file holding one
little-endian float32 matrix, texts x dimensions) when the request's ``Accept`` header asks for
it: a quarter of the JSON size, and no float-to-text formatting on the endpoint. JSON stays the
default (no ``Accept``, ``*/*`` or ``application/json``). The inference toolkit sets the
response's content type to the ``Accept`` header as sent, so clients send one type.

SageMaker refuses real-time answers over 6 MB, so the number of texts an embeddings request
may hold depends on the model's dimensions and the answer's encoding (``max_texts``; at
768 dimensions 280 texts in JSON, 512 in npy). ``info`` lists these limits per model
(``"max_inputs": {"application/json": n, "application/x-npy": m}``) and a larger request is
refused with a message giving them (the toolkit answers 400, SageMaker a ModelError).

On a multi-GPU instance the model server runs one worker per GPU and passes each worker's
``gpu_id`` to ``model_fn`` through its context; the worker loads its models on ``cuda:<gpu_id>``.

This module, and this folder, are the only places besides the endpoint that import torch /
sentence-transformers, and only inside ``model_fn``.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CROSS_ENCODER",
    "EMBEDDINGS",
    "JSON",
    "NPY",
    "ModelSpec",
    "Registry",
    "Request",
    "RequestError",
    "choose_device",
    "input_fn",
    "load_specs",
    "max_texts",
    "model_fn",
    "negotiate",
    "output_fn",
    "predict_fn",
]

CONFIG_FILE = "models.json"
CONFIG_ENV = "QUARRY_SM_MODELS"
DEVICE_ENV = "QUARRY_SM_DEVICE"
EMBEDDINGS = "embeddings"
CROSS_ENCODER = "cross-encoder"
INFO = "info"
MODEL_TYPES = (EMBEDDINGS, CROSS_ENCODER)
MAX_INPUTS = 512  # texts (or passages) per request, whatever the answer's size
MAX_TEXT_CHARS = 100_000

JSON = "application/json"
NPY = "application/x-npy"
# SageMaker real-time endpoints refuse answers over 6 MB; stay 10% under it.
RESPONSE_LIMIT_BYTES = 6_000_000
RESPONSE_BUDGET_BYTES = RESPONSE_LIMIT_BYTES * 9 // 10
RESPONSE_OVERHEAD_BYTES = 4096  # JSON keys and model name, or the .npy header (at most a few hundred bytes)
# json.dumps writes a float32 (as a Python float) in at most 23 characters, "-1.2345678901234567e-05",
# plus ", " between values; each row adds "[", "]" and ", ".
_BYTES_PER_VALUE = {JSON: 25, NPY: 4}
_BYTES_PER_ROW = {JSON: 4, NPY: 0}


class RequestError(ValueError):
    """A request the endpoint cannot serve; the message says why."""


class ConfigError(ValueError):
    """The model list is missing or wrong."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    type: str
    path: str
    normalize: bool = True
    max_length: int | None = None
    batch_size: int = 32

    @classmethod
    def from_dict(cls, raw: Any) -> ModelSpec:
        if not isinstance(raw, dict):
            raise ConfigError(f"a model entry must be an object, not {raw!r}")
        unknown = set(raw) - {"name", "type", "path", "normalize", "max_length", "batch_size"}
        if unknown:
            raise ConfigError(f"unknown model fields {sorted(unknown)}")
        name, kind, path = raw.get("name"), raw.get("type"), raw.get("path")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"model entry without a name: {raw!r}")
        if kind not in MODEL_TYPES:
            raise ConfigError(f"model {name!r}: type must be one of {MODEL_TYPES}, not {kind!r}")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"model {name!r} has no path")
        max_length = raw.get("max_length")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ConfigError(f"model {name!r}: max_length must be a positive integer")
        batch_size = raw.get("batch_size", 32)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"model {name!r}: batch_size must be a positive integer")
        return cls(name, kind, path, bool(raw.get("normalize", True)), max_length, batch_size)

    def resolved_path(self, model_dir: Path) -> Path:
        path = Path(self.path)
        return path if path.is_absolute() else model_dir / path


def load_specs(model_dir: str | Path, environ: dict[str, str] | None = None) -> list[ModelSpec]:
    """The configured models: ``QUARRY_SM_MODELS`` when set, else ``<model_dir>/models.json``."""
    env = os.environ if environ is None else environ
    raw_text = env.get(CONFIG_ENV)
    source = CONFIG_ENV
    if not raw_text:
        config = Path(model_dir) / CONFIG_FILE
        if not config.is_file():
            raise ConfigError(f"no model list: set {CONFIG_ENV} or ship {CONFIG_FILE} in the model archive")
        raw_text, source = config.read_text(encoding="utf-8"), str(config)
    try:
        raw = json.loads(raw_text)
    except ValueError as exc:
        raise ConfigError(f"{source} is not valid JSON: {exc}") from exc
    entries = raw.get("models") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source} must list at least one model")
    specs = [ModelSpec.from_dict(entry) for entry in entries]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source} names a model twice: {names}")
    return specs


# --------------------------------------------------------------------------- loaded models


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: Any
    dimensions: int | None = None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.spec.name, "type": self.spec.type}
        if self.dimensions is not None:
            described["dimensions"] = self.dimensions
            described["max_inputs"] = {media_type: max_texts(self.dimensions, media_type) for media_type in (JSON, NPY)}
        return described


@dataclass
class Registry:
    """The models this endpoint serves, by name, in configuration order."""

    models: dict[str, LoadedModel] = field(default_factory=dict)

    def pick(self, kind: str, name: str | None) -> LoadedModel:
        if name is not None:
            loaded = self.models.get(name)
            if loaded is None:
                raise RequestError(f"unknown model {name!r}; this endpoint serves {sorted(self.models)}")
            if loaded.spec.type != kind:
                raise RequestError(f"model {name!r} is a {loaded.spec.type} model, not {kind}")
            return loaded
        for loaded in self.models.values():
            if loaded.spec.type == kind:
                return loaded
        raise RequestError(f"this endpoint serves no {kind} model")

    def info(self) -> dict[str, Any]:
        return {"models": [loaded.describe() for loaded in self.models.values()]}


def max_texts(dimensions: int, media_type: str = JSON) -> int:
    """The most texts one embeddings request may hold so that its answer, encoded as ``media_type``,
    stays under SageMaker's response limit (with a 10% margin), and never more than ``MAX_INPUTS``."""
    if dimensions < 1:
        raise ValueError(f"dimensions must be positive, not {dimensions}")
    per_text = dimensions * _BYTES_PER_VALUE[media_type] + _BYTES_PER_ROW[media_type]
    return max(0, min(MAX_INPUTS, (RESPONSE_BUDGET_BYTES - RESPONSE_OVERHEAD_BYTES) // per_text))


def choose_device(configured: str | None, gpu_id: Any, cuda_devices: int) -> str:
    """The torch device of one model-server worker.

    ``configured`` (``QUARRY_SM_DEVICE``) wins; else, with CUDA, the GPU the model server gave this
    worker (``gpu_id`` from its context: one worker per GPU), else the first GPU; else the CPU.
    """
    if configured:
        return configured
    if cuda_devices < 1:
        return "cpu"
    try:
        index = int(gpu_id)
    except (TypeError, ValueError):
        return "cuda:0"
    return f"cuda:{index % cuda_devices}" if index >= 0 else "cuda:0"


def _gpu_id(context: Any) -> Any:
    properties = getattr(context, "system_properties", None)
    return properties.get("gpu_id") if isinstance(properties, dict) else None


def _device(context: Any) -> str:
    configured = os.environ.get(DEVICE_ENV)
    if configured:
        return configured
    import torch

    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return choose_device(None, _gpu_id(context), cuda_devices)


def _load(spec: ModelSpec, model_dir: Path, device: str) -> LoadedModel:
    path = spec.resolved_path(model_dir)
    if not path.is_dir():
        raise ConfigError(f"model {spec.name!r}: {path} is not a directory")
    if spec.type == EMBEDDINGS:
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(str(path), device=device)
        if spec.max_length:
            encoder.max_seq_length = spec.max_length
        # sentence-transformers >= 5.2 renamed the method; the endpoint image may have an older one
        dimension = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        return LoadedModel(spec, encoder, int(dimension() or 0) or None)
    from sentence_transformers import CrossEncoder

    return LoadedModel(spec, CrossEncoder(str(path), device=device, max_length=spec.max_length))


def model_fn(model_dir: str, context: Any = None) -> Registry:
    """Load every configured model once per worker, on the worker's GPU when there is one.

    The toolkit passes its context because this function takes two parameters, like its own
    ``load(model_dir, context=None)``; ``context.system_properties["gpu_id"]`` is the worker's GPU.
    """
    directory = Path(model_dir)
    device = _device(context)
    registry = Registry()
    for spec in load_specs(directory):
        registry.models[spec.name] = _load(spec, directory, device)
    return registry


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Request:
    type: str
    model: str | None = None
    inputs: tuple[str, ...] = ()
    passages: tuple[str, ...] = ()


def _texts(value: Any, what: str, *, allow_single: bool = False) -> tuple[str, ...]:
    if allow_single and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RequestError(f"{what} must be a non-empty list of strings")
    if len(value) > MAX_INPUTS:
        raise RequestError(f"{what} holds {len(value)} texts; at most {MAX_INPUTS} per request")
    if not all(isinstance(text, str) and text.strip() for text in value):
        raise RequestError(f"{what} must contain only non-empty strings")
    if any(len(text) > MAX_TEXT_CHARS for text in value):
        raise RequestError(f"{what} has a text longer than {MAX_TEXT_CHARS} characters")
    return tuple(value)


def input_fn(request_body: bytes | str, content_type: str = "application/json") -> Request:
    """Parse and validate one request."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise RequestError(f"content type must be application/json, not {content_type!r}")
    try:
        raw = json.loads(request_body)
    except ValueError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise RequestError("request body must be a JSON object")
    kind = raw.get("type")
    model = raw.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("model must be a string")
    if kind == INFO:
        return Request(INFO)
    if kind == EMBEDDINGS:
        return Request(EMBEDDINGS, model, _texts(raw.get("input"), "input"))
    if kind == CROSS_ENCODER:
        query = _texts(raw.get("input"), "input", allow_single=True)
        if len(query) != 1:
            raise RequestError("a cross-encoder request scores passages against exactly one query")
        return Request(CROSS_ENCODER, model, query, _texts(raw.get("passages"), "passages"))
    raise RequestError(f"type must be one of {(*MODEL_TYPES, INFO)}, not {kind!r}")


def _too_many(count: int, dimensions: int, media_type: str) -> RequestError:
    limits = ", ".join(f"{max_texts(dimensions, kind)} as {kind}" for kind in (JSON, NPY))
    return RequestError(
        f"{count} embeddings of {dimensions} dimensions would make a {media_type} answer past SageMaker's "
        f"6 MB response limit; send at most {limits} per request"
    )


def predict_fn(request: Request, registry: Registry) -> dict[str, Any]:
    """Run the request's model. Embeddings come back as a float32 matrix for ``output_fn`` to encode."""
    if request.type == INFO:
        return registry.info()
    loaded = registry.pick(request.type, request.model)
    spec = loaded.spec
    if request.type == EMBEDDINGS:
        count = len(request.inputs)
        if loaded.dimensions and count > max(max_texts(loaded.dimensions, kind) for kind in (JSON, NPY)):
            raise _too_many(count, loaded.dimensions, NPY)  # no encoding can carry it: refuse before computing
        vectors = loaded.model.encode(
            list(request.inputs),
            batch_size=spec.batch_size,
            normalize_embeddings=spec.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return {"model": spec.name, "embeddings": vectors, "dimensions": int(vectors.shape[1])}
    query = request.inputs[0]
    scores = loaded.model.predict(
        [(query, passage) for passage in request.passages],
        batch_size=spec.batch_size,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    if scores.ndim > 1 and scores.shape[-1] != 1:
        raise RequestError(f"model {spec.name!r} has {scores.shape[-1]} labels; a reranker needs exactly one")
    return {"model": spec.name, "scores": [float(score) for score in scores.reshape(-1).tolist()]}


def negotiate(accept: str | None, offered: tuple[str, ...]) -> str:
    """The type to answer in: the most preferred of the ``Accept`` header's types that is ``offered``
    (``offered[0]`` for ``*/*``, ``type/*`` or no header)."""
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept or "*/*").split(",")):
        media_type, *params = (part.strip().lower() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_type and quality > 0:
            ranges.append((-quality, position, media_type))
    for _, _, media_type in sorted(ranges):
        if media_type in offered:
            return media_type
        if media_type == "*/*":
            return offered[0]
        if media_type.endswith("/*"):
            family = media_type[:-1]
            for candidate in offered:
                if candidate.startswith(family):
                    return candidate
    raise RequestError(f"this answer is offered as {' or '.join(offered)}, not {accept!r}")


def _npy(matrix: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(matrix, dtype="<f4"), allow_pickle=False)
    return buffer.getvalue()


def output_fn(prediction: dict[str, Any], accept: str = JSON) -> bytes:
    """Encode a prediction as the request's ``Accept`` header asks: JSON, or ``.npy`` for embeddings."""
    embeddings = prediction.get("embeddings")
    if embeddings is None:
        negotiate(accept, (JSON,))
        return json.dumps(prediction).encode("utf-8")
    media_type = negotiate(accept, (JSON, NPY))
    count, dimensions = len(embeddings), int(prediction["dimensions"])
    if count > max_texts(dimensions, media_type):
        raise _too_many(count, dimensions, media_type)
    if media_type == NPY:
        return _npy(embeddings)
    rows = embeddings.tolist() if hasattr(embeddings, "tolist") else embeddings
    return json.dumps({**prediction, "embeddings": rows}).encode("utf-8")
