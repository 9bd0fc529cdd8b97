"""The LLM judge: lenient reading of small-model replies, the prompts it sends, and its certain shortcuts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from quarry.evaluation.answers import AnswerRecord, Judge, evaluate_answers
from quarry.evaluation.judges import ChatModelJudge, parse_score, parse_yes_no
from quarry.models import Role, Usage
from quarry.ports import ChatDelta, ChatModel, ChatTurn


class ScriptedModel:
    """A ChatModel that replies from a script, streamed in pieces, and keeps every request it got."""

    name = "scripted"
    context_tokens = 2048

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[list[ChatTurn], int, float]] = []

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        self.requests.append((list(turns), max_tokens, temperature))
        reply = self.replies.pop(0)
        for start in range(0, len(reply), 2):
            yield ChatDelta(text=reply[start : start + 2])
        yield ChatDelta(text="", usage=Usage(prompt_tokens=10, completion_tokens=len(reply)))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Yes.", True),
        ("yes", True),
        ("**No**", False),
        ("Answer: yes, the passage says so", True),
        ("The statement is not supported.", False),
        ("The statement is supported by passage 1.", True),
        ("No, it does not.", False),
        ("  \n YES", True),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_yes_no_replies_are_read_leniently(reply: str, expected: bool | None) -> None:
    assert parse_yes_no(reply) is expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("0.7", 0.7),
        (".5", 0.5),
        ("Score: 1", 1.0),
        ("0", 0.0),
        ("70%", 0.7),
        ("4/5", 0.8),
        ("8", 0.8),  # a 0-10 scale
        ("85", 0.85),  # a 0-100 scale
        ("Yes.", 1.0),
        ("No.", 0.0),
        ("Wrong.", 0.0),
        ("Partly.", 0.5),
        ("partially correct", 0.5),
        ("Incorrect", 0.0),
        ("unclear", None),
        ("150", None),
        ("3/0", None),
    ],
)
def test_scores_are_read_from_numbers_and_words(reply: str, expected: float | None) -> None:
    score = parse_score(reply)
    if expected is None:
        assert score is None
    else:
        assert score == pytest.approx(expected)


def test_the_judge_implements_the_port_on_any_chat_model() -> None:
    model: ChatModel = ScriptedModel([])
    assert isinstance(ChatModelJudge(model), Judge)


def test_support_question_holds_passages_and_statement_and_runs_at_temperature_zero() -> None:
    model = ScriptedModel(["Yes."])
    judge = ChatModelJudge(model, max_tokens=6)
    supported = judge.judge(
        "When did the line open?", ["The Tollan line opened in 2011.", "Trains run at 160 km/h."], "It opened in 2011."
    )
    assert supported is True
    (turns, max_tokens, temperature) = model.requests[0]
    assert (max_tokens, temperature) == (6, 0.0)
    assert [t.role for t in turns] == [Role.SYSTEM, Role.USER]
    assert "The Tollan line opened in 2011." in turns[1].content
    assert "Trains run at 160 km/h." in turns[1].content
    assert "Statement: It opened in 2011." in turns[1].content
    assert turns[1].content.rstrip().endswith("Answer yes or no.")
    assert judge.stats.support_calls == 1


def test_a_statement_quoted_word_for_word_is_supported_without_asking() -> None:
    model = ScriptedModel([])
    judge = ChatModelJudge(model)
    assert judge.judge(
        "q", ["Ferries leave Kessel Bay every 40 minutes for Durn."], "Ferries leave Kessel Bay every 40 minutes."
    )
    assert model.requests == []
    assert judge.stats.verbatim == 1


def test_a_short_or_partial_word_match_still_goes_to_the_model() -> None:
    model = ScriptedModel(["no", "no"])
    judge = ChatModelJudge(model)
    assert judge.judge("q", ["Yes, the ferry runs."], "Yes.") is False  # too short to prove anything
    assert judge.judge("q", ["The ferries leave hourly."], "ferr leave hourly now") is False
    assert len(model.requests) == 2


def test_an_unreadable_verdict_counts_as_unsupported_and_is_recorded() -> None:
    judge = ChatModelJudge(ScriptedModel(["Maybe."]))
    assert judge.judge("q", ["A passage."], "A claim about something else.") is False
    assert judge.stats.unparsed == 1
    assert judge.stats.unparsed_samples == ["Maybe."]


def test_long_passages_are_cut_to_the_judge_budget() -> None:
    model = ScriptedModel(["yes"])
    judge = ChatModelJudge(model, max_passage_chars=50)
    judge.judge("q", ["word " * 100], "A statement that needs checking.")
    prompt = model.requests[0][0][1].content
    assert prompt.count("word") <= 10


def test_correctness_of_an_exact_answer_needs_no_model() -> None:
    model = ScriptedModel([])
    judge = ChatModelJudge(model)
    assert judge.correct("Who opened it?", "Ilse Marrow", "Ilse Marrow [1].") == 1.0
    assert model.requests == []
    assert judge.stats.exact_matches == 1


@pytest.mark.parametrize(("reply", "score"), [("Yes.", 1.0), ("Partly.", 0.5), ("No", 0.0), ("0.75", 0.75)])
def test_correctness_reads_the_model_verdict(reply: str, score: float) -> None:
    model = ScriptedModel([reply])
    judge = ChatModelJudge(model)
    assert judge.correct("Who opened it?", "Ilse Marrow", "It was opened by Marrow [1].") == pytest.approx(score)
    prompt = model.requests[0][0][1].content
    assert "Reference answer: Ilse Marrow" in prompt
    assert "Student answer: It was opened by Marrow." in prompt  # citation markers are not the judge's business
    assert prompt.rstrip().endswith("Answer yes or no.")  # offered "partly", the small model picks it every time


def test_a_refusal_to_a_question_with_a_reference_is_not_correct_and_needs_no_model() -> None:
    model = ScriptedModel([])
    judge = ChatModelJudge(model)
    assert judge.correct("Who opened it?", "Ilse Marrow", "I don't know.") == 0.0
    assert model.requests == []
    assert judge.stats.refusals == 1


def test_unreadable_correctness_scores_zero_and_is_recorded() -> None:
    judge = ChatModelJudge(ScriptedModel(["The answer mentions a person."]))
    assert judge.correct("Who?", "Ilse Marrow", "Someone else.") == 0.0
    assert judge.stats.unparsed == 1


def test_the_judge_drives_faithfulness_and_correctness_of_a_whole_evaluation() -> None:
    # correctness is asked first ("Partly."); of the two sentences the first is quoted from source 1,
    # the second goes to the model ("no")
    model = ScriptedModel(["Partly.", "no"])
    judge = ChatModelJudge(model)
    record = AnswerRecord(
        question="When did the Tollan line open, and how fast is it?",
        answer="The Tollan line opened in 2011 [1]. Trains run at 300 km/h [2].",
        passages=("The Tollan line opened in 2011.", "Trains run at up to 160 km/h."),
        reference="2011",
    )
    report = evaluate_answers([record], judge=judge)
    assert report.faithfulness == pytest.approx(0.5)
    assert report.judge_correctness == pytest.approx(0.5)
    assert [" ".join(s.replace(" .", ".").split()) for s in report.per_item[0].unsupported_statements] == [
        "Trains run at 300 km/h."
    ]
    assert judge.stats.verbatim == 1
    assert judge.stats.support_calls == 1
    assert judge.stats.correctness_calls == 1
    # the second sentence was judged against the passage it cites, and only that one
    support_prompt = model.requests[1][0][1].content
    assert "160 km/h" in support_prompt
    assert "Statement: Trains run at 300 km/h.\n" in support_prompt
    assert "opened in 2011" not in support_prompt
