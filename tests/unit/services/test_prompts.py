"""Prompt building and the follow-up condensation guard."""

from __future__ import annotations

from quarry.models import Chunk, Hit, Message, Role
from quarry.services.prompts import condense_turns, grounded_turns, standalone_question

HISTORY = [
    Message("s", "1", Role.USER, "What is the capital of Zorbania?"),
    Message("s", "2", Role.ASSISTANT, "The capital of Zorbania is Plimsk [1]."),
]


def test_a_rewrite_that_carries_the_subject_is_kept() -> None:
    assert standalone_question("How many people live in Zorbania?", "and its population?", HISTORY) == (
        "How many people live in Zorbania?"
    )


def test_a_rewrite_that_lost_the_subject_falls_back_to_the_previous_question() -> None:
    for bad in ["What about its population?", "", "Plimsk has 1.5 million people", "x" * 400]:
        assert standalone_question(bad, "and its population?", HISTORY) == (
            "What is the capital of Zorbania? and its population?"
        )


def test_without_history_the_question_stands_alone() -> None:
    assert standalone_question("anything", "What is a zorb?", []) == "What is a zorb?"


def test_grounded_prompt_numbers_the_sources_after_the_examples() -> None:
    hits = [Hit(Chunk("w", "d", 0, "Plimsk lies on the Vell.", 0, 24, title="Geo"), 0.5)]
    turns = grounded_turns("Where is Plimsk?", hits, HISTORY)
    assert turns[0].role is Role.SYSTEM and "[1]" in turns[0].content
    assert turns[-1].role is Role.USER
    assert turns[-1].content.startswith("Sources:\n[1] Geo\nPlimsk lies on the Vell.")
    assert turns[-1].content.endswith("Question: Where is Plimsk?")
    assert [t.content for t in turns[-3:-1]] == [m.content for m in HISTORY]


def test_condense_prompt_ends_with_the_conversation_and_follow_up() -> None:
    turns = condense_turns(HISTORY, "and its population?")
    assert turns[-1].content.endswith("Follow-up: and its population?")
    assert "User: What is the capital of Zorbania?" in turns[-1].content
