"""The map of a summary job: the points of one batch's documents, read by the chat model, checked.

For every document of a batch, together (``usage.complete_all``: llama.cpp decodes them side by side):

1. **Read** (``summary_prompts.document_turns``): one request per document; its reply is parsed
   defensively (``summary_mapreduce.parse_reply``). A reply that is neither points nor ``NONE`` gets one
   repair request. The same request again (a review posted twice, a retried batch) is answered from the
   reply cache.
2. **In the job's language**: the points of a document in another language (a small model copies a
   German review's words whatever it is asked) are translated (``summary_prompts.rewrite_turns``), so
   they merge with the same points of the other documents instead of standing apart.
3. **Grounded** (``summary_mapreduce.grounded_points``): a pro, con or custom point whose words (or
   meaning, by the workspace's embedder) are not in its document is dropped: a small model copies
   points from its worked examples or from the document before.
4. **Polarity checked** (pros and cons): the sentence of the document that holds the point
   (``summary_mapreduce.supporting_sentence``) is asked about on its own, praise or complaint
   (``summary_prompts.polarity_turns``). A point whose kind the answer contradicts is dropped. Why:
   writing several points in one reply, a small model lets the judgement of one point leak into its
   neighbour ("battery never runs out (bad)" after a complaint); asked about one sentence alone, it
   makes other mistakes, rarely the same ones. On a tuning set (constructed reviews, seed 7, not the
   evaluation seed) the pros and cons both agree on were right 96% of the time, against 93% unchecked.
   A point is dropped rather than flipped: the check is not better than the reader, only different.
   Checked only where the point is in the document's language (the sentence is found by its words).

Themes are neither grounded nor checked: a theme names what a document is about, rarely in its words.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quarry.models import Usage
from quarry.ports import ChatModel, ChatTurn
from quarry.services.summary_mapreduce import (
    detect_language,
    grounded_points,
    needs_rewrite,
    parse_reply,
    parse_rewrite,
    said_nothing,
    supporting_sentence,
)
from quarry.services.summary_prompts import (
    DOCUMENT_CHARS,
    clip,
    document_turns,
    parse_polarity,
    polarity_turns,
    repair_turns,
    rewrite_turns,
)
from quarry.services.usage import add_usage, complete_all
from quarry.summary_models import PointKind, SummaryJob, SummaryKind

__all__ = [
    "DOCUMENT_MAX_TOKENS",
    "POLARITY_MAX_TOKENS",
    "DocumentPoints",
    "ReplyCache",
    "read_documents",
    "request_key",
]

#: The answer one map request may write (the points of one document).
DOCUMENT_MAX_TOKENS = 64
#: The answer of one polarity check ("praise" or "complaint").
POLARITY_MAX_TOKENS = 3
#: The answer of one document's points translated (numbered lines).
TRANSLATION_MAX_TOKENS = 128

Embed = Callable[[Sequence[str]], list[list[float]]]


class ReplyCache:
    """The last ``capacity`` map replies by request key (least recently used out first); thread-safe."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            reply = self._items.get(key)
            if reply is not None:
                self._items.move_to_end(key)
            return reply

    def put(self, key: str, reply: str) -> None:
        if self._capacity <= 0:
            return
        with self._lock:
            self._items[key] = reply
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


def request_key(model: str, turns: Sequence[ChatTurn]) -> str:
    digest = hashlib.sha256(model.encode("utf-8"))
    for turn in turns:
        digest.update(b"\x00" + turn.role.value.encode("utf-8") + b"\x01" + turn.content.encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class DocumentPoints:
    """What the map found in one document: its kept points, the reply (for the record) and what it dropped."""

    points: list[tuple[PointKind, str]]
    reply: str
    ungrounded: int = 0
    contradicted: int = 0


def read_documents(
    job: SummaryJob,
    model: ChatModel,
    texts: Sequence[str],
    *,
    cache: ReplyCache,
    embed: Embed | None = None,
) -> tuple[list[DocumentPoints], Usage]:
    """The points of each of ``texts`` (in order) and the tokens spent on them."""
    requests = [document_turns(job.kind, text, language=job.language, instructions=job.instructions) for text in texts]
    keys = [request_key(model.name, turns) for turns in requests]
    replies: list[str | None] = [cache.get(key) for key in keys]
    usage = Usage()
    asked = [i for i, reply in enumerate(replies) if reply is None]
    answered = complete_all(model, [requests[i] for i in asked], max_tokens=DOCUMENT_MAX_TOKENS)
    for i, (reply, spent) in zip(asked, answered, strict=True):
        replies[i] = reply
        usage = add_usage(usage, spent)
    read = [parse_reply(reply or "", kind=job.kind) for reply in replies]
    repair = [i for i in asked if not read[i] and not said_nothing(replies[i] or "")]
    repairs = [repair_turns(requests[i], replies[i] or "", job.kind) for i in repair]
    for i, (again, spent) in zip(repair, complete_all(model, repairs, max_tokens=DOCUMENT_MAX_TOKENS), strict=True):
        usage = add_usage(usage, spent)
        read[i] = parse_reply(again, kind=job.kind)
        replies[i] = f"{replies[i]}\n--\n{again}"
    for i in asked:
        cache.put(keys[i], replies[i] or "")
    read, spent = _in_language(model, read, job.language)
    usage = add_usage(usage, spent)
    if job.kind is SummaryKind.THEMES:
        return [DocumentPoints(points, reply or "") for points, reply in zip(read, replies, strict=True)], usage
    grounded: list[tuple[list[tuple[PointKind, str]], int]] = []
    for text, points in zip(texts, read, strict=True):
        kept, dropped = grounded_points(points, clip(text, DOCUMENT_CHARS), language=job.language, embed=embed)
        grounded.append((kept, len(dropped)))
    checked, spent = _check_polarity(model, texts, [kept for kept, _ in grounded], language=job.language)
    usage = add_usage(usage, spent)
    out = [
        DocumentPoints(points, reply or "", ungrounded=dropped, contradicted=len(kept) - len(points))
        for (kept, dropped), points, reply in zip(grounded, checked, replies, strict=True)
    ]
    return out, usage


def _in_language(
    model: ChatModel, read: list[list[tuple[PointKind, str]]], language: str
) -> tuple[list[list[tuple[PointKind, str]]], Usage]:
    """Each document's points, translated into ``language`` where they are not in it."""
    foreign = [i for i, points in enumerate(read) if points and needs_rewrite([text for _, text in points], language)]
    requests = [rewrite_turns([text for _, text in read[i]], language) for i in foreign]
    usage = Usage()
    out = list(read)
    for i, (reply, spent) in zip(
        foreign, complete_all(model, requests, max_tokens=TRANSLATION_MAX_TOKENS), strict=True
    ):
        usage = add_usage(usage, spent)
        texts = parse_rewrite(reply, [text for _, text in read[i]])
        out[i] = [(kind, text) for (kind, _), text in zip(read[i], texts, strict=True)]
    return out, usage


def _check_polarity(
    model: ChatModel, texts: Sequence[str], points: Sequence[list[tuple[PointKind, str]]], *, language: str
) -> tuple[list[list[tuple[PointKind, str]]], Usage]:
    """Each document's pros and cons whose supporting sentence, asked about alone, does not contradict them."""
    target = language.strip().lower()
    asks: list[tuple[int, int, str]] = []  # (document, point, sentence)
    for d, (text, found) in enumerate(zip(texts, points, strict=True)):
        if not any(kind in (PointKind.PRO, PointKind.CON) for kind, _ in found):
            continue
        clipped = clip(text, DOCUMENT_CHARS)
        if detect_language(clipped) != target:
            continue
        for p, (kind, point) in enumerate(found):
            sentence = supporting_sentence(point, clipped) if kind in (PointKind.PRO, PointKind.CON) else None
            if sentence is not None:
                asks.append((d, p, sentence))
    answers = complete_all(model, [polarity_turns(sentence) for _, _, sentence in asks], max_tokens=POLARITY_MAX_TOKENS)
    usage = Usage()
    contradicted: set[tuple[int, int]] = set()
    for (d, p, _), (answer, spent) in zip(asks, answers, strict=True):
        usage = add_usage(usage, spent)
        said = parse_polarity(answer)
        if said is not None and said is not points[d][p][0]:
            contradicted.add((d, p))
    kept = [[point for p, point in enumerate(found) if (d, p) not in contradicted] for d, found in enumerate(points)]
    return kept, usage
