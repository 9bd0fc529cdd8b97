"""Pure parts of `quarry eval answers`: reading the model's markers, pooling a corpus, run options."""

from __future__ import annotations

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.answers import check_citations
from quarry.evaluation.answers_run import AskOptions, model_text, pool_passages, reference_in_answer
from quarry.evaluation.qa_dataset import Passage


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Opened in 1987 [1].", "Opened in 1987 [1]."),
        ("Opened in 1987 [Source 2].", "Opened in 1987 [2]."),
        ("See [source 1, 3] and [1; 2].", "See [1, 3] and [1, 2]."),
        ("Out of range [7] stays.", "Out of range [7] stays."),
        ("A list [a] is no citation.", "A list [a] is no citation."),
    ],
)
def test_marker_variants_are_written_plainly_and_none_dropped(raw: str, expected: str) -> None:
    assert model_text(raw) == expected


def test_a_citation_to_a_missing_source_stays_visible_to_the_validity_check() -> None:
    check = check_citations(model_text("True [Source 1]. Also true [Source 6]."), sources=5)
    assert check.cited == (1, 6)
    assert check.invalid == (6,)
    assert check.valid is False


PASSAGES = [
    Passage("0", "Uruguay is a country in South America."),
    Passage("1", "Lincoln was the sixteenth President of the United States."),
    Passage("2", "The sixteenth century saw many changes."),
    Passage("3", "Avogadro studied molecular weight in Turin."),
    Passage("4", "Beetles are insects with hard wing covers."),
    Passage("5", "Lincoln grew a beard after a letter from Grace Bedell."),
]


def test_pooling_keeps_each_question_best_passages_in_file_order() -> None:
    pooled = pool_passages(PASSAGES, ["Who suggested Lincoln grow a beard?", "What are beetles?"], per_question=1)
    assert [p.id for p in pooled] == ["4", "5"]


def test_pooling_ranks_by_bm25() -> None:
    # passage 1 shares four terms, passage 2 two ("the", "sixteenth"), passage 5 one ("lincoln")
    pooled = pool_passages(PASSAGES, ["Was Lincoln the sixteenth President?"], per_question=2)
    assert [p.id for p in pooled] == ["1", "2"]


def test_pooled_distractors_are_sampled_reproducibly() -> None:
    first = pool_passages(PASSAGES, ["beetles"], per_question=1, distractors=2, seed=3)
    again = pool_passages(PASSAGES, ["beetles"], per_question=1, distractors=2, seed=3)
    assert first == again
    assert len(first) == 3
    assert "4" in {p.id for p in first}


def test_pooling_never_asks_for_more_distractors_than_there_are() -> None:
    assert len(pool_passages(PASSAGES, ["beetles"], per_question=1, distractors=100)) == len(PASSAGES)


@pytest.mark.parametrize(
    "kwargs", [{"per_question": 0}, {"distractors": -1}], ids=["no passages per question", "negative distractors"]
)
def test_pooling_rejects_nonsense(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidInput):
        pool_passages(PASSAGES, ["beetles"], **kwargs)


def test_pooling_needs_passages() -> None:
    with pytest.raises(InvalidInput, match="no passages"):
        pool_passages([], ["beetles"])


@pytest.mark.parametrize(
    "kwargs", [{"max_tokens": 0}, {"top_k": 0}, {"top_k": 21}, {"temperature": -0.1}], ids=lambda k: str(k)
)
def test_ask_options_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        AskOptions(**kwargs)  # type: ignore[arg-type]


def test_ask_options_default_to_a_repeatable_run() -> None:
    assert AskOptions().temperature == 0.0


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("Lincoln began his political career in 1832, at age 23 [1].", "1832", True),
        ("It was suggested by 11-year-old Grace Bedell.", "11-year-old Grace Bedell", True),
        ("The Legal Tender Act established The United States Note [2].", "the United States Note", True),
        ("Founded in 18321.", "1832", False),  # whole words only
        ("I don't know.", "yes", False),
        ("Anything.", "", False),
    ],
)
def test_reference_in_answer_counts_long_answers_that_hold_the_reference(
    answer: str, reference: str, expected: bool
) -> None:
    assert reference_in_answer(answer, reference) is expected
