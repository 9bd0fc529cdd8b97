"""Quality of a summary job's result: citation validity, faithfulness, coverage and polarity accuracy.

The result is scored against the documents the job selected. Where a document is a review of the
constructed set (``quarry.evaluation.review_set``), its ground truth is known: which aspects it mentions,
praising or criticising them. A summary point is mapped to the aspects of the product it names
(``match_aspects``: keywords first, in any of the set's languages; else closeness in meaning by the
workspace's embedder, when one is given), and then:

* **Citation validity**: the share of (point, cited document) pairs whose document truly mentions the
  point. For a point mapped to aspects, by the ground truth: the document mentions one of those aspects,
  with the point's polarity (a pro needs praise, a con criticism; a theme either). A citation of a
  document outside the job's selection is invalid. For a point the set cannot place (no aspect) or a
  document without ground truth, the judge model decides (``Judge.judge``: does this document say it?),
  at most ``max_judged_citations`` documents per point; without a judge such pairs are left unchecked
  (counted in ``citations_unchecked``, never as valid).
* **Faithfulness**: the share of points the judge model finds supported by the documents they cite (the
  first ``max_judge_passages`` of them, in citation order). ``faithfulness_ground_truth`` is the same
  question answered by the ground truth for the mapped points: most of a point's citations are valid.
* **Coverage**: frequent (aspect, polarity) pairs are those mentioned by at least ``frequent_share`` of
  the selected reviews (for themes and custom points: frequent aspects, either polarity). Coverage is the
  share of them the summary mentions with the right polarity (a pro for praise, a con for criticism).
* **Polarity accuracy**: of the pros and cons mapped to an aspect, the share whose kind agrees with what
  the documents they cite say about that aspect (most of those that mention it).

Pure logic over data: the caller gives the result, the ground truth and (optionally) a judge and an
embedding function; ``quarry eval summaries`` wires them to a workspace.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from quarry.errors import InvalidInput
from quarry.evaluation.answers import Judge
from quarry.evaluation.review_set import (
    PRODUCTS,
    Aspect,
    Polarity,
    Product,
    Review,
    aspect_counts,
    generate_reviews,
    product,
)
from quarry.summary_models import PointKind, SummaryPoint, SummaryResult

__all__ = [
    "FREQUENT_SHARE",
    "AspectMatcher",
    "CalibrationPair",
    "FrequentAspect",
    "PointCheck",
    "SummaryEvaluation",
    "calibrate_judge",
    "calibration_pairs",
    "combine",
    "evaluate_summary",
    "expected_polarity",
    "frequent_aspects",
    "match_aspects",
]

FREQUENT_SHARE = 0.10
#: Smallest cosine similarity at which a point that names no aspect is taken to be about the closest one.
EMBEDDING_THRESHOLD = 0.5

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]


def expected_polarity(kind: PointKind) -> Polarity | None:
    """What a point's kind claims: praise for a pro, criticism for a con, nothing for a theme or point."""
    if kind is PointKind.PRO:
        return Polarity.POSITIVE
    if kind is PointKind.CON:
        return Polarity.NEGATIVE
    return None


# --------------------------------------------------------------------------- points -> aspects


def _keyword_hits(text: str, aspect: Aspect) -> bool:
    lowered = text.lower()
    return any(re.search(rf"(?<![\w]){pattern}", lowered) for pattern in aspect.keywords)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class AspectMatcher:
    """Maps point texts to a product's aspects; embeds the aspects' descriptions once, on first need."""

    def __init__(self, item: Product, *, embed: Embed | None = None, threshold: float = EMBEDDING_THRESHOLD) -> None:
        self.product = item
        self.embed = embed
        self.threshold = threshold
        self._described: list[tuple[str, Sequence[float]]] | None = None

    def _descriptions(self) -> list[tuple[str, Sequence[float]]]:
        if self._described is None:
            assert self.embed is not None
            texts: list[tuple[str, str]] = []
            for profile in self.product.profile:
                aspect = profile.aspect
                texts.append((aspect.key, aspect.label))
                texts.extend((aspect.key, aspect.description(polarity)) for polarity in Polarity)
            vectors = self.embed([text for _, text in texts])
            self._described = [(key, vector) for (key, _), vector in zip(texts, vectors, strict=True)]
        return self._described

    def match(self, text: str) -> tuple[str, ...]:
        """The aspects ``text`` names: by keyword (a product's own aspects before the shared ones), else
        the closest by meaning above the threshold, else none."""
        aspects = [p.aspect for p in self.product.profile]
        own = tuple(a.key for a in aspects if not a.shared and _keyword_hits(text, a))
        if own:
            return own
        shared = tuple(a.key for a in aspects if a.shared and _keyword_hits(text, a))
        if shared or self.embed is None:
            return shared
        [vector] = self.embed([text])
        best_key, best = "", -1.0
        for key, described in self._descriptions():
            similarity = _cosine(vector, described)
            if similarity > best:
                best_key, best = key, similarity
        return (best_key,) if best >= self.threshold else ()


def match_aspects(text: str, item: Product, *, embed: Embed | None = None) -> tuple[str, ...]:
    return AspectMatcher(item, embed=embed).match(text)


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True, slots=True)
class FrequentAspect:
    aspect: str
    polarity: Polarity | None  # None: the aspect, either polarity (themes)
    documents: int
    share: float
    covered: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "aspect": self.aspect,
            "polarity": None if self.polarity is None else self.polarity.value,
            "documents": self.documents,
            "share": round(self.share, 4),
            "covered": self.covered,
        }


def frequent_aspects(
    reviews: Sequence[Review], *, share: float = FREQUENT_SHARE, by_polarity: bool = True
) -> list[FrequentAspect]:
    """(aspect, polarity) pairs (or aspects) mentioned by at least ``share`` of ``reviews``, most first."""
    if not reviews:
        return []
    counts: dict[tuple[str, Polarity | None], int] = {}
    if by_polarity:
        for (aspect, polarity), count in aspect_counts(reviews).items():
            counts[(aspect, polarity)] = count
    else:
        for item in reviews:
            for aspect in {m.aspect for m in item.mentions}:
                counts[(aspect, None)] = counts.get((aspect, None), 0) + 1
    total = len(reviews)
    found = [
        FrequentAspect(aspect, polarity, count, count / total)
        for (aspect, polarity), count in counts.items()
        if count / total >= share
    ]
    return sorted(found, key=lambda f: (-f.documents, f.aspect, f.polarity or ""))


# --------------------------------------------------------------------------- the evaluation


@dataclass(frozen=True, slots=True)
class PointCheck:
    """One point of the result, and what the checks found."""

    kind: PointKind
    text: str
    count: int
    aspects: tuple[str, ...]
    citations: int
    valid: int  # citations found valid (ground truth or judge)
    checked: int  # citations checked (ground truth or judge)
    outside: int  # citations of documents the job did not select
    by_judge: int  # of ``checked``, how many the judge decided
    #: The documents that mention the point's aspects with its polarity, by the ground truth.
    true_count: int | None = None
    supported: bool | None = None  # faithfulness by the judge
    supported_ground_truth: bool | None = None
    polarity_correct: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "text": self.text,
            "count": self.count,
            "aspects": list(self.aspects),
            "citations": self.citations,
            "valid": self.valid,
            "checked": self.checked,
            "outside": self.outside,
            "by_judge": self.by_judge,
            "true_count": self.true_count,
            "supported": self.supported,
            "supported_ground_truth": self.supported_ground_truth,
            "polarity_correct": self.polarity_correct,
        }


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True, slots=True)
class SummaryEvaluation:
    points: tuple[PointCheck, ...]
    frequent: tuple[FrequentAspect, ...]
    documents: int  # the documents the job selected
    reviews: int  # of those, the reviews with ground truth
    judge: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    # -- counts, summed over points (so evaluations combine by adding)
    @property
    def citations(self) -> int:
        return sum(p.citations for p in self.points)

    @property
    def citations_checked(self) -> int:
        return sum(p.checked for p in self.points)

    @property
    def citations_valid(self) -> int:
        return sum(p.valid for p in self.points)

    @property
    def citations_by_judge(self) -> int:
        return sum(p.by_judge for p in self.points)

    @property
    def citation_validity(self) -> float | None:
        return _share(self.citations_valid, self.citations_checked)

    @property
    def faithfulness(self) -> float | None:
        judged = [p.supported for p in self.points if p.supported is not None]
        return _share(sum(judged), len(judged))

    @property
    def faithfulness_ground_truth(self) -> float | None:
        judged = [p.supported_ground_truth for p in self.points if p.supported_ground_truth is not None]
        return _share(sum(judged), len(judged))

    @property
    def judge_agreement(self) -> float | None:
        """How often the judge's faithfulness verdict agrees with the ground truth's, where both exist:
        how far the judge can be trusted on this set."""
        both = [
            p.supported == p.supported_ground_truth
            for p in self.points
            if p.supported is not None and p.supported_ground_truth is not None
        ]
        return _share(sum(both), len(both))

    @property
    def coverage(self) -> float | None:
        return _share(sum(f.covered for f in self.frequent), len(self.frequent))

    @property
    def polarity_accuracy(self) -> float | None:
        judged = [p.polarity_correct for p in self.points if p.polarity_correct is not None]
        return _share(sum(judged), len(judged))

    @property
    def mapped_share(self) -> float | None:
        return _share(sum(1 for p in self.points if p.aspects), len(self.points))

    def metrics(self) -> dict[str, float]:
        """The figures stored with the job (``SummaryResult.evaluation``): numbers only, absent when unknown."""
        values: dict[str, float | None] = {
            "faithfulness": self.faithfulness,
            "faithfulness_ground_truth": self.faithfulness_ground_truth,
            "judge_agreement": self.judge_agreement,
            "citation_validity": self.citation_validity,
            "coverage": self.coverage,
            "polarity_accuracy": self.polarity_accuracy,
            "mapped_share": self.mapped_share,
            "points": float(len(self.points)),
            "citations": float(self.citations),
            "citations_checked": float(self.citations_checked),
            "citations_by_judge": float(self.citations_by_judge),
            "frequent_aspects": float(len(self.frequent)),
        }
        return {key: round(value, 4) for key, value in values.items() if value is not None}

    def to_dict(self, *, include_points: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.metrics(),
            "documents": self.documents,
            "reviews": self.reviews,
            "citations_unchecked": self.citations - self.citations_checked,
            "citations_outside_selection": sum(p.outside for p in self.points),
            "judge": self.judge,
            "frequent": [f.to_dict() for f in self.frequent],
            "missed": [f.to_dict() for f in self.frequent if not f.covered],
            **self.notes,
        }
        if include_points:
            out["per_point"] = [p.to_dict() for p in self.points]
        return out


def combine(evaluations: Iterable[SummaryEvaluation]) -> SummaryEvaluation:
    """Several jobs' evaluations as one (micro-averaged: every citation, point and frequent aspect counts once)."""
    items = list(evaluations)
    if not items:
        raise InvalidInput("nothing to combine")
    judges = {e.judge for e in items if e.judge}
    return SummaryEvaluation(
        points=tuple(p for e in items for p in e.points),
        frequent=tuple(f for e in items for f in e.frequent),
        documents=sum(e.documents for e in items),
        reviews=sum(e.reviews for e in items),
        judge=", ".join(sorted(judges)) or None,
    )


@dataclass(frozen=True, slots=True)
class _Context:
    selected: frozenset[str]
    truth: Mapping[str, Review]
    texts: Mapping[str, str]
    judge: Judge | None
    max_judged_citations: int
    max_judge_passages: int


def _mentions(review: Review, aspects: Sequence[str], polarity: Polarity | None) -> bool:
    return any(m.aspect in aspects and (polarity is None or m.polarity is polarity) for m in review.mentions)


def _judged(ctx: _Context, point: SummaryPoint, document_id: str) -> bool | None:
    text = ctx.texts.get(document_id)
    if ctx.judge is None or not text:
        return None
    return ctx.judge.judge("", [text], point.text)


def _check_citations(ctx: _Context, point: SummaryPoint, aspects: Sequence[str]) -> tuple[int, int, int, int]:
    """(valid, checked, outside the selection, decided by the judge) for the point's citations."""
    polarity = expected_polarity(point.kind)
    valid = checked = outside = by_judge = 0
    judged = 0
    for document_id in dict.fromkeys(point.document_ids):
        if document_id not in ctx.selected:
            outside += 1
            checked += 1
            continue
        review = ctx.truth.get(document_id)
        if aspects and review is not None:
            checked += 1
            valid += _mentions(review, aspects, polarity)
            continue
        if judged >= ctx.max_judged_citations:
            continue
        verdict = _judged(ctx, point, document_id)
        if verdict is None:
            continue
        judged += 1
        by_judge += 1
        checked += 1
        valid += verdict
    return valid, checked, outside, by_judge


def _polarity_correct(ctx: _Context, point: SummaryPoint, aspects: Sequence[str]) -> bool | None:
    """Whether a pro or con has the polarity most of its cited documents give its aspects."""
    claimed = expected_polarity(point.kind)
    if claimed is None or not aspects:
        return None
    votes = [
        m.polarity
        for document_id in dict.fromkeys(point.document_ids)
        if (review := ctx.truth.get(document_id)) is not None and document_id in ctx.selected
        for m in review.mentions
        if m.aspect in aspects
    ]
    if not votes:
        return None
    agree = sum(1 for vote in votes if vote is claimed)
    return agree * 2 > len(votes)


def _true_count(ctx: _Context, point: SummaryPoint, aspects: Sequence[str]) -> int | None:
    if not aspects:
        return None
    polarity = expected_polarity(point.kind)
    return sum(1 for d in ctx.selected if (r := ctx.truth.get(d)) is not None and _mentions(r, aspects, polarity))


def _supported(ctx: _Context, point: SummaryPoint) -> bool | None:
    if ctx.judge is None:
        return None
    passages = [ctx.texts[d] for d in dict.fromkeys(point.document_ids) if ctx.texts.get(d)]
    if not passages:
        return False  # a point whose documents cannot be read (or that cites none) is not supported
    return ctx.judge.judge("", passages[: ctx.max_judge_passages], point.text)


def _check_point(ctx: _Context, point: SummaryPoint, matcher: AspectMatcher | None) -> PointCheck:
    aspects = matcher.match(point.text) if matcher is not None else ()
    valid, checked, outside, by_judge = _check_citations(ctx, point, aspects)
    grounded = aspects and any(d in ctx.truth for d in point.document_ids)
    return PointCheck(
        kind=point.kind,
        text=point.text,
        count=point.count,
        aspects=aspects,
        citations=len(dict.fromkeys(point.document_ids)),
        valid=valid,
        checked=checked,
        outside=outside,
        by_judge=by_judge,
        true_count=_true_count(ctx, point, aspects),
        supported=_supported(ctx, point),
        supported_ground_truth=(valid * 2 > checked) if grounded and checked else None,
        polarity_correct=_polarity_correct(ctx, point, aspects),
    )


def _covered(frequent: FrequentAspect, checks: Sequence[PointCheck]) -> bool:
    for check in checks:
        if frequent.aspect not in check.aspects:
            continue
        claimed = expected_polarity(check.kind)
        if frequent.polarity is None or claimed is None or claimed is frequent.polarity:
            return True
    return False


def evaluate_summary(
    result: SummaryResult,
    *,
    selected: Iterable[str],
    truth: Mapping[str, Review],
    item: Product | None = None,
    texts: Mapping[str, str] | None = None,
    judge: Judge | None = None,
    embed: Embed | None = None,
    frequent_share: float = FREQUENT_SHARE,
    max_judged_citations: int = 5,
    max_judge_passages: int = 8,
) -> SummaryEvaluation:
    """Score ``result`` of a job that selected the documents ``selected``.

    ``truth`` maps document ids to their reviews (documents of other kinds are simply absent); ``item`` is
    the product the job summarises (found from the reviews when not given; None when they are of several
    products or none, which leaves aspects unmapped). ``texts`` are the documents' texts for the judge
    (the reviews' own texts are used when absent).
    """
    if not 0.0 < frequent_share <= 1.0:
        raise InvalidInput("frequent_share must be within (0, 1]")
    chosen = frozenset(selected)
    reviews = [truth[d] for d in chosen if d in truth]
    if item is None:
        products = {r.product for r in reviews}
        if len(products) == 1:
            item = product(products.pop())
    all_texts = {d: r.text for d, r in truth.items()} | dict(texts or {})
    ctx = _Context(
        selected=chosen,
        truth=truth,
        texts=all_texts,
        judge=judge,
        max_judged_citations=max_judged_citations,
        max_judge_passages=max_judge_passages,
    )
    matcher = AspectMatcher(item, embed=embed) if item is not None else None
    checks = [_check_point(ctx, point, matcher) for point in result.points]
    by_polarity = any(expected_polarity(p.kind) is not None for p in result.points) or not result.points
    frequent = [
        FrequentAspect(f.aspect, f.polarity, f.documents, f.share, covered=_covered(f, checks))
        for f in frequent_aspects(reviews, share=frequent_share, by_polarity=by_polarity)
    ]
    return SummaryEvaluation(
        points=tuple(checks),
        frequent=tuple(frequent),
        documents=len(chosen),
        reviews=len(reviews),
        judge=getattr(judge, "name", type(judge).__name__) if judge is not None else None,
        notes={"product": item.key if item is not None else None, "frequent_share": frequent_share},
    )


# --------------------------------------------------------------------------- how far the judge can be trusted


@dataclass(frozen=True, slots=True)
class CalibrationPair:
    point: str
    review: str
    supported: bool
    case: str  # "same" (the review says it), "opposite" (says the contrary), "absent" (does not mention it)


def calibration_pairs(count: int, *, seed: int = 7) -> list[CalibrationPair]:
    """``count`` labelled (point, review) pairs from the review set, half supported, half not (a review
    saying the contrary, or not mentioning the aspect): the judge's questions with known answers."""
    if count < 2:
        raise InvalidInput("calibrate the judge on at least 2 pairs")
    rng = random.Random(seed)
    reviews = generate_reviews(600)
    pairs: list[CalibrationPair] = []
    cases = [(item, profile.aspect, polarity) for item in PRODUCTS for profile in item.profile for polarity in Polarity]
    while len(pairs) < count:
        item, aspect, polarity = rng.choice(cases)
        own = [r for r in reviews if r.product == item.key]
        point = aspect.description(polarity)
        if len(pairs) % 2 == 0:
            pool, supported, case = [r for r in own if r.polarity_of(aspect.key) is polarity], True, "same"
        elif rng.random() < 0.5:
            pool, supported, case = (
                [r for r in own if r.polarity_of(aspect.key) not in (None, polarity)],
                False,
                "opposite",
            )
        else:
            pool, supported, case = [r for r in own if r.polarity_of(aspect.key) is None], False, "absent"
        if pool:
            pairs.append(CalibrationPair(point, rng.choice(pool).text, supported, case))
    return pairs


def calibrate_judge(judge: Judge, pairs: Sequence[CalibrationPair]) -> dict[str, Any]:
    """The judge's accuracy on labelled pairs, by case, and how often it says yes."""
    right: dict[str, list[int]] = {}
    yes = 0
    for pair in pairs:
        verdict = judge.judge("", [pair.review], pair.point)
        yes += verdict
        tally = right.setdefault(pair.case, [0, 0])
        tally[0] += verdict is pair.supported
        tally[1] += 1
    correct = sum(t[0] for t in right.values())
    return {
        "pairs": len(pairs),
        "accuracy": round(correct / len(pairs), 4) if pairs else None,
        "yes_rate": round(yes / len(pairs), 4) if pairs else None,
        "by_case": {case: {"correct": t[0], "pairs": t[1]} for case, t in sorted(right.items())},
    }
