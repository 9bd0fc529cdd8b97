"""REST: a conversation renamed with PATCH /sessions/{id} (owner only), read back, and a stopped answer marked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quarry.models import Message, Role, Session
from quarry.wiring import Services
from tests.unit.lambdas.rest_calls import installed_services, rest
from tests.unit.lambdas.test_handlers import ALICE

MALLORY = "mallory"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with installed_services(tmp_path) as built:
        yield built


def _session_of_alice() -> str:
    status, answer = rest("POST", "/chat", {"text": "  How   long is\n leave?  "})
    assert status == 200
    return str(answer["session_id"])


def test_a_new_conversation_is_titled_by_its_first_question(services: Services) -> None:
    session_id = _session_of_alice()

    status, detail = rest("GET", f"/sessions/{session_id}")

    assert status == 200 and detail["session"]["title"] == "How long is leave?"


def test_the_owner_renames_and_the_title_is_kept(services: Services) -> None:
    session_id = _session_of_alice()

    status, renamed = rest("PATCH", f"/sessions/{session_id}", {"title": "  Leave   policy "})

    assert status == 200 and renamed["id"] == session_id and renamed["title"] == "Leave policy"
    status, listing = rest("GET", "/sessions")
    assert status == 200 and [s["title"] for s in listing["items"]] == ["Leave policy"]
    status, detail = rest("GET", f"/sessions/{session_id}")
    assert detail["session"]["title"] == "Leave policy"


def test_another_users_or_a_missing_session_is_404_and_unchanged(services: Services) -> None:
    session_id = _session_of_alice()

    status, body = rest("PATCH", f"/sessions/{session_id}", {"title": "mine now"}, user=MALLORY)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = rest("PATCH", "/sessions/no-such-session", {"title": "x"})
    assert status == 404

    _, detail = rest("GET", f"/sessions/{session_id}")
    assert detail["session"]["title"] == "How long is leave?"


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "   "}, {"title": "x" * 81}, {"name": "x"}, {}])
def test_a_bad_title_is_422(services: Services, body: dict[str, str]) -> None:
    session_id = _session_of_alice()

    status, error = rest("PATCH", f"/sessions/{session_id}", body)

    assert status == 422 and error["error"]["code"] in {"validation_error", "invalid_input"}


def test_a_stopped_answer_reads_back_as_stopped(services: Services) -> None:
    history = services.adapters.chat_history
    history.put_session(Session(id="s-stop", owner=ALICE, workspace_id=None, title="t"))
    history.add_message(Message(session_id="s-stop", id="q", role=Role.USER, content="Tell me"))
    history.add_message(
        Message(session_id="s-stop", id="a", role=Role.ASSISTANT, content="Half", metadata={"cancelled": True})
    )

    _, detail = rest("GET", "/sessions/s-stop")

    assert [(m["role"], m["stopped"]) for m in detail["messages"]] == [("user", False), ("assistant", True)]
