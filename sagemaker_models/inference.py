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

This module, and this folder, are the only places besides the endpoint that import torch /
sentence-transformers, and only inside ``model_fn``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CROSS_ENCODER",
    "EMBEDDINGS",
    "ModelSpec",
    "Registry",
    "Request",
    "RequestError",
    "input_fn",
    "load_specs",
    "model_fn",
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
MAX_INPUTS = 512  # texts (or passages) per request
MAX_TEXT_CHARS = 100_000


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


def _device() -> str:
    configured = os.environ.get(DEVICE_ENV)
    if configured:
        return configured
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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
    """Load every configured model once per worker."""
    directory = Path(model_dir)
    device = _device()
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


def predict_fn(request: Request, registry: Registry) -> dict[str, Any]:
    if request.type == INFO:
        return registry.info()
    loaded = registry.pick(request.type, request.model)
    spec = loaded.spec
    if request.type == EMBEDDINGS:
        vectors = loaded.model.encode(
            list(request.inputs),
            batch_size=spec.batch_size,
            normalize_embeddings=spec.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        embeddings = [[float(value) for value in row] for row in vectors.tolist()]
        return {"model": spec.name, "embeddings": embeddings, "dimensions": len(embeddings[0])}
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


def output_fn(prediction: dict[str, Any], accept: str = "application/json") -> bytes:
    accepted = accept.split(";")[0].strip().lower() if accept else "*/*"
    if accepted not in ("application/json", "*/*"):
        raise RequestError(f"this endpoint answers application/json, not {accept!r}")
    return json.dumps(prediction).encode("utf-8")
