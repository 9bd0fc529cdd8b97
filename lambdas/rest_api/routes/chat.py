"""Non-streaming chat, sessions and feedback."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from quarry.adapters.cloudwatch_metrics import emit_answer_metrics
from quarry.protocol import (
    ChatIn,
    ChatOut,
    FeedbackIn,
    ListOut,
    MessageOut,
    SessionDetailOut,
    SessionOut,
    SessionPatchIn,
)
from quarry.services.chat import ChatRequest
from routes.common import caller, no_content, services

router = APIGatewayRouter()


@router.post("/chat")
def chat(body: ChatIn) -> ChatOut:
    request = ChatRequest.of(caller(router), body)
    outcome = services().chat.answer(request)
    emit_answer_metrics(outcome.answer, service="chat")
    return ChatOut.of(session_id=outcome.session.id, message_id=outcome.message_id, answer=outcome.answer)


@router.get("/sessions")
def list_sessions(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> ListOut[SessionOut]:
    page = services().sessions.list_sessions(caller(router), limit=limit, cursor=cursor)
    return ListOut[SessionOut](items=[SessionOut.of(s) for s in page.items], cursor=page.cursor)


@router.get("/sessions/<session_id>")
def get_session(
    session_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> SessionDetailOut:
    sessions = services().sessions
    user = caller(router)
    session = sessions.get(user, session_id)
    page = sessions.messages(user, session_id, limit=limit, cursor=cursor)
    return SessionDetailOut(
        session=SessionOut.of(session), messages=[MessageOut.of(m) for m in page.items], cursor=page.cursor
    )


@router.patch("/sessions/<session_id>")
def rename_session(session_id: str, body: SessionPatchIn) -> SessionOut:
    return SessionOut.of(services().sessions.rename(caller(router), session_id, body.title))


@router.delete("/sessions/<session_id>")
def delete_session(session_id: str) -> Response[Any]:
    services().sessions.delete(caller(router), session_id)
    return no_content()


@router.post("/feedback")
def feedback(body: FeedbackIn) -> Response[Any]:
    services().feedback.give(caller(router), body.session_id, body.message_id, body.rating, body.comment)
    return no_content()
