"""ChatStreamService on the fakes: accepting a request, streaming one answer per job, cancellation, a
connection that goes away, errors, and the connection's token expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quarry.errors import NotFound
from quarry.local.cancellations import InMemoryCancellations
from quarry.protocol import ChatAction, ChatJob
from quarry.services.chat_stream import CHAT_TOPIC, ChatStreamService
from tests.fakes import FakeConnections, RecordingBus, RecordingNotifier
from tests.unit.services.chat_fixtures import OWNER, QUESTION, STRANGER, UNANSWERABLE, WS, Chat, build_chat

CONNECTION = "c-1"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Stream:
    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.bus = RecordingBus()
        self.notifier = RecordingNotifier()
        self.cancellations = InMemoryCancellations()
        self.connections = FakeConnections(clock=lambda: NOW)
        self.service = ChatStreamService(
            chat=chat.service,
            bus=self.bus,
            notifier=self.notifier,
            cancellations=self.cancellations,
            connections=self.connections,
            clock=lambda: NOW,
        )

    def submit(self, text: str = QUESTION, *, user: str = OWNER, **kw: object) -> ChatJob:
        action = ChatAction.model_validate({"action": "chat", "text": text, "workspace_id": WS, **kw})
        return self.service.submit(CONNECTION, user, action)

    def events(self) -> list[dict[str, object]]:
        return self.notifier.to(CONNECTION)

    def answer_events(self) -> list[dict[str, object]]:
        """The events after the progress ones: tokens, then final or error."""
        return [e for e in self.events() if e["type"] != "progress"]


def _stream(*replies: str | list[str]) -> Stream:
    return Stream(build_chat(*replies))


# --------------------------------------------------------------------------- accepting


def test_submit_opens_the_session_and_publishes_one_chat_job_for_the_worker() -> None:
    stream = _stream()

    job = stream.submit(top_k=3)

    [(topic, message, attributes)] = stream.bus.published
    assert (topic, attributes) == (CHAT_TOPIC, {"topic": CHAT_TOPIC, "direction": "in"})
    assert ChatJob.model_validate(message) == job
    assert (job.connection_id, job.user, job.request.text, job.request.top_k) == (CONNECTION, OWNER, QUESTION, 3)
    assert job.request.session_id == job.session_id
    assert stream.chat.history.get_session(job.session_id) is not None
    assert stream.chat.model.calls == []  # the answer is the worker's job


def test_each_submission_is_a_new_message() -> None:
    stream = _stream()
    first = stream.submit()

    second = stream.submit(session_id=first.session_id)

    assert second.session_id == first.session_id and second.message_id != first.message_id


def test_another_users_workspace_or_session_publishes_nothing() -> None:
    stream = _stream()
    with pytest.raises(NotFound):
        stream.submit(user=STRANGER)
    job = stream.submit()
    stream.bus.published.clear()

    with pytest.raises(NotFound):
        stream.service.submit(CONNECTION, STRANGER, ChatAction(action="chat", text="hi", session_id=job.session_id))

    assert stream.bus.published == []


# --------------------------------------------------------------------------- answering


def test_a_job_streams_numbered_tokens_then_one_final_answer() -> None:
    stream = _stream(["It is 2.4 ", "metres ", "wide [1]."])
    job = stream.submit()

    answer = stream.service.run(job)

    assert answer is not None and answer.text == "It is 2.4 metres wide [1]."
    *tokens, final = stream.answer_events()
    assert [(t["type"], t["sequence"], t["text"]) for t in tokens] == [
        ("token", 0, "It is 2.4 "),
        ("token", 1, "metres "),
        ("token", 2, "wide [1]."),
    ]
    assert all((t["session_id"], t["message_id"]) == (job.session_id, job.message_id) for t in tokens)
    assert (final["type"], final["answer"], final["message_id"]) == ("final", answer.text, job.message_id)
    assert final["stopped"] is False
    assert [c["document_id"] for c in final["citations"]] == ["plimsk"]  # type: ignore[attr-defined]


def test_a_redelivered_job_is_answered_once() -> None:
    stream = _stream("It is 2.4 metres wide [1].", "a second answer that must not be asked for")
    job = stream.submit()
    stream.service.run(job)
    sent = len(stream.events())

    assert stream.service.run(job) is None

    assert len(stream.events()) == sent and len(stream.chat.model.calls) == 1
    assert len(stream.chat.history.list_messages(job.session_id).items) == 2


def test_the_owner_cancels_and_the_answer_stops_after_the_token_in_flight() -> None:
    stream = _stream(["It is ", "2.4 metres ", "wide [1]."])
    job = stream.submit()
    stream.service.cancel(OWNER, job.session_id)

    answer = stream.service.run(job)

    assert answer is not None and answer.text == "It is"
    assert [e["type"] for e in stream.answer_events()] == ["token", "final"]
    assert stream.answer_events()[-1]["stopped"] is True  # the UI marks it stopped, not a complete answer
    assert stream.chat.model.closed == 1
    stored = stream.chat.history.get_message(job.session_id, job.message_id)
    assert stored is not None and stored.metadata["cancelled"] is True
    assert not stream.cancellations.take(job.session_id)  # the flag was consumed


def test_a_cancel_before_submitting_does_not_stop_the_next_question() -> None:
    stream = _stream(["It is ", "2.4 metres ", "wide [1]."])
    first = stream.submit()
    stream.service.cancel(OWNER, first.session_id)  # meant for an answer that already ended

    job = stream.submit(session_id=first.session_id)
    answer = stream.service.run(job)

    assert answer is not None and answer.text == "It is 2.4 metres wide [1]."


def test_another_user_cannot_cancel() -> None:
    stream = _stream()
    job = stream.submit()

    with pytest.raises(NotFound):
        stream.service.cancel(STRANGER, job.session_id)

    assert not stream.cancellations.take(job.session_id)


def test_a_connection_that_goes_away_stops_the_stream_and_the_answer_is_still_kept() -> None:
    stream = _stream(["It is ", "2.4 metres ", "wide [1]."])
    job = stream.submit()
    stream.notifier.drop_after(CONNECTION, 3)  # searching, reading, writing, then the first token...
    stream.notifier.drop_after(CONNECTION, 4)  # ...arrives, the second finds the connection gone

    answer = stream.service.run(job)

    assert answer is not None and answer.text == "It is 2.4 metres"
    assert [e["type"] for e in stream.answer_events()] == ["token"]  # no final to a gone connection
    assert stream.chat.model.closed == 1
    stored = stream.chat.history.get_message(job.session_id, job.message_id)
    assert stored is not None and stored.content == "It is 2.4 metres"


def test_a_refused_request_becomes_an_error_event() -> None:
    stream = _stream()
    job = stream.submit(model="no-such-model")

    assert stream.service.run(job) is None

    [error] = stream.answer_events()
    assert (error["type"], error["code"], error["session_id"]) == ("error", "invalid_input", job.session_id)
    assert "no-such-model" in str(error["message"])


def test_an_unexpected_failure_is_told_to_the_user_then_raised() -> None:
    stream = _stream()  # a script with no reply: the model fails
    job = stream.submit()

    with pytest.raises(AssertionError, match="no reply left"):
        stream.service.run(job)

    [error] = stream.answer_events()
    assert (error["type"], error["code"], error["message"]) == (
        "error",
        "internal_error",
        "the answer failed: ask again",
    )


# --------------------------------------------------------------------------- progress before the first token


def test_progress_says_searching_reading_n_sources_then_writing_before_any_token() -> None:
    stream = _stream(["It is 2.4 ", "metres wide [1]."])
    job = stream.submit()

    stream.service.run(job)

    events = stream.events()
    progress = [(e["phase"], e["sources"]) for e in events if e["type"] == "progress"]
    assert progress == [("searching", None), ("reading", 1), ("writing", 1)]  # one passage above the floor
    first_token = next(i for i, e in enumerate(events) if e["type"] == "token")
    assert all(e["type"] == "progress" for e in events[:first_token])  # all progress comes first
    assert all(e["type"] != "progress" for e in events[first_token:])
    assert all((e["session_id"], e["message_id"]) == (job.session_id, job.message_id) for e in events)
    assert [e["sequence"] for e in events if e["type"] == "token"] == [0, 1]  # numbering untouched


def test_a_follow_up_is_condensed_first() -> None:
    stream = _stream("It is 2.4 metres wide [1].", "How wide is the Plimsk mirror?", "Still 2.4 metres [1].")
    first = stream.submit()
    stream.service.run(first)
    stream.notifier.sent.clear()

    stream.service.run(stream.submit("And the mirror?", session_id=first.session_id))

    assert [e["phase"] for e in stream.events() if e["type"] == "progress"] == [
        "condensing",
        "searching",
        "reading",
        "writing",
    ]


def test_no_relevant_source_means_no_writing_phase() -> None:
    stream = _stream()  # "I don't know" comes without calling the model

    stream.service.run(stream.submit(UNANSWERABLE))

    events = stream.events()
    assert [(e["phase"], e["sources"]) for e in events if e["type"] == "progress"] == [
        ("searching", None),
        ("reading", 0),
    ]
    assert events[-1]["type"] == "final"


def test_without_a_workspace_only_writing_is_announced() -> None:
    stream = _stream("Paris.")
    action = ChatAction(action="chat", text="Capital of France?")
    job = stream.service.submit(CONNECTION, OWNER, action)

    stream.service.run(job)

    assert [(e["phase"], e["sources"]) for e in stream.events() if e["type"] == "progress"] == [("writing", None)]


# --------------------------------------------------------------------------- the connection's token


def test_a_connection_token_expires_at_the_time_kept_at_connect() -> None:
    stream = _stream()
    stream.connections.add("fresh", OWNER, token_expires_at=NOW + timedelta(seconds=1))
    stream.connections.add("stale", OWNER, token_expires_at=NOW)
    stream.connections.add("unbounded", OWNER)

    assert not stream.service.token_expired("fresh")
    assert stream.service.token_expired("stale")
    assert not stream.service.token_expired("unbounded")
    assert not stream.service.token_expired("unknown")


def test_sending_and_closing_go_through_the_notifier() -> None:
    stream = _stream()
    stream.notifier.gone.add("gone")

    assert stream.service.send(CONNECTION, {"type": "pong"})
    assert not stream.service.send("gone", {"type": "pong"})
    stream.service.close(CONNECTION, code=4001, reason="token expired")

    assert stream.events() == [{"type": "pong"}]
    assert stream.notifier.closed == [(CONNECTION, 4001, "token expired")]
