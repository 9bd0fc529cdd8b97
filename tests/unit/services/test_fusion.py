"""Reciprocal-rank fusion against hand-computed scores."""

from __future__ import annotations

import pytest

from quarry.models import Chunk
from quarry.ports import ScoredChunk
from quarry.services.fusion import reciprocal_rank_fusion


def ranked(*ids: str) -> list[ScoredChunk]:
    return [ScoredChunk(Chunk("w", doc, 0, doc, 0, 1), score=10.0 - i) for i, doc in enumerate(ids)]


def test_scores_are_the_sum_of_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([ranked("a", "b", "c"), ranked("c", "a")], k=60)
    scores = {f.scored.chunk.document_id: round(f.score, 6) for f in fused}
    assert scores == {
        "a": round(1 / 61 + 1 / 62, 6),
        "c": round(1 / 63 + 1 / 61, 6),
        "b": round(1 / 62, 6),
    }
    assert [f.scored.chunk.document_id for f in fused] == ["a", "c", "b"]
    assert fused[0].ranks == (1, 2) and fused[2].ranks == (2, None)


def test_weights_scale_each_ranking() -> None:
    fused = reciprocal_rank_fusion([ranked("a"), ranked("b")], weights=[1.0, 2.0], k=1)
    assert [(f.scored.chunk.document_id, f.score) for f in fused] == [("b", 1.0), ("a", 0.5)]


def test_ties_break_on_best_rank_then_id() -> None:
    fused = reciprocal_rank_fusion([ranked("x", "y"), ranked("y", "x")], k=60)
    assert fused[0].score == fused[1].score
    assert [f.scored.chunk.document_id for f in fused] == ["x", "y"]


def test_duplicates_in_one_list_count_once_and_scores_are_kept() -> None:
    fused = reciprocal_rank_fusion([ranked("a", "a", "b")], k=60)
    assert [f.ranks for f in fused] == [(1,), (3,)]
    assert fused[0].scores == (10.0,)


def test_empty_and_bad_arguments() -> None:
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([ranked("a")], k=0)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([ranked("a")], weights=[1.0, 1.0])
