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
from quarry.summary_models import PointKind, SummaryKind

__all__ = [
    "DOCUMENT_CHARS",
    "clip",
    "document_turns",
    "parse_polarity",
    "polarity_turns",
    "repair_turns",
    "rewrite_turns",
]

#: How much of one document a call reads (the stored preview holds at most 5,000 characters).
DOCUMENT_CHARS = 1200

_TASKS: dict[SummaryKind, str] = {
    SummaryKind.PROS_CONS: (
        "You list what a customer review likes or dislikes about the product, each point followed by (good) if "
        "the reviewer likes it or (bad) if the reviewer dislikes it. Leave out what is no judgement of the "
        "product (when or why it was bought, how long it has been used)."
    ),
    SummaryKind.THEMES: "You list the themes a document talks about.",
    SummaryKind.CUSTOM: "You list what a document says about the question you are given.",
}
_FORMAT = (
    "Write them on one line, separated by ' | '. Keep each point short (2 to 6 words), in the document's "
    "words. Write NONE if it has none. Write the points in {language}."
)

#: The worked examples: hotel stays, a domain no product a job is likely to summarise shares, so a point
#: copied from an example into a reply is visible, and the grounding check (``summary_mapreduce.grounded``)
#: drops it. Praise and criticism in different words (a con in mild words, a pro in words that look
#: negative: "never waited"), a sentence that is no judgement left out, one review in another language.
#: Chosen on a tuning set (the constructed reviews with seed 7, not the evaluation seed): with the earlier
#: examples (phones: battery, screen, "feels cheap") the model copied their points into other reviews.
_EXAMPLES = (
    "We stayed three nights in May. The staff at the front desk were rude, but the view from our balcony was stunning.",
    "Booked it for my parents.",
    "Das Fr\u00fchst\u00fcck war kalt. Die Zimmer sind sauber und hell.",
    "We never waited for the lift. The towels could have been softer. The pool was tiny.",
)
_EXAMPLE_REPLIES: dict[SummaryKind, tuple[str, ...]] = {
    SummaryKind.PROS_CONS: (
        "rude front desk staff (bad) | stunning balcony view (good)",
        "NONE",
        "cold breakfast (bad) | clean and bright rooms (good)",
        "never waited for the lift (good) | towels could be softer (bad) | tiny pool (bad)",
    ),
    SummaryKind.THEMES: (
        "front desk staff | balcony view",
        "NONE",
        "breakfast | rooms",
        "lift | towels | pool",
    ),
    SummaryKind.CUSTOM: (
        "NONE",
        "NONE",
        "cold breakfast",
        "NONE",
    ),
}
_EXAMPLE_QUESTION = "What do the reviews say about the food?"


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


#: The polarity check: one clause of a review, praise or complaint. Worked examples from the hotel domain
#: again (no product a job summarises), each a kind a small model gets wrong in a list of points: praise
#: stated as a plain fact or through a negation ("no noise", "never waited"), criticism in mild words.
_POLARITY_TASK = (
    "Is this sentence from a customer review praise or a complaint? Answer with one word: praise or complaint."
)
_POLARITY_EXAMPLES = (
    ("The staff at the front desk were rude", "complaint"),
    ("we could walk to the beach in five minutes.", "praise"),
    ("Check-in took over an hour.", "complaint"),
    ("The bed kept my back from aching.", "praise"),
    ("the view from our balcony was stunning.", "praise"),
    ("The towels could have been softer.", "complaint"),
    ("No noise from the street at night.", "praise"),
    ("The room smelled of smoke.", "complaint"),
)


def polarity_turns(sentence: str) -> list[ChatTurn]:
    """Is ``sentence`` praise or a complaint (``parse_polarity`` reads the answer)."""
    turns = [ChatTurn(Role.SYSTEM, _POLARITY_TASK)]
    for example, answer in _POLARITY_EXAMPLES:
        turns.append(ChatTurn(Role.USER, example))
        turns.append(ChatTurn(Role.ASSISTANT, answer))
    turns.append(ChatTurn(Role.USER, clip(sentence, 400)))
    return turns


def parse_polarity(answer: str) -> PointKind | None:
    """``praise`` a pro, ``complaint`` a con; anything else None (no verdict: the point stands)."""
    word = answer.strip().strip("*\"'`.").lower()
    if word.startswith("praise"):
        return PointKind.PRO
    if word.startswith("complaint"):
        return PointKind.CON
    return None
