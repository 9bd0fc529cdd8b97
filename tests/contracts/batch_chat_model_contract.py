"""What every ``BatchChatModel`` must do (``complete_many``). Supply the fixture ``batch_chat_model``.

``complete_many`` answers many requests greedily, together: one (text, usage) per request, in the order
given, whatever order they finish in; each answer what the request alone asks (no answer leaks into
another), never past ``max_tokens``; bad requests refused with ``InvalidInput`` before anything runs.
The contract asks for short answers a small model gets right: the word a request names.
"""

from __future__ import annotations

import pytest

from quarry.errors import InvalidInput
from quarry.models import Role
from quarry.ports import BatchChatModel, ChatTurn

__all__ = ["BatchChatModelContract"]

_SYSTEM = "You repeat the word the user gives you, once, and write nothing else."
WORDS = ("apple", "river", "yellow", "guitar", "window", "tiger", "pencil", "orange", "silver", "garden", "rocket")


def repeat(word: str, system: str = _SYSTEM) -> list[ChatTurn]:
    return [ChatTurn(Role.SYSTEM, system), ChatTurn(Role.USER, f"The word: {word}")]


class BatchChatModelContract:
    def test_it_is_a_batch_chat_model(self, batch_chat_model: BatchChatModel) -> None:
        assert isinstance(batch_chat_model, BatchChatModel)

    def test_each_request_gets_its_own_answer_in_order(self, batch_chat_model: BatchChatModel) -> None:
        """More requests than a local model decodes at once (8), so slots are reused as answers end."""
        answers = batch_chat_model.complete_many([repeat(word) for word in WORDS], max_tokens=6)
        assert len(answers) == len(WORDS)
        for word, (text, usage) in zip(WORDS, answers, strict=True):
            assert word in text.lower(), (word, text)
            assert not any(other in text.lower() for other in WORDS if other != word), (word, text)
            assert 1 <= usage.completion_tokens <= 6
            assert usage.prompt_tokens > 0

    def test_the_same_requests_again_get_the_same_answers(self, batch_chat_model: BatchChatModel) -> None:
        """Greedy and repeatable: a second call (the shared prompt kept from the first) answers alike."""
        requests = [repeat(word) for word in WORDS[:5]]
        first = batch_chat_model.complete_many(requests, max_tokens=6)
        again = batch_chat_model.complete_many(requests, max_tokens=6)
        assert [text for text, _ in first] == [text for text, _ in again]

    def test_requests_need_not_share_a_prompt(self, batch_chat_model: BatchChatModel) -> None:
        requests = [
            repeat("apple"),
            [ChatTurn(Role.USER, "Repeat this word once and write nothing else: river")],
            repeat("tiger", system="Write back the user's word in lower case, nothing more."),
        ]
        answers = batch_chat_model.complete_many(requests, max_tokens=6)
        assert [word in text.lower() for word, (text, _) in zip(("apple", "river", "tiger"), answers, strict=True)] == [
            True,
            True,
            True,
        ]

    def test_max_tokens_is_never_passed(self, batch_chat_model: BatchChatModel) -> None:
        long = [ChatTurn(Role.USER, "Count from one to fifty, in words, separated by commas.")]
        for limit in (1, 4):
            [(_, usage)] = batch_chat_model.complete_many([long], max_tokens=limit)
            assert usage.completion_tokens == limit

    def test_no_requests_is_no_answers(self, batch_chat_model: BatchChatModel) -> None:
        assert batch_chat_model.complete_many([], max_tokens=4) == []

    @pytest.mark.parametrize(
        ("requests", "max_tokens"),
        [([repeat("apple")], 0), ([repeat("apple"), [ChatTurn(Role.SYSTEM, "no user turn")]], 4)],
        ids=["max_tokens 0", "a request without a user turn"],
    )
    def test_bad_requests_are_refused(
        self, batch_chat_model: BatchChatModel, requests: list[list[ChatTurn]], max_tokens: int
    ) -> None:
        with pytest.raises(InvalidInput):
            batch_chat_model.complete_many(requests, max_tokens=max_tokens)

    def test_a_request_longer_than_the_context_is_refused(self, batch_chat_model: BatchChatModel) -> None:
        text = "word " * (batch_chat_model.context_tokens * 3)
        with pytest.raises(InvalidInput):
            batch_chat_model.complete_many([repeat("apple"), [ChatTurn(Role.USER, text)]], max_tokens=4)
        [(answer, _)] = batch_chat_model.complete_many([repeat("apple")], max_tokens=6)  # and it still works
        assert "apple" in answer.lower()
