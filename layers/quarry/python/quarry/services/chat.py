"""Chat use case: condense the follow-up, retrieve, answer with numbered sources, cite, persist."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from quarry.errors import BudgetExhausted, Conflict, NotFound
from quarry.filters import Filter
from quarry.models import Answer, Hit, Message, Role, SearchMode, SearchRequest, Session, Usage, new_id, utcnow
from quarry.ports import ChatHistory, ChatModel, ChatTurn, UsageLedger
from quarry.protocol import ChatAction, ChatIn, ProgressPhase
from quarry.services.access import WorkspaceAccess
from quarry.services.budget import TokenBudget
from quarry.services.citations import extract_citations
from quarry.services.models_registry import ModelRegistry
from quarry.services.prompts import NO_ANSWER, condense_turns, grounded_turns, plain_turns, standalone_question
from quarry.services.search import SearchService
from quarry.services.sessions import title_from_question
from quarry.services.usage import add_usage, collect, usage_entry, usage_metadata

__all__ = ["AlreadyAnswered", "ChatOutcome", "ChatRequest", "ChatService", "question_id"]

TokenSink = Callable[[str], None]
ProgressSink = Callable[[ProgressPhase, int | None], None]
"""Told each phase before the first token: (``condensing`` | ``searching`` | ``reading`` | ``writing``, sources)."""
_QUESTION_IDS = uuid.UUID("6f1c3a52-8e0b-4c1e-9d55-2b7f0a9e4c31")


def question_id(message_id: str) -> str:
    """The id of the question an answer ``message_id`` replies to: the same job always stores the same one."""
    return uuid.uuid5(_QUESTION_IDS, message_id).hex


class AlreadyAnswered(Conflict):
    """The question of this message id is stored already: a redelivered chat job, which must do nothing."""

    code = "already_answered"


@dataclass(frozen=True, slots=True)
class ChatRequest:
    user: str
    text: str
    session_id: str | None = None
    workspace_id: str | None = None
    model: str | None = None
    temperature: float = 0.1
    max_tokens: int = 384
    top_k: int | None = None  # sources for the model; None: the deployment's ``context_chunks``
    filters: Filter = field(default_factory=Filter)  # retrieval only reads the chunks this selects

    @classmethod
    def of(
        cls, user: str, body: ChatAction | ChatIn, *, session_id: str | None = None, filters: Filter | None = None
    ) -> ChatRequest:
        """From a WebSocket ``chat`` action or a ``POST /chat`` body; its filter is parsed here (422 naming the
        field) unless ``filters`` gives it parsed already (a chat job's)."""
        return cls(
            user=user,
            text=body.text,
            session_id=session_id or body.session_id,
            workspace_id=body.workspace_id,
            model=body.model,
            temperature=body.model_kwargs.temperature,
            max_tokens=body.model_kwargs.max_tokens,
            top_k=body.top_k if "top_k" in body.model_fields_set else None,
            filters=filters if filters is not None else Filter.parse(body.filters, where="filters"),
        )


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    session: Session
    message_id: str
    answer: Answer
    cancelled: bool = False


class ChatService:
    def __init__(
        self,
        *,
        history: ChatHistory,
        search: SearchService,
        models: ModelRegistry,
        access: WorkspaceAccess,
        min_relevance: float = 0.3,
        history_turns: int = 6,
        context_chunks: int = 5,
        usage: UsageLedger | None = None,
        budget: TokenBudget | None = None,
    ) -> None:
        self._history = history
        self._search = search
        self._models = models
        self._access = access
        self._min_relevance = min_relevance
        self._history_turns = history_turns
        self._context_chunks = context_chunks  # sources given to the model when the request does not say
        self._usage = usage
        self._budget = budget  # None: answers are not bounded per user

    # ------------------------------------------------------------------ sessions
    def open_session(self, user: str, session_id: str | None, workspace_id: str | None, text: str) -> Session:
        """The caller's session (404 if it is someone else's), or a new one titled by the first question."""
        if workspace_id:
            self._access.readable(user, workspace_id)
        if session_id:
            session = self._history.get_session(session_id)
            if session is not None:
                if session.owner != user:
                    raise NotFound(f"session {session_id} not found")
                return session
        session = Session(
            id=session_id or new_id(), owner=user, workspace_id=workspace_id, title=title_from_question(text)
        )
        self._history.put_session(session)
        return session

    def owned_session(self, user: str, session_id: str) -> Session:
        """The user's own session; someone else's is as absent as a missing one."""
        session = self._history.get_session(session_id)
        if session is None or session.owner != user:
            raise NotFound(f"session {session_id} not found")
        return session

    # ------------------------------------------------------------------ allowance
    def ensure_allowance(self, user: str) -> None:
        """Refuse (``BudgetExhausted``) a user whose tokens today have reached the daily allowance, before any
        session, message or model call is made. Checked before an answer starts, not during it (see
        ``quarry.services.budget``)."""
        if self._budget is not None:
            self._budget.check(user)

    def _ensure_allowance_for(self, request: ChatRequest, message_id: str | None) -> None:
        """As ``ensure_allowance``; but a redelivered chat job whose question is stored already (answered, and
        counted, before the allowance ran out) is ``AlreadyAnswered``: it must stay silent, not send a refusal."""
        try:
            self.ensure_allowance(request.user)
        except BudgetExhausted as refused:
            if (
                message_id
                and request.session_id
                and self._history.get_message(request.session_id, question_id(message_id)) is not None
            ):
                raise AlreadyAnswered(
                    f"message {message_id} of session {request.session_id} was handled already"
                ) from refused
            raise

    # ------------------------------------------------------------------ answering
    def answer(
        self,
        request: ChatRequest,
        *,
        message_id: str | None = None,
        on_token: TokenSink | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        on_progress: ProgressSink | None = None,
    ) -> ChatOutcome:
        """Answer and persist both turns. With ``message_id`` (a chat job's) the question's id derives from it
        and is written only if new: a second run of the same job raises ``AlreadyAnswered`` before any work.
        A user past the daily token allowance gets ``BudgetExhausted`` and nothing is stored."""
        started = time.perf_counter()
        self._ensure_allowance_for(request, message_id)
        session = self.open_session(request.user, request.session_id, request.workspace_id, request.text)
        message_id = message_id or new_id()
        history = self._history.recent_messages(session.id, limit=self._history_turns)
        question_message = Message(
            session_id=session.id, id=question_id(message_id), role=Role.USER, content=request.text
        )
        if not self._history.add_message_if_new(question_message):
            raise AlreadyAnswered(f"message {message_id} of session {session.id} was handled already")
        model = self._models.chat_models.get(request.model)
        timings: dict[str, float] = {}
        progress = on_progress or (lambda _phase, _sources: None)

        if any(m.role is Role.USER for m in history):
            progress("condensing", None)
        question, condense_usage = self._condense(model, history, request.text, timings)
        workspace_id = request.workspace_id or session.workspace_id
        top_k = request.top_k if request.top_k is not None else self._context_chunks
        hits: list[Hit] | None = None
        if workspace_id:
            progress("searching", None)
            hits = self._retrieve(request.user, workspace_id, question, top_k, timings, request.filters)
            progress("reading", len(hits))

        sink = on_token or (lambda _t: None)
        if hits is not None and not hits:
            text, usage, was_cancelled = NO_ANSWER, Usage(), False
            sink(text)
        else:
            turns = grounded_turns(question, hits, history) if hits else plain_turns(request.text, history)
            progress("writing", len(hits) if hits else None)
            text, usage, was_cancelled = self._generate(model, turns, request, sink, cancelled, timings, started)
        usage = add_usage(condense_usage, usage)  # every token this request spent, condensing included
        cleaned, citations = extract_citations(text, hits or [])
        timings["total_ms"] = _ms(started)
        answer = Answer(
            text=cleaned,
            citations=tuple(citations),
            usage=usage,
            timings=timings,
            standalone_question=question,
            grounded=bool(hits),
            model=model.name,
        )
        spent = usage_entry(
            message_id=message_id, user=request.user, workspace_id=workspace_id, model=model.name, usage=usage
        )
        self._history.add_message(
            Message(
                session_id=session.id,
                id=message_id,
                role=Role.ASSISTANT,
                content=cleaned,
                citations=answer.citations,
                metadata={
                    "cancelled": was_cancelled,
                    "standalone_question": question,
                    **usage_metadata(spent, timings),
                },
            )
        )
        current = self._history.get_session(session.id) or session  # keep a rename made while answering
        self._history.put_session(replace(current, updated_at=utcnow()))
        if self._usage is not None:
            self._usage.record(spent)  # at most once per message id: a redelivery adds nothing
        return ChatOutcome(session=session, message_id=message_id, answer=answer, cancelled=was_cancelled)

    def _condense(
        self, model: ChatModel, history: list[Message], text: str, timings: dict[str, float]
    ) -> tuple[str, Usage]:
        if not any(m.role is Role.USER for m in history):
            return text, Usage()
        t0 = time.perf_counter()
        out, usage = collect(model.stream(condense_turns(history, text), max_tokens=64, temperature=0.0))
        timings["condense_ms"] = _ms(t0)
        return standalone_question(out, text, history), usage

    def _retrieve(
        self, user: str, workspace_id: str, question: str, top_k: int, timings: dict[str, float], filters: Filter
    ) -> list[Hit]:
        t0 = time.perf_counter()
        request = SearchRequest(
            workspace_id=workspace_id, query=question, top_k=top_k, mode=SearchMode.HYBRID, filters=filters
        )
        result = self._search.search(user, request)
        timings["retrieve_ms"] = _ms(t0)
        return [h for h in result.hits if h.dense_score is not None and h.dense_score >= self._min_relevance]

    def _generate(
        self,
        model: ChatModel,
        turns: list[ChatTurn],
        request: ChatRequest,
        sink: TokenSink,
        cancelled: Callable[[], bool],
        timings: dict[str, float],
        started: float,
    ) -> tuple[str, Usage, bool]:
        t0 = time.perf_counter()
        parts: list[str] = []
        usage = Usage()
        stream = model.stream(turns, max_tokens=request.max_tokens, temperature=request.temperature)
        for delta in stream:
            if delta.usage is not None:
                usage = delta.usage
            if delta.text:
                if not parts:
                    timings["first_token_ms"] = _ms(started)
                parts.append(delta.text)
                sink(delta.text)
            if cancelled():
                close = getattr(stream, "close", None)
                if close:
                    close()
                timings["generate_ms"] = _ms(t0)
                return "".join(parts), Usage(completion_tokens=len(parts)), True
        timings["generate_ms"] = _ms(t0)
        return "".join(parts), usage, False


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
