"""Behaviour every Tokenizer adapter must have (fixture: ``tokenizer``).

Chunk sizes are budgets in tokens, so the chunker needs counts that are whole, never negative, zero for
nothing, and that grow when text is added.
"""

from __future__ import annotations

from typing import Any

from quarry.ports import Tokenizer


class TokenizerContract:
    def test_is_a_tokenizer(self, tokenizer: Any) -> None:
        assert isinstance(tokenizer, Tokenizer)

    def test_nothing_counts_zero(self, tokenizer: Any) -> None:
        assert tokenizer.count("") == 0

    def test_counts_are_positive_integers_for_words(self, tokenizer: Any) -> None:
        count = tokenizer.count("Kinases add phosphate groups to proteins.")
        assert isinstance(count, int) and count >= 6

    def test_more_text_never_counts_fewer_tokens(self, tokenizer: Any) -> None:
        sentence = "Phosphatases remove the phosphate again. "
        counts = [tokenizer.count(sentence * n) for n in (1, 2, 4)]
        assert counts[0] < counts[1] < counts[2]

    def test_counts_are_deterministic(self, tokenizer: Any) -> None:
        text = "Ångström-scale résumé, naïve café: 12.5% of 3,000 items."
        assert tokenizer.count(text) == tokenizer.count(text) > 0
