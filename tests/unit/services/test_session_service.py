"""SessionService: automatic titles from the first question, rename with the owner check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quarry.errors import InvalidInput, NotFound
from quarry.models import Session
from quarry.services.sessions import SessionService, title_from_question
from tests.fakes import FakeChatHistory

UPDATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("How long is leave?", "How long is leave?"),
        ("  How\n\nlong   is leave? ", "How long is leave?"),
        ("   ", "New conversation"),
        (
            "What does the handbook say about parental leave for employees who joined less than a year ago?",
            "What does the handbook say about parental leave for…",
        ),
        ("x" * 100, "x" * 59 + "…"),
    ],
)
def test_title_from_question(question: str, title: str) -> None:
    assert title_from_question(question) == title
    assert len(title_from_question(question)) <= 60


def _service() -> tuple[SessionService, FakeChatHistory]:
    history = FakeChatHistory()
    history.put_session(Session(id="s1", owner="ada", workspace_id="ws", title="Old", updated_at=UPDATED))
    return SessionService(history=history), history


def test_rename_keeps_workspace_and_place_in_the_list() -> None:
    service, history = _service()

    renamed = service.rename("ada", "s1", " New\ttitle ")

    assert renamed.title == "New title"
    stored = history.get_session("s1")
    assert stored is not None and (stored.title, stored.workspace_id, stored.updated_at) == ("New title", "ws", UPDATED)


def test_rename_of_someone_elses_session_is_not_found_and_changes_nothing() -> None:
    service, history = _service()

    with pytest.raises(NotFound):
        service.rename("eve", "s1", "Mine")

    stored = history.get_session("s1")
    assert stored is not None and stored.title == "Old"


@pytest.mark.parametrize("title", ["", " \n ", "y" * 81])
def test_rename_refuses_an_empty_or_too_long_title(title: str) -> None:
    service, _ = _service()
    with pytest.raises(InvalidInput):
        service.rename("ada", "s1", title)
