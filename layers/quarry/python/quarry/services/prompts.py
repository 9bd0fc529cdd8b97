"""Prompts for condensing follow-ups and for grounded, cited answers."""

from __future__ import annotations

from collections.abc import Sequence

from quarry.models import Hit, Message, Role
from quarry.ports import ChatTurn

__all__ = [
    "NO_ANSWER",
    "condense_turns",
    "grounded_turns",
    "plain_turns",
]

NO_ANSWER = "I don't know: the workspace does not contain a passage that answers this."

_GROUNDED_SYSTEM = (
    "You answer questions using only the numbered sources below. "
    "Cite every fact with the number of its source in square brackets, like [1] or [2]. "
    "If the sources do not contain the answer, reply exactly: I don't know. "
    "Be concise."
)

_CONDENSE_SYSTEM = (
    "Rewrite the user's follow-up question as one standalone question that can be understood "
    "without the conversation. Replace pronouns with the things they refer to. "
    "Reply with the question only."
)


def _history_text(history: Sequence[Message], *, max_chars: int = 2000) -> str:
    lines = [f"{m.role.value.capitalize()}: {m.content}" for m in history if m.role is not Role.SYSTEM]
    text = "\n".join(lines)
    return text[-max_chars:]


def condense_turns(history: Sequence[Message], follow_up: str) -> list[ChatTurn]:
    user = f"Conversation:\n{_history_text(history)}\n\nFollow-up question: {follow_up}\n\nStandalone question:"
    return [ChatTurn(Role.SYSTEM, _CONDENSE_SYSTEM), ChatTurn(Role.USER, user)]


def format_sources(hits: Sequence[Hit], *, max_chars_each: int = 1200) -> str:
    blocks = []
    for n, hit in enumerate(hits, start=1):
        title = hit.chunk.title or hit.chunk.document_id
        blocks.append(f"[{n}] {title}\n{hit.chunk.text[:max_chars_each]}")
    return "\n\n".join(blocks)


def grounded_turns(question: str, hits: Sequence[Hit], history: Sequence[Message] = ()) -> list[ChatTurn]:
    turns = [ChatTurn(Role.SYSTEM, _GROUNDED_SYSTEM)]
    turns += [ChatTurn(m.role, m.content) for m in history[-4:] if m.role is not Role.SYSTEM]
    turns.append(ChatTurn(Role.USER, f"Sources:\n{format_sources(hits)}\n\nQuestion: {question}"))
    return turns


def plain_turns(question: str, history: Sequence[Message] = ()) -> list[ChatTurn]:
    turns = [ChatTurn(Role.SYSTEM, "You are a helpful assistant. Be concise.")]
    turns += [ChatTurn(m.role, m.content) for m in history[-6:] if m.role is not Role.SYSTEM]
    turns.append(ChatTurn(Role.USER, question))
    return turns
