"""The models Quarry knows: what each one is (id, display name, provider, dimensions) and how to build it.

Each ``Settings.embedder`` / ``chat_model`` / ``reranker`` name has a registration here that adds its
models to a :class:`ModelRegistry`; the composition root (``quarry.wiring``) only picks which ones run.
Registrations import their technology inside the factory they register, so a model is built, and its
library imported, on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from quarry.errors import InvalidInput
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import ChatModelName, EmbedderName, RerankerName, Settings

__all__ = [
    "CHAT_MODELS",
    "EMBEDDERS",
    "MINILM",
    "MINILM_DIMENSIONS",
    "QWEN_CODER",
    "RERANKERS",
    "ModelRegistration",
    "register_models",
]

ModelRegistration = Callable[[Settings, ModelRegistry], None]
"""Adds the models one setting value stands for to a registry (none, for ``reranker=none``)."""

MINILM_DIMENSIONS = 384
MINILM = ModelInfo(
    id="all-MiniLM-L6-v2",
    name="all-MiniLM-L6-v2 (local)",
    provider="sentence-transformers",
    dimensions=MINILM_DIMENSIONS,
)
QWEN_CODER = ModelInfo(
    id="qwen2.5-coder-0.5b-instruct", name="Qwen2.5-Coder 0.5B Instruct", provider="llama.cpp"
)  # the provider is shown next to the name: the name does not repeat it
TITAN_EMBEDDINGS_NAME = "Titan Text Embeddings v2"


# ============================================================================ embedders


def _minilm(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.st_models import SentenceTransformerEmbedder

    registry.embedders.register(
        MINILM,
        lambda: SentenceTransformerEmbedder(
            dimensions=MINILM_DIMENSIONS, batch_size=s.embedding_batch_size, precision=s.embedding_precision
        ),
        default=True,
    )


def _bedrock_embedder(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.bedrock import BedrockEmbedder

    info = ModelInfo(
        id=s.bedrock_embedding_model_id,
        name=TITAN_EMBEDDINGS_NAME,
        provider="bedrock",
        dimensions=s.bedrock_embedding_dimensions,
    )
    registry.embedders.register(info, lambda: BedrockEmbedder.from_settings(s), default=True)


def _sagemaker_embedder(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.sagemaker import SageMakerEmbedder

    dimensions = s.sagemaker_embedding_dimensions
    info = ModelInfo(
        id=s.embedding_model, name=f"{s.embedding_model} (SageMaker)", provider="sagemaker", dimensions=dimensions
    )

    def make() -> SageMakerEmbedder:
        embedder = SageMakerEmbedder.from_settings(s)
        embedder.dimensions = dimensions  # vectors of another size are refused as an upstream error
        return embedder

    registry.embedders.register(info, make, default=True)


# ============================================================================ chat models


def _llamacpp(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.llamacpp import LlamaCppChatModel

    # Another GGUF (``llm_model_path``) is named by its file, so the UI names the model that really answers.
    info = replace(QWEN_CODER, name=Path(s.llm_model_path).stem) if s.llm_model_path else QWEN_CODER
    registry.chat_models.register(
        info,
        lambda: LlamaCppChatModel(
            model_path=Path(s.llm_model_path) if s.llm_model_path else None,
            model_dir=s.model_dir,
            context_tokens=s.llm_context_tokens,
            threads=s.llm_threads,
            max_tokens=s.llm_max_tokens,
            name=QWEN_CODER.id,
            batch_sequences=s.llm_batch_sequences,
        ),
        default=True,
    )


def _bedrock_chat(s: Settings, registry: ModelRegistry) -> None:
    _register_bedrock_chat(s, registry, default=True)


def _register_bedrock_chat(s: Settings, registry: ModelRegistry, *, default: bool) -> None:
    """The deployment's default Bedrock model and the others it enables, each under its model id."""
    from quarry.adapters.bedrock import BedrockChatModel

    for model_id in dict.fromkeys([s.bedrock_chat_model_id, *s.bedrock_chat_model_ids]):
        info = ModelInfo(id=model_id, name=model_id, provider="bedrock")
        registry.chat_models.register(
            info,
            lambda m=model_id: BedrockChatModel(m, region=s.aws_region),  # type: ignore[misc]
            default=default and model_id == s.bedrock_chat_model_id,
        )


def _sagemaker_chat(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.sagemaker import SageMakerChatModel

    info = ModelInfo(id=s.sagemaker_llm_endpoint, name=f"{s.sagemaker_llm_endpoint} (SageMaker)", provider="sagemaker")
    registry.chat_models.register(info, lambda: SageMakerChatModel.from_settings(s), default=True)
    if "bedrock_chat_model_id" in s.model_fields_set:  # the deployment enables Bedrock too: offer its models
        _register_bedrock_chat(s, registry, default=False)


# ============================================================================ rerankers


def _no_reranker(s: Settings, registry: ModelRegistry) -> None:
    return None


def _cross_encoder(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.st_models import CrossEncoderReranker

    if not s.cross_encoder_path:
        raise InvalidInput("reranker 'cross-encoder' needs QUARRY_CROSS_ENCODER_PATH (a local CrossEncoder folder)")
    path = Path(s.cross_encoder_path)
    info = ModelInfo(id=path.name, name=f"{path.name} (cross-encoder)", provider="sentence-transformers")
    registry.rerankers.register(info, lambda: CrossEncoderReranker(path), default=True)


def _sagemaker_reranker(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.sagemaker import SageMakerReranker

    info = ModelInfo(id="cross-encoder", name="cross-encoder (SageMaker)", provider="sagemaker")
    registry.rerankers.register(info, lambda: SageMakerReranker.from_settings(s), default=True)


def _bedrock_reranker(s: Settings, registry: ModelRegistry) -> None:
    from quarry.adapters.bedrock import BedrockReranker

    info = ModelInfo(id=s.bedrock_rerank_model_arn or "bedrock-rerank", name="Bedrock rerank", provider="bedrock")
    registry.rerankers.register(info, lambda: BedrockReranker.from_settings(s), default=True)


EMBEDDERS: dict[EmbedderName, ModelRegistration] = {
    "minilm": _minilm,
    "bedrock": _bedrock_embedder,
    "sagemaker": _sagemaker_embedder,
}
CHAT_MODELS: dict[ChatModelName, ModelRegistration] = {
    "llamacpp": _llamacpp,
    "bedrock": _bedrock_chat,
    "sagemaker": _sagemaker_chat,
}
RERANKERS: dict[RerankerName, ModelRegistration] = {
    "none": _no_reranker,
    "cross-encoder": _cross_encoder,
    "sagemaker": _sagemaker_reranker,
    "bedrock": _bedrock_reranker,
}


def register_models(s: Settings, registry: ModelRegistry) -> ModelRegistry:
    """Add the embedder, chat model(s) and reranker that ``s`` names to ``registry``."""
    for registration in (
        _registration("embedder", s.embedder, EMBEDDERS),
        _registration("chat_model", s.chat_model, CHAT_MODELS),
        _registration("reranker", s.reranker, RERANKERS),
    ):
        registration(s, registry)
    return registry


N = TypeVar("N", bound=str)


def _registration(port: str, name: N, table: Mapping[N, ModelRegistration]) -> ModelRegistration:
    registration = table.get(name)
    if registration is None:  # only Settings that skipped validation (``model_copy(update=...)``) get here
        raise InvalidInput(f"unknown {port} adapter {name!r} (known: {', '.join(sorted(table))})")
    return registration
