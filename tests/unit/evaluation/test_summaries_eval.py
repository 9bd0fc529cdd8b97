"""The constructed review set and the metrics of `quarry eval summaries`, on hand-made results.

The ground-truth checks need no model. The judge part runs the real ``ChatModelJudge`` on a model that
replies from a script, as the judge's own tests do: what is checked is which questions the metric asks
and how it counts the verdicts, not the model's opinion.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.judges import ChatModelJudge
from quarry.evaluation.review_set import (
    PRODUCTS,
    SMALL_SET,
    TARGET_SET,
    Polarity,
    Review,
    generate_reviews,
    product,
    review,
    review_index,
)
from quarry.evaluation.summaries_eval import (
    AspectMatcher,
    combine,
    evaluate_summary,
    frequent_aspects,
    match_aspects,
)
from quarry.models import Usage
from quarry.ports import ChatDelta, ChatTurn
from quarry.summary_models import PointKind, SummaryPoint, SummaryResult

HEADPHONES = product("aurora-x2")
COFFEE = product("brewmaster-500")
BACKPACK = product("trailpack-30")


# --------------------------------------------------------------------------- the review set


def test_a_review_depends_on_its_index_and_seed_only() -> None:
    small = generate_reviews(SMALL_SET)
    assert len(small) == SMALL_SET
    assert small == generate_reviews(200)[:SMALL_SET]  # the small set is the start of every larger one
    assert review(7) == small[7]
    assert review(7, seed=20) != review(7)
    assert [r.product for r in small[:6]] == [p.key for p in PRODUCTS] * 2
    assert review_index(small[42].id) == 42
    with pytest.raises(InvalidInput):
        review_index("doc-42")


def test_reviews_are_short_and_mention_known_aspects() -> None:
    reviews = generate_reviews(600)
    for item in reviews:
        aspects = product(item.product).aspects
        assert 1 <= len(item.mentions) <= 3
        assert {m.aspect for m in item.mentions} <= set(aspects)
        assert len({m.aspect for m in item.mentions}) == len(item.mentions)
        assert 10 < len(item.text) < 300
        assert 1 <= item.rating <= 5
        fields = item.fields()
        assert fields["product"] == item.product and fields["review_id"] == item.id
    languages = Counter(r.language for r in reviews)
    assert set(languages) == {"en", "de", "es", "fr"}
    assert 0.15 < 1 - languages["en"] / len(reviews) < 0.35  # a share in other languages


def test_each_phrasing_says_its_aspect_in_words_a_summary_would_use() -> None:
    """The English phrasings name their aspect by its keywords, so a point quoting a review maps back to it."""
    for item in PRODUCTS:
        for profile in item.profile:
            for polarity in Polarity:
                for phrase in profile.aspect.phrases(polarity, "en"):
                    text = phrase.replace("{very}", "")
                    assert profile.aspect.key in match_aspects(text, item), (item.key, text)


def test_the_target_set_has_clear_frequent_pros_and_cons_per_product() -> None:
    reviews = generate_reviews(TARGET_SET)
    expected = {
        "aurora-x2": {
            ("sound", Polarity.POSITIVE),
            ("battery", Polarity.POSITIVE),
            ("comfort", Polarity.NEGATIVE),
            ("noise_cancelling", Polarity.POSITIVE),
            ("price", Polarity.NEGATIVE),
            ("connection", Polarity.NEGATIVE),
        },
        "brewmaster-500": {
            ("taste", Polarity.POSITIVE),
            ("cleaning", Polarity.NEGATIVE),
            ("speed", Polarity.POSITIVE),
            ("noise", Polarity.NEGATIVE),
            ("price", Polarity.POSITIVE),
        },
        "trailpack-30": {
            ("space", Polarity.POSITIVE),
            ("straps", Polarity.POSITIVE),
            ("waterproof", Polarity.NEGATIVE),
            ("zippers", Polarity.NEGATIVE),
            ("price", Polarity.POSITIVE),
        },
    }
    for key, pairs in expected.items():
        frequent = frequent_aspects([r for r in reviews if r.product == key])
        assert {(f.aspect, f.polarity) for f in frequent} == pairs
        assert all(f.share >= 0.1 for f in frequent)


# --------------------------------------------------------------------------- points -> aspects


@pytest.mark.parametrize(
    ("item", "text", "aspects"),
    [
        (HEADPHONES, "Excellent sound quality with deep bass", ("sound",)),
        (HEADPHONES, "Long battery life", ("battery",)),
        (HEADPHONES, "Uncomfortable after an hour of wear", ("comfort",)),
        (HEADPHONES, "Effective active noise cancellation", ("noise_cancelling",)),
        (HEADPHONES, "Bluetooth connection drops often", ("connection",)),
        (HEADPHONES, "Expensive for what you get", ("price",)),
        (HEADPHONES, "Der Akku hält sehr lange", ("battery",)),
        (COFFEE, "Hard to clean", ("cleaning",)),
        (COFFEE, "Loud pump", ("noise",)),
        (COFFEE, "Rich, smooth flavour", ("taste",)),
        (COFFEE, "Good value for money", ("price",)),
        (BACKPACK, "Spacious, with many pockets", ("space",)),
        (BACKPACK, "The zipper broke after two weeks", ("zippers",)),  # its own aspect before "build"
        (BACKPACK, "Not waterproof", ("waterproof",)),
        (BACKPACK, "Arrived on time", ()),
        # phrasings the local model wrote in a real run
        (BACKPACK, "Swallows a weekend's worth of stuff", ("space",)),  # "worth" alone is not about price
        (HEADPHONES, "Over 30 hours", ("battery",)),
        (COFFEE, "Feels strong", ("taste",)),
        (HEADPHONES, "Forget I am wearing them", ("comfort",)),
    ],
)
def test_points_map_to_the_aspects_they_name(item: object, text: str, aspects: tuple[str, ...]) -> None:
    assert match_aspects(text, item) == aspects  # type: ignore[arg-type]


def _bag_of_words(texts: Sequence[str]) -> list[list[float]]:
    """A tiny deterministic embedding: letter counts (enough to tell "sturdy" texts from others)."""
    return [[float(text.lower().count(chr(c))) for c in range(ord("a"), ord("z") + 1)] for text in texts]


def test_a_point_naming_no_aspect_is_matched_by_meaning_when_an_embedder_is_given() -> None:
    calls: list[int] = []

    def embed(texts: Sequence[str]) -> list[list[float]]:
        calls.append(len(texts))
        return _bag_of_words(texts)

    matcher = AspectMatcher(HEADPHONES, embed=embed, threshold=0.0)
    assert matcher.match("Feels cheap") != ()
    assert matcher.match("Great sound") == ("sound",)  # keywords first: no embedding
    matcher.match("Feels cheap")
    assert calls == [1, 3 * len(HEADPHONES.profile), 1]  # the aspects' descriptions are embedded once
    assert AspectMatcher(HEADPHONES, embed=embed, threshold=1.01).match("Feels cheap") == ()


# --------------------------------------------------------------------------- the metrics


def _reviews(key: str) -> dict[str, Review]:
    return {r.id: r for r in generate_reviews(TARGET_SET) if r.product == key}


def _mentioning(reviews: dict[str, Review], aspect: str, polarity: Polarity) -> list[str]:
    return [d for d, r in reviews.items() if r.polarity_of(aspect) is polarity]


def _point(kind: PointKind, text: str, ids: Sequence[str]) -> SummaryPoint:
    return SummaryPoint(kind=kind, text=text, document_ids=tuple(ids), count=len(ids))


def test_a_faithful_summary_scores_full_marks_from_the_ground_truth() -> None:
    truth = _reviews("aurora-x2")
    frequent = frequent_aspects(list(truth.values()))
    names = {
        "sound": "Great sound quality",
        "battery": "Long battery life",
        "comfort": "Uncomfortable after long wear",
        "noise_cancelling": "Effective noise cancelling",
        "price": "Too expensive",
        "connection": "Bluetooth connection drops",
    }
    points = [
        _point(
            PointKind.PRO if f.polarity is Polarity.POSITIVE else PointKind.CON,
            names[f.aspect],
            _mentioning(truth, f.aspect, f.polarity or Polarity.POSITIVE)[:10],
        )
        for f in frequent
    ]
    result = SummaryResult(points=tuple(points), documents_read=len(truth))
    evaluation = evaluate_summary(result, selected=truth, truth=truth)
    assert evaluation.citation_validity == 1.0
    assert evaluation.coverage == 1.0
    assert evaluation.polarity_accuracy == 1.0
    assert evaluation.faithfulness_ground_truth == 1.0
    assert evaluation.faithfulness is None  # no judge asked
    assert evaluation.citations == evaluation.citations_checked == 10 * len(frequent)
    check = evaluation.points[0]
    assert check.true_count == frequent[0].documents
    metrics = evaluation.metrics()
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert "faithfulness" not in metrics
    assert evaluation.to_dict()["missed"] == []


def test_wrong_citations_polarity_and_missing_aspects_are_counted() -> None:
    truth = _reviews("brewmaster-500")
    good = _mentioning(truth, "taste", Polarity.POSITIVE)[:3]
    bitter = _mentioning(truth, "taste", Polarity.NEGATIVE)[:1]
    dirty = _mentioning(truth, "cleaning", Polarity.NEGATIVE)[:4]
    points = (
        # two valid citations, one of a review that says the opposite
        _point(PointKind.PRO, "Rich, smooth coffee", [*good[:2], *bitter]),
        # a con labelled as a pro: its citations criticise cleaning, so all four are wrong for a pro
        _point(PointKind.PRO, "Cleaning is a chore", dirty),
        # a document the job did not select
        _point(PointKind.CON, "Loud pump", ["someone-else"]),
    )
    selected = set(truth)
    evaluation = evaluate_summary(
        SummaryResult(points=points, documents_read=len(truth)), selected=selected, truth=truth
    )
    assert evaluation.citations == 2 + 1 + 4 + 1
    assert evaluation.citations_valid == 2
    assert evaluation.citation_validity == pytest.approx(2 / 8)
    first, second, third = evaluation.points
    assert (first.valid, first.checked, first.polarity_correct, first.supported_ground_truth) == (2, 3, True, True)
    assert (second.valid, second.polarity_correct, second.supported_ground_truth) == (0, False, False)
    assert third.outside == 1 and third.polarity_correct is None
    assert evaluation.polarity_accuracy == 0.5
    # covered: taste+ only (the cleaning point is a pro, the frequent pair is cleaning-; the noise point
    # cites nothing valid but still names noise with the right polarity: coverage is about what it says)
    covered = {(f.aspect, f.polarity) for f in evaluation.frequent if f.covered}
    assert covered == {("taste", Polarity.POSITIVE), ("noise", Polarity.NEGATIVE)}
    assert evaluation.coverage == pytest.approx(2 / len(evaluation.frequent))


def test_themes_count_aspects_of_either_polarity() -> None:
    truth = _reviews("trailpack-30")
    waterproof = [d for d, r in truth.items() if r.polarity_of("waterproof") is not None][:5]
    result = SummaryResult(points=(_point(PointKind.THEME, "Water resistance", waterproof),), documents_read=1)
    evaluation = evaluate_summary(result, selected=truth, truth=truth)
    assert evaluation.citation_validity == 1.0
    assert evaluation.polarity_accuracy is None
    assert all(f.polarity is None for f in evaluation.frequent)
    assert [f.aspect for f in evaluation.frequent if f.covered] == ["waterproof"]


class ScriptedModel:
    """A ChatModel that replies from a script and keeps the prompts it got (the judge's tests do the same)."""

    name = "scripted"
    context_tokens = 2048

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        self.prompts.append(turns[-1].content)
        yield ChatDelta(text=self.replies.pop(0))
        yield ChatDelta(text="", usage=Usage(prompt_tokens=10, completion_tokens=1))


def test_the_judge_decides_faithfulness_and_the_citations_the_ground_truth_cannot() -> None:
    truth = _reviews("aurora-x2")
    sound = _mentioning(truth, "sound", Polarity.POSITIVE)[:2]
    gift = [d for d, r in truth.items() if "gift" in r.text][:2]
    points = (
        _point(PointKind.PRO, "Great sound quality", sound),  # mapped: citations by the ground truth
        _point(PointKind.PRO, "Makes a good gift", gift),  # no aspect: citations by the judge
    )
    # Replies in order: point 1 faithfulness; point 2 citation 1, citation 2; point 2 faithfulness.
    model = ScriptedModel(["Yes.", "yes", "No.", "Yes"])
    judge = ChatModelJudge(model)
    evaluation = evaluate_summary(
        SummaryResult(points=points, documents_read=len(truth)), selected=truth, truth=truth, judge=judge
    )
    assert model.replies == []
    first, second = evaluation.points
    assert (first.checked, first.by_judge, first.valid, first.supported) == (2, 0, 2, True)
    assert (second.checked, second.by_judge, second.valid, second.supported) == (2, 2, 1, True)
    assert evaluation.faithfulness == 1.0
    assert evaluation.citation_validity == pytest.approx(3 / 4)
    assert evaluation.judge == "scripted"
    # the faithfulness question shows the point and the texts of the documents it cites
    assert "Great sound quality" in model.prompts[0]
    assert all(truth[d].text[:30] in model.prompts[0] for d in sound)
    assert truth[gift[0]].text in model.prompts[1] and truth[gift[1]].text not in model.prompts[1]


def test_without_a_judge_unplaceable_citations_stay_unchecked() -> None:
    truth = _reviews("aurora-x2")
    gift = [d for d, r in truth.items() if "gift" in r.text][:3]
    result = SummaryResult(points=(_point(PointKind.PRO, "Makes a good gift", gift),), documents_read=3)
    evaluation = evaluate_summary(result, selected=truth, truth=truth)
    assert evaluation.citations_checked == 0 and evaluation.citation_validity is None
    assert evaluation.to_dict()["citations_unchecked"] == 3


def test_evaluations_of_several_jobs_combine_micro_averaged() -> None:
    one = _reviews("aurora-x2")
    two = _reviews("trailpack-30")
    a = evaluate_summary(
        SummaryResult(
            points=(_point(PointKind.PRO, "Great sound", _mentioning(one, "sound", Polarity.POSITIVE)[:3]),),
            documents_read=1,
        ),
        selected=one,
        truth=one,
    )
    b = evaluate_summary(
        SummaryResult(
            points=(_point(PointKind.PRO, "Leaks in the rain", _mentioning(two, "waterproof", Polarity.NEGATIVE)[:1]),),
            documents_read=1,
        ),
        selected=two,
        truth=two,
    )
    both = combine([a, b])
    assert both.citation_validity == pytest.approx(3 / 4)
    assert both.coverage == pytest.approx((1 + 0) / (len(a.frequent) + len(b.frequent)))
    assert both.documents == len(one) + len(two)
    with pytest.raises(InvalidInput):
        combine([])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput):
        evaluate_summary(SummaryResult(points=(), documents_read=0), selected=(), truth={}, frequent_share=0.0)
    with pytest.raises(InvalidInput):
        generate_reviews(0)


# --------------------------------------------------------------------------- the bench's pure parts


def test_reviews_become_documents_whose_metadata_leads_back_to_the_ground_truth() -> None:
    from quarry.evaluation.summary_bench import document_items, truth_of
    from quarry.models import Document, DocumentSource, Workspace

    workspace = Workspace(id="ws", name="reviews", owner="eval", embedding_model="minilm", dimensions=384)
    reviews = generate_reviews(9)
    items = document_items(workspace, reviews)
    documents = [document for document, _ in items]
    assert [d.id for d in documents] == [r.id for r in reviews]
    assert all(parsed.text == r.text for (_, parsed), r in zip(items, reviews, strict=True))
    stranger = Document(id="notes", workspace_id="ws", name="notes", source=DocumentSource.TEXT)
    tampered = Document(
        id="odd",
        workspace_id="ws",
        name="odd",
        source=DocumentSource.TEXT,
        metadata={"fields": {**reviews[0].fields(), "review_id": "nonsense"}},
    )
    truth = truth_of([*documents, stranger, tampered])
    assert truth == {r.id: r for r in reviews}


def test_memory_growth_is_fitted_after_the_first_batch() -> None:
    from quarry.evaluation.summary_bench import rss_slope

    loading = [(0.0, 500.0, 0), (1.0, 1200.0, 0)]  # the models load: not growth
    flat = loading + [(2.0 + i, 1200.0 + (i % 2), 100 * (i + 1)) for i in range(20)]
    growing = loading + [(2.0 + i, 1200.0 + 5 * i, 100 * (i + 1)) for i in range(20)]
    slope_flat = rss_slope(flat)
    assert slope_flat is not None and abs(slope_flat) < 1.0
    assert rss_slope(growing) == pytest.approx(50.0)  # 5 MB per 100 documents
    assert rss_slope(loading) is None


def test_the_judge_is_calibrated_on_pairs_with_known_answers() -> None:
    from quarry.evaluation.summaries_eval import calibrate_judge, calibration_pairs

    pairs = calibration_pairs(12)
    assert len(pairs) == 12 and sum(p.supported for p in pairs) == 6
    assert calibration_pairs(12) == pairs  # seeded
    texts = {r.text for r in generate_reviews(600)}
    assert all(pair.review in texts for pair in pairs)
    naysayer = ChatModelJudge(ScriptedModel(["No."] * len(pairs)))  # what the 0.5B local model does
    figures = calibrate_judge(naysayer, pairs)
    assert figures["accuracy"] == 0.5 and figures["yes_rate"] == 0.0
    assert figures["by_case"]["same"] == {"correct": 0, "pairs": 6}
    with pytest.raises(InvalidInput):
        calibration_pairs(1)
