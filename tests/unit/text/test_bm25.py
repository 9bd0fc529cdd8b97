"""The BM25 reference (``quarry.text.bm25``) against scores worked out by hand.

Corpus: "cat sat" (2 terms), "cat cat dog" (3), "bird" (1): N = 3, avgdl = 2, df(cat) = 2, df(dog) = 1.
With k1 = 1.2 and b = 0.75 the length norm k1 * (1 - b + b * dl / avgdl) is 1.2 for "cat sat" and 1.65 for
"cat cat dog".
"""

from __future__ import annotations

import math

import pytest

from quarry.text.bm25 import BM25, query_terms

TEXTS = ["cat sat", "cat cat dog", "bird"]
IDF_CAT = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # ln 1.6
IDF_DOG = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # ln 8/3


def _bm25(**kwargs: float) -> BM25:
    return BM25(TEXTS, analyzer=str.split, **kwargs)


def test_corpus_statistics() -> None:
    bm25 = _bm25()
    assert (bm25.n, bm25.avgdl, bm25.df("cat"), bm25.df("dog"), bm25.df("fish")) == (3, 2.0, 2, 1, 0)
    assert bm25.idf("cat") == pytest.approx(math.log(1.6))
    assert bm25.idf("dog") == pytest.approx(math.log(8 / 3))


def test_one_term_scores_every_text_holding_it() -> None:
    scores = _bm25().scores("cat")
    assert set(scores) == {0, 1}  # "bird" holds no query term: not scored at all
    assert scores[0] == pytest.approx(IDF_CAT * 1 * 2.2 / (1 + 1.2))  # = idf: a text of average length, tf 1
    assert scores[1] == pytest.approx(IDF_CAT * 2 * 2.2 / (2 + 1.65))


def test_terms_add_up() -> None:
    scores = _bm25().scores("cat dog")
    assert scores[0] == pytest.approx(IDF_CAT)
    assert scores[1] == pytest.approx(IDF_CAT * 4.4 / 3.65 + IDF_DOG * 2.2 / (1 + 1.65))


def test_a_repeated_query_term_counts_each_time_unless_asked_otherwise() -> None:
    bm25 = _bm25()
    twice = bm25.scores("cat cat")
    assert twice[1] == pytest.approx(2 * IDF_CAT * 4.4 / 3.65)
    once = bm25.scores(query_terms(["cat", "cat"], repeated=False))
    assert once[1] == pytest.approx(IDF_CAT * 4.4 / 3.65)


def test_b_zero_turns_length_normalisation_off_and_k1_zero_makes_term_frequency_binary() -> None:
    assert _bm25(b=0.0).scores("cat")[1] == pytest.approx(IDF_CAT * 2 * 2.2 / (2 + 1.2))
    flat = _bm25(k1=0.0).scores("cat")
    assert flat[0] == pytest.approx(IDF_CAT) and flat[1] == pytest.approx(IDF_CAT)


def test_the_analyzer_is_the_callers() -> None:
    lowered = BM25(["Cat SAT", "dog"], analyzer=lambda text: text.lower().split())
    assert set(lowered.scores("CAT")) == {0}
    assert BM25(["Cat SAT", "dog"], analyzer=str.split).scores("cat") == {}


def test_nothing_to_score() -> None:
    assert BM25([], analyzer=str.split).scores("cat") == {}
    assert _bm25().scores("fish") == {}
    assert _bm25().scores("") == {}


@pytest.mark.parametrize(("k1", "b"), [(-0.1, 0.75), (math.inf, 0.75), (1.2, 1.5), (1.2, -0.1)])
def test_parameters_out_of_range_are_refused(k1: float, b: float) -> None:
    with pytest.raises(ValueError, match="BM25"):
        _bm25(k1=k1, b=b)
