"""What every ``Embedder`` must do. Supply two fixtures:

* ``embedder``: the adapter;
* ``unreachable_embedder``: the same adapter whose model cannot be had (a missing model folder, an
  endpoint that answers "access denied"): any call that reaches the model fails.

and describe the adapter as configured with class attributes:

* ``batch_size``: the most texts it sends to the model at once; the contract embeds more than that;
* ``input_limit_chars``: a text is read up to this many characters (or the model's token limit, which
  may come sooner); the rest is ignored, never refused;
* ``unit_vectors``: the adapter promises vectors of length 1 (the port itself does not);
* ``tolerance``: how far two embeddings of one text may differ, per value (batches pad differently).

The port promises no special treatment of queries, and no adapter here gives them any, so a query's
vector is its text's document vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import pytest

from quarry.errors import ModelUnavailable
from quarry.ports import Embedder

__all__ = ["TEXTS", "EmbedderContract", "assert_close", "filler"]

TEXTS = [
    "The Eiffel tower is in Paris.",
    "Bananas are rich in potassium.",
    "Paris is the capital of France.",
    "A kinase phosphorylates proteins.",
]


def assert_close(got: Sequence[float], expected: Sequence[float], tolerance: float) -> None:
    assert len(got) == len(expected)
    worst = max((abs(a - b) for a, b in zip(got, expected, strict=True)), default=0.0)
    assert worst <= tolerance, f"vectors differ by up to {worst}, more than {tolerance}"


def filler(chars: int) -> str:
    """Plain English words, exactly ``chars`` characters (past any model's token limit when long)."""
    words = "the river runs past the old mill and on towards the sea "
    return (words * (chars // len(words) + 1))[:chars]


class EmbedderContract:
    batch_size: ClassVar[int]
    input_limit_chars: ClassVar[int]
    unit_vectors: ClassVar[bool] = False
    tolerance: ClassVar[float] = 1e-4

    def _alone(self, embedder: Embedder, text: str) -> list[float]:
        [vector] = embedder.embed_documents([text])
        return vector

    def test_it_is_an_embedder_with_a_name_and_dimensions(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert isinstance(embedder.name, str) and embedder.name
        assert isinstance(embedder.dimensions, int) and embedder.dimensions > 0

    def test_n_texts_give_n_distinct_vectors_of_its_dimensions(self, embedder: Embedder) -> None:
        vectors = embedder.embed_documents(TEXTS)
        assert len(vectors) == len(TEXTS)
        for vector in vectors:
            assert len(vector) == embedder.dimensions
            assert all(isinstance(value, float) and math.isfinite(value) for value in vector)
        for i, vector in enumerate(vectors):  # no text got another's vector, nor a constant one
            for other in vectors[i + 1 :]:
                assert max(abs(a - b) for a, b in zip(vector, other, strict=True)) > self.tolerance

    def test_each_vector_is_its_own_texts(self, embedder: Embedder) -> None:
        vectors = embedder.embed_documents(TEXTS)
        for text, vector in zip(TEXTS, vectors, strict=True):
            assert_close(vector, self._alone(embedder, text), self.tolerance)
        reversed_vectors = embedder.embed_documents(TEXTS[::-1])
        for vector, again in zip(vectors, reversed_vectors[::-1], strict=True):
            assert_close(again, vector, self.tolerance)

    def test_more_texts_than_a_batch_all_come_back_in_order(self, embedder: Embedder) -> None:
        count = 2 * self.batch_size + 1
        texts = [f"passage {i}: {TEXTS[i % len(TEXTS)]}" for i in range(count)]
        vectors = embedder.embed_documents(texts)
        assert len(vectors) == count
        assert all(len(vector) == embedder.dimensions for vector in vectors)
        # the first and last text of every batch, embedded alone
        for i in sorted({0, self.batch_size - 1, self.batch_size, 2 * self.batch_size - 1, count - 1}):
            assert_close(vectors[i], self._alone(embedder, texts[i]), self.tolerance)

    def test_no_texts_give_no_vectors_without_asking_the_model(
        self, embedder: Embedder, unreachable_embedder: Embedder
    ) -> None:
        assert embedder.embed_documents([]) == []
        assert unreachable_embedder.embed_documents([]) == []  # the model was never asked

    def test_a_model_that_cannot_be_had_is_model_unavailable(self, unreachable_embedder: Embedder) -> None:
        with pytest.raises(ModelUnavailable):
            unreachable_embedder.embed_documents(TEXTS[:2])
        with pytest.raises(ModelUnavailable):
            unreachable_embedder.embed_query(TEXTS[0])

    def test_a_text_past_the_input_limit_is_read_up_to_it(self, embedder: Embedder) -> None:
        head = filler(self.input_limit_chars)
        longer = head + " and then a tail about bananas, kinases and the capital of France"
        [vector] = embedder.embed_documents([longer])
        assert_close(vector, self._alone(embedder, head), self.tolerance)
        assert_close(embedder.embed_query(longer), vector, self.tolerance)

    def test_a_query_is_embedded_like_a_document(self, embedder: Embedder) -> None:
        for text in TEXTS[:2]:
            query = embedder.embed_query(text)
            assert len(query) == embedder.dimensions
            assert_close(query, self._alone(embedder, text), self.tolerance)

    def test_vectors_have_unit_length_when_promised(self, embedder: Embedder) -> None:
        if not self.unit_vectors:
            pytest.skip("this adapter does not promise unit vectors (the port does not ask for them)")
        for vector in [*embedder.embed_documents(TEXTS), embedder.embed_query(TEXTS[0])]:
            assert math.isclose(math.sqrt(sum(value * value for value in vector)), 1.0, abs_tol=1e-3)
