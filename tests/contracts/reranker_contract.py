"""What every ``Reranker`` must do. Supply two fixtures:

* ``reranker``: the adapter;
* ``unreachable_reranker``: the same adapter whose model cannot be had: any call that reaches it fails.

and describe the adapter as configured with class attributes:

* ``batch_size``: the most passages it sends to the model at once; the contract scores more than that;
* ``input_limit_chars``: a passage is read up to this many characters (or the model's token limit, which
  may come sooner); the rest is ignored, never refused;
* ``judges_relevance``: the scores come from a trained model, so an obvious case must rank right
  (a stand-in model, or a cross-encoder with an untrained head, scores consistently but not sensibly);
* ``tolerance``: how far two scores of one pair may differ (batches pad differently).
"""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from quarry.errors import ModelUnavailable
from quarry.ports import Reranker
from tests.contracts.embedder_contract import filler

__all__ = ["PASSAGES", "QUERY", "RerankerContract"]

QUERY = "Where is the Eiffel tower?"
PASSAGES = [
    "Bananas are rich in potassium.",
    "The Eiffel tower stands in Paris, on the Champ de Mars.",
    "A kinase phosphorylates proteins.",
    "Paris is the capital of France.",
]
RELEVANT = 1


class RerankerContract:
    batch_size: ClassVar[int]
    input_limit_chars: ClassVar[int]
    judges_relevance: ClassVar[bool] = False
    tolerance: ClassVar[float] = 1e-4

    def _alone(self, reranker: Reranker, passage: str) -> float:
        [score] = reranker.score(QUERY, [passage])
        return score

    def test_it_is_a_reranker_with_a_name(self, reranker: Reranker) -> None:
        assert isinstance(reranker, Reranker)
        assert isinstance(reranker.name, str) and reranker.name

    def test_one_score_per_passage_in_order(self, reranker: Reranker) -> None:
        scores = reranker.score(QUERY, PASSAGES)
        assert len(scores) == len(PASSAGES)
        assert all(isinstance(score, float) and math.isfinite(score) for score in scores)
        assert len({round(score, 6) for score in scores}) > 1  # not one constant for every passage
        for passage, score in zip(PASSAGES, scores, strict=True):
            assert math.isclose(score, self._alone(reranker, passage), abs_tol=self.tolerance)
        reversed_scores = reranker.score(QUERY, PASSAGES[::-1])
        for score, again in zip(scores, reversed_scores[::-1], strict=True):
            assert math.isclose(again, score, abs_tol=self.tolerance)

    def test_more_passages_than_a_batch_all_come_back_in_order(self, reranker: Reranker) -> None:
        count = 2 * self.batch_size + 1
        passages = [f"passage {i}: {PASSAGES[i % len(PASSAGES)]}" for i in range(count)]
        scores = reranker.score(QUERY, passages)
        assert len(scores) == count
        # the first and last passage of every batch, scored alone
        for i in sorted({0, self.batch_size - 1, self.batch_size, 2 * self.batch_size - 1, count - 1}):
            assert math.isclose(scores[i], self._alone(reranker, passages[i]), abs_tol=self.tolerance)

    def test_no_passages_give_no_scores_without_asking_the_model(
        self, reranker: Reranker, unreachable_reranker: Reranker
    ) -> None:
        assert reranker.score(QUERY, []) == []
        assert unreachable_reranker.score(QUERY, []) == []  # the model was never asked

    def test_a_model_that_cannot_be_had_is_model_unavailable(self, unreachable_reranker: Reranker) -> None:
        with pytest.raises(ModelUnavailable):
            unreachable_reranker.score(QUERY, PASSAGES)

    def test_a_passage_past_the_input_limit_is_read_up_to_it(self, reranker: Reranker) -> None:
        head = filler(self.input_limit_chars)
        [score] = reranker.score(QUERY, [head + " and then the Eiffel tower, which is in Paris"])
        assert math.isclose(score, self._alone(reranker, head), abs_tol=self.tolerance)

    def test_the_relevant_passage_scores_highest(self, reranker: Reranker) -> None:
        if not self.judges_relevance:
            pytest.skip("no trained reranker behind this adapter here: its scores say nothing about relevance")
        scores = reranker.score(QUERY, PASSAGES)
        assert max(range(len(scores)), key=scores.__getitem__) == RELEVANT
