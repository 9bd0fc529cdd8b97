"""Reciprocal-rank fusion of ranked lists (Cormack et al., 2009)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quarry.ports import ScoredChunk

__all__ = ["FusedItem", "reciprocal_rank_fusion"]


@dataclass(frozen=True, slots=True)
class FusedItem:
    scored: ScoredChunk
    score: float
    ranks: tuple[int | None, ...]  # 1-based rank in each input list, None where absent
    scores: tuple[float | None, ...]  # the ranker's own score in each input list


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[ScoredChunk]], *, weights: Sequence[float] | None = None, k: int = 60
) -> list[FusedItem]:
    """score(d) = sum_i w_i / (k + rank_i(d)); ties broken by best single rank, then chunk id."""
    if k < 1:
        raise ValueError("k must be at least 1")
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    first: dict[str, ScoredChunk] = {}
    ranks: dict[str, list[int | None]] = {}
    scores: dict[str, list[float | None]] = {}
    for i, ranking in enumerate(rankings):
        for rank, item in enumerate(ranking, start=1):
            cid = item.chunk.id
            if cid not in first:
                first[cid] = item
                ranks[cid] = [None] * len(rankings)
                scores[cid] = [None] * len(rankings)
            if ranks[cid][i] is None:
                ranks[cid][i] = rank
                scores[cid][i] = item.score
    fused = [
        FusedItem(
            scored=first[cid],
            score=sum(w / (k + r) for w, r in zip(weights, ranks[cid], strict=True) if r is not None),
            ranks=tuple(ranks[cid]),
            scores=tuple(scores[cid]),
        )
        for cid in first
    ]
    fused.sort(key=lambda f: (-f.score, min(r for r in f.ranks if r is not None), f.scored.chunk.id))
    return fused
