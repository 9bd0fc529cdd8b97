"""ChatService on the fakes: sessions and ownership, grounded answers and the relevance floor, the follow-up
condensation and its guard, answering a message once, cancellation, usage.

The chat model is scripted (its replies are the test's input); what is checked is what the service does
with them: which calls it makes, what it retrieves, what it stores.
"""

from __future__ import annotations

import pytest

from quarry.errors import NotFound
from quarry.models import Role, Usage
from quarry.services.chat import AlreadyAnswered, ChatRequest, question_id
from quarry.services.prompts import NO_ANSWER, condense_turns
from quarry.services.usage import usage_entry
from tests.unit.services.chat_fixtures import (
    OWNER,
    QUESTION,
    STRANGER,
    UNANSWERABLE,
    WS,
    Chat,
    build_chat,
)


def _request(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(user=OWNER, text=text, workspace_id=WS, top_k=5, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- sessions and ownership


def test_a_new_session_is_the_users_titled_by_the_question_and_another_users_is_not_found() -> None:
    chat = build_chat()
    session = chat.service.open_session(OWNER, None, WS, "x" * 100)

    assert (session.owner, session.workspace_id, session.title) == (OWNER, WS, "x" * 59 + "…")  # a short title
    assert chat.service.open_session(OWNER, session.id, WS, "again") == session
    assert chat.service.owned_session(OWNER, session.id) == session
    with pytest.raises(NotFound):
        chat.service.open_session(STRANGER, session.id, None, "mine now?")
    with pytest.raises(NotFound):
        chat.service.owned_session(STRANGER, session.id)


def test_a_workspace_the_user_cannot_read_is_not_found_and_nothing_is_stored() -> None:
    chat = build_chat("never said")

    with pytest.raises(NotFound, match="workspace ws not found"):
        chat.service.answer(ChatRequest(user=STRANGER, text=QUESTION, workspace_id=WS))

    assert chat.history.sessions == {} and chat.model.calls == []


def test_another_users_session_is_not_answered_in() -> None:
    chat = build_chat("It is 2.4 metres wide [1].", "no")
    outcome = chat.service.answer(_request(QUESTION))

    with pytest.raises(NotFound):
        chat.service.answer(ChatRequest(user=STRANGER, text="and now?", session_id=outcome.session.id))
    assert len(chat.model.calls) == 1


# --------------------------------------------------------------------------- answering


def test_a_grounded_answer_numbers_its_sources_and_stores_both_turns() -> None:
    chat = build_chat(["It is 2.4 ", "metres wide [1]."])
    tokens: list[str] = []

    outcome = chat.service.answer(_request(QUESTION), message_id="m1", on_token=tokens.append)

    answer = outcome.answer
    assert tokens == ["It is 2.4 ", "metres wide [1]."]
    assert answer.text == "It is 2.4 metres wide [1]." and answer.grounded
    assert [(c.n, c.document_id) for c in answer.citations] == [(1, "plimsk")]
    prompt = chat.model.calls[0].turns[-1].content
    assert "[1] plimsk" in prompt and "Tollan" not in prompt  # the passage below the relevance floor is left out
    assert prompt.endswith(f"Question: {QUESTION}")
    stored = chat.history.list_messages(outcome.session.id).items
    assert [(m.id, m.role, m.content) for m in stored] == [
        (question_id("m1"), Role.USER, QUESTION),
        ("m1", Role.ASSISTANT, "It is 2.4 metres wide [1]."),
    ]
    assert stored[1].citations == answer.citations and stored[1].metadata["cancelled"] is False


def test_the_models_request_carries_the_users_settings() -> None:
    chat = build_chat("It is 2.4 metres wide [1].")

    chat.service.answer(_request(QUESTION, temperature=0.7, max_tokens=99))

    assert (chat.model.calls[0].temperature, chat.model.calls[0].max_tokens) == (0.7, 99)


def test_without_a_relevant_passage_the_answer_is_i_dont_know_and_the_model_is_not_called() -> None:
    chat = build_chat()
    tokens: list[str] = []

    outcome = chat.service.answer(_request(UNANSWERABLE), on_token=tokens.append)

    assert outcome.answer.text == NO_ANSWER and tokens == [NO_ANSWER]
    assert not outcome.answer.grounded and outcome.answer.citations == ()
    assert chat.model.calls == [] and outcome.answer.usage == Usage()


def test_without_a_workspace_the_model_answers_from_the_conversation_alone() -> None:
    chat = build_chat("Hello.")

    outcome = chat.service.answer(ChatRequest(user=OWNER, text="Hi there"))

    assert outcome.answer.text == "Hello." and not outcome.answer.grounded
    assert chat.model.calls[0].turns[-1].content == "Hi there"


# --------------------------------------------------------------------------- the follow-up and its guard


def _after_first_answer(*replies: str | list[str]) -> tuple[Chat, str]:
    chat = build_chat("It is 2.4 metres wide [1].", *replies)
    session = chat.service.answer(_request(QUESTION)).session
    return chat, session.id


def test_a_first_question_is_not_condensed() -> None:
    chat = build_chat("It is 2.4 metres wide [1].")

    outcome = chat.service.answer(_request(QUESTION))

    assert len(chat.model.calls) == 1 and outcome.answer.standalone_question == QUESTION


def test_a_follow_up_is_condensed_first_and_a_rewrite_that_keeps_the_subject_is_searched() -> None:
    rewrite = "How old is the Plimsk observatory?"
    chat, session_id = _after_first_answer(rewrite, "It opened in 1911 [1].")
    history = chat.history.recent_messages(session_id, limit=6)

    outcome = chat.service.answer(_request("how old is it?", session_id=session_id))

    condense, answer = chat.model.calls[1:]
    assert condense.turns == condense_turns(history, "how old is it?")
    assert (condense.temperature, condense.max_tokens) == (0.0, 64)
    assert outcome.answer.standalone_question == rewrite
    assert answer.turns[-1].content.endswith(f"Question: {rewrite}")
    assert outcome.answer.grounded and outcome.answer.text == "It opened in 1911 [1]."


@pytest.mark.parametrize(
    "rewrite",
    ["How old is it?", "It opened in 1911.", ""],
    ids=["echoes the follow-up", "answers instead", "says nothing"],
)
def test_a_rewrite_that_lost_the_subject_is_replaced_by_the_previous_question_and_the_follow_up(rewrite: str) -> None:
    chat, session_id = _after_first_answer(rewrite, "It opened in 1911 [1].")

    outcome = chat.service.answer(_request("how old is it?", session_id=session_id))

    guarded = f"{QUESTION} how old is it?"
    assert outcome.answer.standalone_question == guarded
    assert chat.model.calls[2].turns[-1].content.endswith(f"Question: {guarded}")
    assert outcome.answer.grounded  # "how old is it?" alone finds no passage above the floor


def test_the_condensing_call_counts_in_the_answers_usage() -> None:
    chat, session_id = _after_first_answer("How old is the Plimsk observatory?", ["It opened ", "in 1911 [1]."])

    outcome = chat.service.answer(_request("how old is it?", session_id=session_id), message_id="m2")

    condense_prompt = sum(len(t.content.split()) for t in chat.model.calls[1].turns)
    answer_prompt = sum(len(t.content.split()) for t in chat.model.calls[2].turns)
    assert outcome.answer.usage == Usage(prompt_tokens=condense_prompt + answer_prompt, completion_tokens=1 + 2)
    stored = chat.history.get_message(session_id, "m2")
    assert stored is not None and stored.metadata["usage"] == {
        "prompt_tokens": condense_prompt + answer_prompt,
        "completion_tokens": 3,
    }


# --------------------------------------------------------------------------- once, and cancellation


def test_a_message_id_is_answered_once_and_a_second_run_does_no_work() -> None:
    chat = build_chat("It is 2.4 metres wide [1].", "a second answer that must not be asked for")
    first = chat.service.answer(_request(QUESTION), message_id="m1")

    with pytest.raises(AlreadyAnswered):
        chat.service.answer(_request(QUESTION, session_id=first.session.id), message_id="m1")

    assert len(chat.model.calls) == 1
    assert len(chat.history.list_messages(first.session.id).items) == 2
    again = usage_entry(message_id="m1", user=OWNER, workspace_id=WS, model="scripted", usage=Usage())
    assert not chat.ledger.record(again)  # the first run counted this message already


def test_a_cancelled_answer_stops_streaming_keeps_what_was_said_and_closes_the_stream() -> None:
    chat = build_chat(["It is ", "2.4 metres ", "wide [1]."])
    tokens: list[str] = []

    outcome = chat.service.answer(_request(QUESTION), on_token=tokens.append, cancelled=lambda: len(tokens) >= 1)

    assert outcome.cancelled and tokens == ["It is "]
    assert outcome.answer.text == "It is"
    assert chat.model.closed == 1
    assert outcome.answer.usage == Usage(completion_tokens=1)  # what was streamed, not what was planned
    stored = chat.history.get_message(outcome.session.id, outcome.message_id)
    assert stored is not None and stored.metadata["cancelled"] is True
