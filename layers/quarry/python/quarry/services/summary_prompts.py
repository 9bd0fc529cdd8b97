"""Prompts of summary jobs: the points of one document (map), a repair, a rewrite into another language.

Written for the smallest model the platform runs (Qwen2.5 0.5B through llama.cpp), from what it does well
and badly:

- **One document per call.** Given several numbered documents, a small model copies the shape of its
  example (line 2 is ``NONE`` because it was in the example) and cites numbers it did not read. Alone
  with one document it lists that document's points, and every point cites the document it came from,
  by construction. The system prompt and the worked examples are the same for every call, so llama.cpp
  keeps them evaluated (a shared prompt prefix) and each call costs the document's own tokens only.
- **The judgement after the words.** ``long battery life (good)``: the model writes the point, copying
  the document's words, and only then says whether the reviewer liked it, a choice it gets right far
  more often than a ``PRO:`` or ``CON:`` it had to pick before writing the point.
- **The same words for the same thing**, shown by the examples, so the reduce merges them.

The reply is one line, ``point (good) | point (bad)``, or ``NONE``; ``summary_mapreduce.parse_reply``
reads it defensively.
"""

from __future__ import annotations

from collections.abc import Sequence

from quarry.models import Role
from quarry.ports import ChatTurn
from quarry.summary_models import SummaryKind

__all__ = ["DOCUMENT_CHARS", "clip", "document_turns", "repair_turns", "rewrite_turns"]

#: How much of one document a call reads (the stored preview holds at most 5,000 characters).
DOCUMENT_CHARS = 1200

_TASKS: dict[SummaryKind, str] = {
    SummaryKind.PROS_CONS: (
        "You list the points a customer review makes, each followed by (good) if the reviewer likes it or (bad) "
        "if the reviewer dislikes it."
    ),
    SummaryKind.THEMES: "You list the themes a document talks about.",
    SummaryKind.CUSTOM: "You list what a document says about the question you are given.",
}
_FORMAT = (
    "Write them on one line, separated by ' | '. Keep each point short (2 to 6 words), in the document's "
    "words. Write NONE if it has none. Write the points in {language}."
)

_EXAMPLES = (
    "The screen is too dim outside, but the battery easily lasts two days.",
    "Arrived on Tuesday.",
    "Great battery life and a sharp camera. Way too expensive though.",
    "It feels cheap and plasticky.",
)
_EXAMPLE_REPLIES: dict[SummaryKind, tuple[str, ...]] = {
    SummaryKind.PROS_CONS: (
        "screen too dim (bad) | long battery life (good)",
        "NONE",
        "long battery life (good) | sharp camera (good) | too expensive (bad)",
        "feels cheap (bad)",
    ),
    SummaryKind.THEMES: (
        "screen brightness | battery life",
        "delivery",
        "battery life | camera | price",
        "build quality",
    ),
    SummaryKind.CUSTOM: (
        "battery lasts two days",
        "NONE",
        "great battery life",
        "NONE",
    ),
}
_EXAMPLE_QUESTION = "What do the reviews say about the battery?"


def clip(text: str, max_chars: int = DOCUMENT_CHARS) -> str:
    """Whitespace collapsed, cut at a word boundary after ``max_chars``."""
    flat = " ".join(text.split())
    if len(flat) > max_chars:
        flat = flat[:max_chars].rsplit(" ", 1)[0] + " ..."
    return flat


def _ask(kind: SummaryKind, text: str, question: str | None) -> str:
    if kind is SummaryKind.CUSTOM:
        return f"Question: {question}\nDocument: {text}"
    return f"Document: {text}"


def document_turns(
    kind: SummaryKind, text: str, *, language: str = "English", instructions: str | None = None
) -> list[ChatTurn]:
    """The points of one document: the task, four worked examples, then the document.

    Everything before the document is the same for every document of a job (the prefix a local model
    keeps evaluated between calls).
    """
    turns = [ChatTurn(Role.SYSTEM, f"{_TASKS[kind]} {_FORMAT.format(language=language)}")]
    for example, reply in zip(_EXAMPLES, _EXAMPLE_REPLIES[kind], strict=True):
        turns.append(ChatTurn(Role.USER, _ask(kind, example, _EXAMPLE_QUESTION)))
        turns.append(ChatTurn(Role.ASSISTANT, reply))
    turns.append(ChatTurn(Role.USER, _ask(kind, clip(text), (instructions or "").strip())))
    return turns


def repair_turns(turns: Sequence[ChatTurn], reply: str, kind: SummaryKind) -> list[ChatTurn]:
    """Ask once more when nothing in ``reply`` could be read: the same request, then the form spelled out."""
    form = "point (good) | point (bad)" if kind is SummaryKind.PROS_CONS else "point | point"
    return [
        *turns,
        ChatTurn(Role.ASSISTANT, reply.strip()[:500] or "(no answer)"),
        ChatTurn(Role.USER, f"Answer again in the form: {form}. Or NONE."),
    ]


def rewrite_turns(texts: Sequence[str], language: str) -> list[ChatTurn]:
    """Translate numbered points into ``language``, one line each, numbers kept."""
    numbered = "\n".join(f"{n}. {text}" for n, text in enumerate(texts, start=1))
    return [
        ChatTurn(
            Role.SYSTEM,
            f"You translate short phrases into {language}. Keep the numbering: one line per phrase, "
            "'<number>. <translation>'. Write nothing else.",
        ),
        ChatTurn(Role.USER, "Translate into English:\n1. Lange Akkulaufzeit\n2. \u00c9cran trop sombre"),
        ChatTurn(Role.ASSISTANT, "1. Long battery life\n2. Screen too dark"),
        ChatTurn(Role.USER, f"Translate into {language}:\n{numbered}"),
    ]
