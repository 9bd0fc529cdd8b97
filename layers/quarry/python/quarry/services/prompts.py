"""Prompts for condensing follow-ups and for grounded, cited answers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from quarry.models import Hit, Message, Role
from quarry.ports import ChatTurn

__all__ = [
    "NO_ANSWER",
    "condense_turns",
    "grounded_turns",
    "plain_turns",
    "standalone_question",
]

NO_ANSWER = "I don't know: the workspace does not contain a passage that answers this."

_GROUNDED_SYSTEM = (
    "You are a careful assistant. Answer the question using only the numbered sources. "
    "Write a short answer in full sentences and put the source number in square brackets after each sentence, "
    "like [1]. If no source answers the question, say: I don't know."
)
# Two worked examples (one answer, one refusal): a 0.5B model follows examples better than rules.
_SHOT_SOURCES = (
    "[1] Acme Corp\nAcme Corp was founded by Jane Roe in 1990. Its headquarters are in Oslo.\n\n"
    "[2] Bananas\nBananas are rich in potassium."
)
_GROUNDED_SHOTS = (
    ("Where is Acme Corp based?", "Acme Corp is based in Oslo [1]."),
    ("Who is the president of France?", "I don't know."),
)

_CONDENSE_SYSTEM = (
    "You rewrite a follow-up question so that it can be understood without the conversation. "
    "Keep the subject of the conversation in the question. Reply with the rewritten question only."
)
# Worked examples steady small models far more than instructions alone.
_CONDENSE_SHOTS = (
    (
        "User: Who founded Acme Corp?\nAssistant: Acme Corp was founded by Jane Roe in 1990.",
        "where is it based?",
        "Where is Acme Corp based?",
    ),
    (
        "User: What is the tallest mountain in Peru?\nAssistant: Huascaran is the tallest mountain in Peru.",
        "and how high is it?",
        "How high is Huascaran?",
    ),
)


def _history_text(history: Sequence[Message], *, max_chars: int = 2000) -> str:
    lines = [f"{m.role.value.capitalize()}: {m.content}" for m in history if m.role is not Role.SYSTEM]
    text = "\n".join(lines)
    return text[-max_chars:]


def condense_turns(history: Sequence[Message], follow_up: str) -> list[ChatTurn]:
    turns = [ChatTurn(Role.SYSTEM, _CONDENSE_SYSTEM)]
    for conversation, question, rewritten in _CONDENSE_SHOTS:
        turns.append(ChatTurn(Role.USER, f"{conversation}\nFollow-up: {question}"))
        turns.append(ChatTurn(Role.ASSISTANT, rewritten))
    turns.append(ChatTurn(Role.USER, f"{_history_text(history)}\nFollow-up: {follow_up}"))
    return turns


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "about",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "be",
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "they",
        "them",
        "their",
        "he",
        "she",
        "his",
        "her",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "tell",
        "me",
        "more",
        "also",
        "then",
        "than",
        "there",
        "please",
    ]
)


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP}


def standalone_question(rewritten: str, follow_up: str, history: Sequence[Message]) -> str:
    """The model's rewrite when it carried the conversation's subject into the question.

    Small models often echo the follow-up or answer it instead; then the last user
    question is prefixed, so retrieval still sees what "it" refers to.
    """
    previous = next((m.content for m in reversed(history) if m.role is Role.USER), "")
    context_words = content_words(_history_text(history)) - content_words(follow_up)
    rewritten = rewritten.strip().strip('"').splitlines()[0].strip() if rewritten.strip() else ""
    if 3 <= len(rewritten) <= 300 and rewritten.endswith("?") and content_words(rewritten) & context_words:
        return rewritten
    return f"{previous} {follow_up}".strip() if previous else follow_up


def format_sources(hits: Sequence[Hit], *, max_chars_each: int = 1200) -> str:
    blocks = []
    for n, hit in enumerate(hits, start=1):
        title = hit.chunk.title or hit.chunk.document_id
        blocks.append(f"[{n}] {title}\n{hit.chunk.text[:max_chars_each]}")
    return "\n\n".join(blocks)


def grounded_turns(question: str, hits: Sequence[Hit], history: Sequence[Message] = ()) -> list[ChatTurn]:
    turns = [ChatTurn(Role.SYSTEM, _GROUNDED_SYSTEM)]
    for question_, answer in _GROUNDED_SHOTS:
        turns.append(ChatTurn(Role.USER, f"Sources:\n{_SHOT_SOURCES}\n\nQuestion: {question_}"))
        turns.append(ChatTurn(Role.ASSISTANT, answer))
    turns += [ChatTurn(m.role, m.content) for m in history[-4:] if m.role is not Role.SYSTEM]
    turns.append(ChatTurn(Role.USER, f"Sources:\n{format_sources(hits)}\n\nQuestion: {question}"))
    return turns


def plain_turns(question: str, history: Sequence[Message] = ()) -> list[ChatTurn]:
    turns = [ChatTurn(Role.SYSTEM, "You are a helpful assistant. Be concise.")]
    turns += [ChatTurn(m.role, m.content) for m in history[-6:] if m.role is not Role.SYSTEM]
    turns.append(ChatTurn(Role.USER, question))
    return turns
