"""What every ``ChatModel`` must do. Supply three fixtures:

* ``chat_model``: the adapter;
* ``unreachable_chat_model``: the same adapter whose model cannot be had (a file llama.cpp cannot load,
  an endpoint that answers "access denied");
* ``open_upstream_streams``: a callable giving how many generation streams the adapter opened on its
  model and has not closed yet.

A stream is the answer's text deltas (never empty), then exactly one empty ``ChatDelta`` carrying the
usage. The port has no stop sequences: a model stops by itself or at ``max_tokens``, never past it. A
consumer stops an answer (the user's "stop", a connection gone) by closing the iterator it was given;
the adapter must then close its stream on the model at once and yield nothing more.

Generation is kept to a handful of tokens: the local model runs on two CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import cast

import pytest

from quarry.errors import InvalidInput, ModelUnavailable
from quarry.models import Role
from quarry.ports import ChatDelta, ChatModel, ChatTurn

__all__ = ["QUESTION", "ChatModelContract"]

QUESTION = [
    ChatTurn(Role.SYSTEM, "Answer in one short sentence."),
    ChatTurn(Role.USER, "Count from one to twenty."),
]
SHORT = 6  # tokens: enough for a few deltas, few enough for a CPU


def _split(deltas: list[ChatDelta]) -> tuple[list[ChatDelta], ChatDelta]:
    *texts, final = deltas
    return texts, final


class ChatModelContract:
    def test_it_is_a_chat_model_with_a_name_and_a_context(self, chat_model: ChatModel) -> None:
        assert isinstance(chat_model, ChatModel)
        assert isinstance(chat_model.name, str) and chat_model.name
        assert isinstance(chat_model.context_tokens, int) and chat_model.context_tokens > 0

    def test_a_stream_is_text_deltas_then_exactly_one_usage(self, chat_model: ChatModel) -> None:
        deltas = list(chat_model.stream(QUESTION, max_tokens=SHORT, temperature=0.0))
        texts, final = _split(deltas)
        assert texts, "the model said nothing"
        assert all(delta.text and delta.usage is None for delta in texts)
        assert final.text == ""
        assert final.usage is not None
        assert 1 <= final.usage.completion_tokens <= SHORT
        assert final.usage.prompt_tokens >= 0

    def test_max_tokens_is_never_passed(self, chat_model: ChatModel) -> None:
        for limit in (1, 3):
            texts, final = _split(list(chat_model.stream(QUESTION, max_tokens=limit, temperature=0.0)))
            assert 1 <= len(texts) <= limit  # one delta per token at most
            assert final.usage is not None and final.usage.completion_tokens <= limit

    def test_closing_the_stream_closes_it_upstream_and_nothing_more_comes(
        self, chat_model: ChatModel, open_upstream_streams: Callable[[], int]
    ) -> None:
        stream: Iterator[ChatDelta] = chat_model.stream(QUESTION, max_tokens=SHORT, temperature=0.0)
        assert hasattr(stream, "close"), "a consumer must be able to stop the answer"
        first = next(stream)
        assert first.text and first.usage is None
        assert open_upstream_streams() == 1
        cast(Generator[ChatDelta, None, None], stream).close()
        assert open_upstream_streams() == 0
        with pytest.raises(StopIteration):
            next(stream)
        # the model is free again: the next answer comes whole
        *_, final = chat_model.stream(QUESTION, max_tokens=2, temperature=0.0)
        assert final.usage is not None
        assert open_upstream_streams() == 0

    @pytest.mark.parametrize(
        ("turns", "max_tokens", "temperature"),
        [
            (QUESTION, 0, 0.0),
            (QUESTION, SHORT, -0.5),
            ([ChatTurn(Role.SYSTEM, "Be brief.")], SHORT, 0.0),
            ([ChatTurn(Role.USER, "   ")], SHORT, 0.0),
        ],
        ids=["no-tokens", "negative-temperature", "no-user-turn", "blank-user-turn"],
    )
    def test_a_request_no_model_can_answer_is_invalid_input(
        self,
        chat_model: ChatModel,
        open_upstream_streams: Callable[[], int],
        turns: list[ChatTurn],
        max_tokens: int,
        temperature: float,
    ) -> None:
        with pytest.raises(InvalidInput):
            list(chat_model.stream(turns, max_tokens=max_tokens, temperature=temperature))
        assert open_upstream_streams() == 0

    def test_a_model_that_cannot_be_had_is_model_unavailable(self, unreachable_chat_model: ChatModel) -> None:
        with pytest.raises(ModelUnavailable):
            list(unreachable_chat_model.stream(QUESTION, max_tokens=SHORT, temperature=0.0))
