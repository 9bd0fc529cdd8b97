"""Answer metrics: SQuAD EM/F1, citations, refusals, sentence splitting, faithfulness, the whole report."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from quarry.errors import InvalidInput
from quarry.evaluation.answers import (
    REFUSAL_PHRASES,
    AnswerRecord,
    Judge,
    check_citations,
    cited_sources,
    evaluate_answers,
    exact_match,
    faithfulness,
    is_refusal,
    normalize_answer,
    split_sentences,
    strip_citations,
    token_f1,
)


class WordOverlapJudge:
    """A deterministic stand-in for the LLM judge port: a statement is supported when each of its words
    longer than three letters occurs in one of the passages. Records what it was asked."""

    def __init__(self, correctness: float = 0.5) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.correctness = correctness

    def judge(self, question: str, passage_texts: Sequence[str], statement: str) -> bool:
        self.calls.append((statement, tuple(passage_texts)))
        words = [w for w in normalize_answer(statement).split() if len(w) > 3]
        text = " ".join(normalize_answer(p) for p in passage_texts)
        return all(word in text.split() for word in words)

    def correct(self, question: str, reference: str, answer: str) -> float:
        return self.correctness


def test_the_stand_in_judge_satisfies_the_port() -> None:
    assert isinstance(WordOverlapJudge(), Judge)


def test_squad_normalisation_exact_match_and_f1() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a pear and THE plum.") == "apple pear and plum"
    assert exact_match("Yes.", "yes") == 1.0
    assert exact_match("The answer is yes [1].", "yes") == 0.0
    assert exact_match("18 months [2]", "18 months") == 1.0  # citations are stripped before scoring
    # prediction "about 18 months" vs reference "18 months": overlap 2, precision 2/3, recall 1
    assert token_f1("about 18 months", "18 months") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert token_f1("no idea", "18 months") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "a") == 1.0  # both normalise to nothing
    assert token_f1("", "yes") == 0.0
    # repeated tokens count once per occurrence in both
    assert token_f1("yes yes", "yes") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_citations_are_parsed_and_checked_against_the_sources() -> None:
    answer = "Paris is the capital [1]. It has 2 million people [2, 3]. See [1] again."
    assert cited_sources(answer) == [1, 2, 3]
    assert strip_citations(answer) == "Paris is the capital . It has 2 million people . See again."
    ok = check_citations(answer, 3)
    assert ok.valid is True and ok.invalid == ()
    bad = check_citations(answer, 2)
    assert bad.valid is False and bad.invalid == (3,)
    assert check_citations("Zero is not a source [0].", 2).invalid == (0,)
    uncited = check_citations("No sources here.", 2)
    assert uncited.valid is None and not uncited.has_citations


def test_refusals_match_the_chat_service_wording() -> None:
    assert "i don't know" in REFUSAL_PHRASES and "does not contain" in REFUSAL_PHRASES
    assert is_refusal("I don't know.")
    assert is_refusal("I don\u2019t know based on these sources.")  # curly apostrophe
    assert is_refusal("The workspace does not contain\ninformation about that.")
    assert not is_refusal("Lincoln was the sixteenth president [1].")


def test_sentence_splitter_keeps_abbreviations_and_attaches_trailing_citations() -> None:
    text = "Dr. Smith met J. K. Rowling in the U.S. in 1999. They spoke, e.g. about books! Was it fun? Yes. [2]"
    assert split_sentences(text) == [
        "Dr. Smith met J. K. Rowling in the U.S. in 1999.",
        "They spoke, e.g. about books!",
        "Was it fun?",
        "Yes. [2]",
    ]
    assert split_sentences("Water boils at 100.5 degrees [1]. Ice melts [2].") == [
        "Water boils at 100.5 degrees [1].",
        "Ice melts [2].",
    ]
    assert split_sentences("It is red. [1] It is round [2].") == ["It is red. [1]", "It is round [2]."]
    assert split_sentences("   ") == []


def test_faithfulness_judges_each_sentence_against_the_passages_it_cites() -> None:
    passages = ["Lincoln was born in Kentucky.", "Lincoln signed the National Banking Act."]
    judge = WordOverlapJudge()
    answer = "Lincoln was born in Kentucky [1]. Lincoln signed the National Banking Act [1]. Lincoln liked cats."
    result = faithfulness("q", answer, passages, judge)
    # sentence 2 cites [1] which lacks "signed"/"national"/"banking": unsupported even though [2] has them
    # sentence 3 cites nothing: judged against the passages the answer cites ([1]), and "liked cats" is absent
    assert (result.statements, result.supported) == (3, 1)
    assert result.score == pytest.approx(1 / 3)
    assert judge.calls[0][1] == (passages[0],)
    assert judge.calls[2][1] == (passages[0],)
    assert result.unsupported_statements[0] == "Lincoln signed the National Banking Act ."


def test_faithfulness_with_no_citation_uses_all_passages_and_bad_citations_fail() -> None:
    passages = ["Paris is in France.", "Berlin is in Germany."]
    judge = WordOverlapJudge()
    assert faithfulness("q", "Berlin is in Germany.", passages, judge).score == 1.0
    assert judge.calls[-1][1] == tuple(passages)
    calls = len(judge.calls)
    assert faithfulness("q", "Berlin is in Germany [7].", passages, judge).score == 0.0
    assert len(judge.calls) == calls  # a statement citing only a missing source is not even judged
    assert faithfulness("q", "[1]", passages, judge).score is None  # nothing to judge


def test_evaluate_answers_aggregates_every_metric() -> None:
    passages = ("Lincoln was the sixteenth president.", "Lincoln was born in 1809.")
    records = [
        AnswerRecord(id="a", question="Q1", answer="yes [1]", passages=passages, reference="yes", latency_ms=10),
        AnswerRecord(
            id="b", question="Q2", answer="born in 1809 [2]", passages=passages, reference="1809", latency_ms=20
        ),
        AnswerRecord(
            id="c", question="Q3", answer="It was 1810 [5].", passages=passages, reference="1809", latency_ms=30
        ),
        AnswerRecord(id="d", question="Q4", answer="I don't know.", passages=passages, answerable=False, latency_ms=40),
        AnswerRecord(id="e", question="Q5", answer="I don't know.", passages=passages, reference="no", answerable=True),
        AnswerRecord(id="f", question="Q6", answer="Probably no.", passages=passages, reference="no"),
    ]
    report = evaluate_answers(records, judge=WordOverlapJudge(correctness=0.5))
    assert report.items == 6
    # scored for correctness: a, b, c, e, f (d is unanswerable)
    assert report.exact_match == pytest.approx(1 / 5)
    f1_b = 2 * (1 / 3) * 1 / (1 / 3 + 1)  # tokens born, in, 1809 against 1809
    f1_f = 2 * (1 / 2) * 1 / (1 / 2 + 1)  # tokens probably, no against no
    assert report.token_f1 == pytest.approx((1 + f1_b + 0 + 0 + f1_f) / 5)
    assert report.judge_correctness == pytest.approx(0.5)
    assert (report.cited_answers, report.uncited_answers) == (3, 3)
    assert report.citation_validity == pytest.approx(2 / 3)  # c cites [5] of 2 sources
    assert report.refusal_rate == pytest.approx(2 / 6)
    assert report.refusal_rate_unanswerable == 1.0
    assert report.false_refusal_rate == 1.0
    assert report.latency is not None and report.latency.count == 4 and report.latency.p50_ms == pytest.approx(25)
    items = {item.id: item for item in report.per_item}
    assert items["d"].faithfulness is None and items["d"].exact_match is None
    assert items["b"].faithfulness == 1.0  # "born" and "1809" are in source [2]
    assert items["c"].faithfulness == 0.0 and items["c"].citations_valid is False
    assert items["f"].faithfulness == 0.0 and items["f"].citations_valid is None
    json.dumps(report.to_dict())


def test_evaluate_answers_without_judge_or_references() -> None:
    report = evaluate_answers([AnswerRecord(question="Q", answer="Something [1].", passages=("x",))])
    assert report.exact_match is None and report.faithfulness is None and report.judge_correctness is None
    assert report.citation_validity == 1.0
    assert report.refusal_rate_unanswerable is None and report.latency is None
    with pytest.raises(InvalidInput):
        evaluate_answers([])


def test_a_judge_out_of_range_is_rejected() -> None:
    record = AnswerRecord(question="Q", answer="yes", reference="yes")
    with pytest.raises(InvalidInput, match=r"within 0\.\.1"):
        evaluate_answers([record], judge=WordOverlapJudge(correctness=4.0))


def test_the_chat_services_own_no_answer_reply_counts_as_a_refusal() -> None:
    prompts = pytest.importorskip("quarry.services.prompts")
    assert is_refusal(prompts.NO_ANSWER)
