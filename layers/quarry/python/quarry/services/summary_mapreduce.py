"""The map-reduce of summary jobs, as pure functions: batching, reading the model's points, merging them.

- **Batching** (``Batcher``): documents in the order the catalog lists them, packed greedily into batches
  (the unit of progress, retries, resume and cancellation) under a character and a document cap.
- **Map** (``parse_reply``, ``batch_points``): each document's reply (``summary_prompts``: one call per
  document) read defensively; the points of a batch's documents, each text once, citing the documents
  that made it. A point cites only documents it was read in.
- **Reduce** (``merge_points``): points of every batch (and of the previous result, on an incremental run)
  of one kind whose embeddings are close enough merge into one; its documents are the union, its count the
  number of distinct documents. The points most documents mention are kept.
- **Language** (``needs_rewrite``): whether the final texts must be rewritten into the requested language.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quarry.summary_models import PointKind, SummaryKind, SummaryPoint

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_MERGE_THRESHOLD",
    "MAX_CITATIONS",
    "BatchDocument",
    "Batcher",
    "Candidate",
    "MapPoint",
    "batch_points",
    "detect_language",
    "grounded",
    "grounded_points",
    "merge_points",
    "needs_rewrite",
    "parse_reply",
    "parse_rewrite",
    "said_nothing",
    "supporting_sentence",
]

#: Cosine similarity from which two points of one kind are the same point (MiniLM: "long battery life" and
#: "battery lasts about 30 hours" 0.73, "connection keeps dropping" and "Bluetooth connection drops" 0.65;
#: different aspects, "clear sound" and "deep bass" 0.34, "battery life" and "sound quality" 0.30).
DEFAULT_MERGE_THRESHOLD = 0.65
#: Citations kept per point in a result (the count is not capped).
MAX_CITATIONS = 25
#: Longest point text kept.
MAX_POINT_CHARS = 300

# --------------------------------------------------------------------------- batching


@dataclass(frozen=True, slots=True)
class BatchDocument:
    id: str
    name: str
    #: Characters of its text the prompt will hold (an estimate until read).
    chars: int


class Batcher:
    """Greedy packing of a stream of documents into batches of at most ``max_chars`` and ``max_documents``."""

    def __init__(self, *, max_chars: int, max_documents: int) -> None:
        self._max_chars = max_chars
        self._max_documents = max_documents
        self._current: list[BatchDocument] = []
        self._chars = 0

    def add(self, document: BatchDocument) -> list[BatchDocument] | None:
        """Add a document; returns the batch it closed, if adding it closed one."""
        closed = None
        if self._current and (
            self._chars + document.chars > self._max_chars or len(self._current) >= self._max_documents
        ):
            closed = self._current
            self._current, self._chars = [], 0
        self._current.append(document)
        self._chars += document.chars
        return closed

    def finish(self) -> list[BatchDocument] | None:
        closed, self._current, self._chars = self._current or None, [], 0
        return closed


# --------------------------------------------------------------------------- map: reading the replies


@dataclass(frozen=True, slots=True)
class MapPoint:
    """A point of one batch, citing the documents of that batch it was read in (by id)."""

    kind: PointKind
    text: str
    document_ids: tuple[str, ...]


_KIND_WORDS: dict[str, PointKind] = {
    "good": PointKind.PRO,
    "pro": PointKind.PRO,
    "pros": PointKind.PRO,
    "positive": PointKind.PRO,
    "like": PointKind.PRO,
    "likes": PointKind.PRO,
    "liked": PointKind.PRO,
    "advantage": PointKind.PRO,
    "bad": PointKind.CON,
    "con": PointKind.CON,
    "cons": PointKind.CON,
    "negative": PointKind.CON,
    "dislike": PointKind.CON,
    "dislikes": PointKind.CON,
    "disliked": PointKind.CON,
    "disadvantage": PointKind.CON,
    "theme": PointKind.THEME,
    "themes": PointKind.THEME,
    "topic": PointKind.THEME,
    "point": PointKind.POINT,
    "points": PointKind.POINT,
}
_KINDS_OF: dict[SummaryKind, frozenset[PointKind]] = {
    SummaryKind.PROS_CONS: frozenset({PointKind.PRO, PointKind.CON}),
    SummaryKind.THEMES: frozenset({PointKind.THEME}),
    SummaryKind.CUSTOM: frozenset({PointKind.POINT}),
}
_WORDS = "|".join(sorted(_KIND_WORDS, key=len, reverse=True))
_SEPARATORS = re.compile(r"\s*(?:\||;|\n)\s*")
_DECORATION = re.compile(r"^[\s>*#\u2022\u00b7\-\u2013\u2014\"'`]*(?:\[\d{1,3}\]|\d{1,2}[.)])?[\s*_\"'`]*")
_LEADING = re.compile(rf"^(?P<word>{_WORDS})[\s*_]*[:\-\u2013][\s*_]*(?P<rest>.*)$", re.IGNORECASE)
_TRAILING = re.compile(rf"^(?P<rest>.*?)[\s*_]*[(\[](?P<word>{_WORDS})[)\]][\s.*_\"'`]*$", re.IGNORECASE)
_NOTHING = re.compile(r"^(?:none|nothing|no points?|n/?a|-+)$", re.IGNORECASE)
_CITATION = re.compile(r"\[\s*\d{1,3}(?:\s*,\s*\d{1,3})*\s*\]")
#: A part longer than this is chatter or a copied paragraph, not a point.
MAX_POINT_WORDS = 16


def _clean(text: str) -> str:
    text = _CITATION.sub(" ", text)
    text = re.sub(r"[*_`\"]+", "", text)
    text = " ".join(text.split()).strip(" \t-\u2013\u2014:;,.!'")
    if len(text) > MAX_POINT_CHARS:
        text = text[:MAX_POINT_CHARS].rsplit(" ", 1)[0]
    return text[:1].upper() + text[1:]


def parse_reply(reply: str, *, kind: SummaryKind) -> list[tuple[PointKind, str]]:
    """The points of one document's reply (``point (good) | point (bad)``, ``NONE``), in order, each once.

    Read defensively: points on one line or several, bullets and numbering, the judgement after the point
    (``(good)``, ``(bad)``) or before it (``PRO:``, ``GOOD:``). A pro or con needs its judgement; a theme or
    a custom point takes any label or none.
    """
    allowed = _KINDS_OF[kind]
    single = next(iter(allowed)) if len(allowed) == 1 else None
    out: list[tuple[PointKind, str]] = []
    seen: set[tuple[PointKind, str]] = set()
    for raw in _SEPARATORS.split(reply):
        part = _DECORATION.sub("", raw).strip()
        point_kind: PointKind | None = None
        for pattern in (_TRAILING, _LEADING):
            match = pattern.match(part)
            if match:
                point_kind, part = _KIND_WORDS[match["word"].lower()], match["rest"]
                break
        if point_kind not in allowed:
            point_kind = single
        text = _clean(part)
        if point_kind is None or len(text) < 3 or _NOTHING.match(text) or len(text.split()) > MAX_POINT_WORDS:
            continue
        key = (point_kind, text.lower())
        if key not in seen:
            seen.add(key)
            out.append((point_kind, text))
    return out


def said_nothing(reply: str) -> bool:
    """Whether a reply says the document has no point (``NONE``), rather than something unreadable."""
    parts = [_clean(re.sub(r"\(.*?\)", "", _DECORATION.sub("", part))) for part in _SEPARATORS.split(reply)]
    return all(not part or _NOTHING.match(part) for part in parts)


def batch_points(
    per_document: Iterable[tuple[str, Sequence[tuple[PointKind, str]]]], *, limit_per_kind: int = 40
) -> list[MapPoint]:
    """The points of a batch: each text once (any case), citing every document of the batch that made it;
    at most ``limit_per_kind`` of a kind, the ones most documents made."""
    found: dict[tuple[PointKind, str], list[str]] = {}
    texts: dict[tuple[PointKind, str], str] = {}
    for document_id, points in per_document:
        for point_kind, text in points:
            key = (point_kind, text.lower())
            texts.setdefault(key, text)
            ids = found.setdefault(key, [])
            if document_id not in ids:
                ids.append(document_id)
    kept: list[MapPoint] = []
    per_kind: dict[PointKind, int] = {}
    for key, ids in sorted(found.items(), key=lambda item: -len(item[1])):  # stable: first seen first
        if per_kind.get(key[0], 0) < limit_per_kind:
            per_kind[key[0]] = per_kind.get(key[0], 0) + 1
            kept.append(MapPoint(kind=key[0], text=texts[key], document_ids=tuple(ids)))
    return kept


# --------------------------------------------------------------------------- map: points grounded in their document

#: Words a point may add to what its document says: judgements, degrees, verbs of perception and
#: function words. The other words of a point (what it is about) must come from its document.
_FREE_WORDS = frozenset(
    re.split(
        r"\s+",
        "a an the and or but of to in on at for with from by as is are was were be been being it its they "
        "them this that these those my our your their i we you he she not no nor never very really too so "
        "quite rather pretty super extremely incredibly highly much more most less least all any some "
        "good great bad poor nice fine excellent terrible awful horrible amazing awesome perfect decent "
        "best worst better worse okay ok long short high low lot lots "
        "feel feels felt feeling look looks looked seem seems seemed get gets got make makes made has have "
        "had does do did can could would should will just also even still enough over under about after "
        "before up out off way",
    )
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_SUFFIXES = ("ingly", "edly", "ness", "ment", "ing", "ies", "ied", "ly", "ed", "es", "er", "s", "y", "e")
#: Share of a point's own words its document must hold for the point to be kept.
GROUNDED_SHARE = 0.5
#: Cosine similarity to one of its document's sentences from which a point not in the document's words is
#: taken as a paraphrase of it (set on a tuning set of reviews, seed 7, not the evaluation set).
GROUNDED_SIMILARITY = 0.5
#: Sentences of a document compared with its points.
MAX_GROUNDING_SENTENCES = 40


def _stem(word: str) -> str:
    word = word.lower().split("'", 1)[0]
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _same_word(a: str, b: str) -> bool:
    """Stems of one word: equal, one the start of the other (4 letters at least), or the same first 5."""
    if a == b:
        return True
    short, other = (a, b) if len(a) <= len(b) else (b, a)
    return (len(short) >= 4 and other.startswith(short)) or (len(short) >= 5 and short[:5] == other[:5])


def _own_words(text: str) -> list[str]:
    words = (w.lower().split("'", 1)[0] for w in _WORD.findall(text))
    return [_stem(w) for w in words if w not in _FREE_WORDS and len(w) >= 3]


def grounded(point: str, document: str, *, share: float = GROUNDED_SHARE) -> bool:
    """Whether ``point`` is taken from ``document``: at least ``share`` of its own words (not judgements,
    degrees or function words; compared by crude stem) occur in it. A point of no own word ("very good")
    cannot be checked this way and is kept.

    A point a small model copied from a worked example, or from the document before, names words its
    document does not hold ("feels cheap" for a review that praises the sound) and is dropped here; a point
    in the document's words, or paraphrasing it around one of its words ("long battery life" for "the
    battery lasts forever"), is kept. Only meaningful when the point and the document share a language.
    """
    own = _own_words(point)
    if not own:
        return True
    document_words = {_stem(w) for w in _WORD.findall(document)}
    found = sum(1 for word in own if any(_same_word(word, d) for d in document_words))
    return found >= share * len(own)


def _sentences(document: str) -> list[str]:
    parts = [part.strip() for part in re.split(r"(?<=[.!?;])\s+|\n+", document)]
    return [part for part in parts if part][:MAX_GROUNDING_SENTENCES]


def grounded_points(
    points: Sequence[tuple[PointKind, str]],
    document: str,
    *,
    language: str,
    embed: Callable[[Sequence[str]], list[list[float]]] | None = None,
    min_similarity: float = GROUNDED_SIMILARITY,
) -> tuple[list[tuple[PointKind, str]], list[tuple[PointKind, str]]]:
    """``points`` of one document split into (kept, dropped): a point is kept when ``grounded`` in the
    document's words or, given ``embed``, when its meaning is close to one of the document's sentences
    (cosine >= ``min_similarity``: a paraphrase, "too expensive" for "the price is far too high").

    Checked only when the document reads as ``language`` (the language the points are written in); a
    document in another language keeps its points, as a translation cannot be checked word by word.
    """
    if not points or detect_language(document) != language.strip().lower():
        return list(points), []
    unsure = [i for i, (_, text) in enumerate(points) if not grounded(text, document)]
    if unsure and embed is not None:
        import numpy as np

        sentences = _sentences(document) or [document]
        vectors = np.asarray(embed([points[i][1] for i in unsure] + sentences), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms == 0, 1.0, norms)
        best = (vectors[: len(unsure)] @ vectors[len(unsure) :].T).max(axis=1)
        unsure = [i for i, score in zip(unsure, best, strict=True) if float(score) < min_similarity]
    dropped = set(unsure)
    return [p for i, p in enumerate(points) if i not in dropped], [points[i] for i in unsure]


_CLAUSES = re.compile(r"(?<=[.!?;,])\s+|\n+")


def supporting_sentence(point: str, document: str) -> str | None:
    """The clause of ``document`` (split at sentence ends and commas) holding most of ``point``'s own words
    (first on a tie); None when no clause holds any, or the point has no word of its own."""
    own = _own_words(point)
    best, best_found = None, 0
    for clause in _CLAUSES.split(document):
        words = {_stem(w) for w in _WORD.findall(clause)}
        found = sum(1 for word in own if any(_same_word(word, d) for d in words))
        if found > best_found:
            best, best_found = clause.strip(), found
    return best


# --------------------------------------------------------------------------- reduce: merging points


@dataclass(frozen=True, slots=True)
class Candidate:
    """A point to merge: from a batch (``count == len(document_ids)``) or a previous result (``count`` may be
    more than the citations it kept)."""

    kind: PointKind
    text: str
    document_ids: tuple[str, ...]
    count: int


@dataclass
class _Cluster:
    kind: PointKind
    text: str
    document_ids: list[str]
    uncited: int = 0  # documents counted by a previous result beyond the citations it kept
    seen: set[str] = field(default_factory=set)

    def absorb(self, candidate: Candidate) -> None:
        for doc in candidate.document_ids:
            if doc not in self.seen:
                self.seen.add(doc)
                self.document_ids.append(doc)
        self.uncited += max(0, candidate.count - len(candidate.document_ids))

    @property
    def count(self) -> int:
        return len(self.document_ids) + self.uncited


class _Leaders:
    """The clusters of one kind, with their leaders' unit vectors in one matrix (one product per candidate)."""

    def __init__(self, capacity: int, dimensions: int) -> None:
        import numpy as np

        self.clusters: list[_Cluster] = []
        self.by_text: dict[str, _Cluster] = {}
        self._vectors = np.zeros((max(capacity, 1), dimensions), dtype=np.float32)

    def closest(self, vector: np.ndarray, threshold: float) -> _Cluster | None:
        if not self.clusters:
            return None
        scores = self._vectors[: len(self.clusters)] @ vector
        best = int(scores.argmax())
        return self.clusters[best] if float(scores[best]) >= threshold else None

    def add(self, cluster: _Cluster, vector: np.ndarray) -> None:
        self._vectors[len(self.clusters)] = vector
        self.clusters.append(cluster)
        self.by_text[cluster.text.lower()] = cluster


_KIND_ORDER = (PointKind.PRO, PointKind.CON, PointKind.THEME, PointKind.POINT)


def merge_points(
    candidates: Sequence[Candidate],
    *,
    embed: Callable[[Sequence[str]], list[list[float]]],
    max_points: int,
    threshold: float = DEFAULT_MERGE_THRESHOLD,
    max_citations: int = MAX_CITATIONS,
) -> list[SummaryPoint]:
    """One list: candidates of a kind merged when their texts are close (cosine >= ``threshold``), the best
    supported text naming the merged point; the ``max_points`` points with most documents kept per kind.

    Candidates are taken most supported first, so each point is named by its most cited phrasing, and each
    joins the cluster whose leader is closest. Embeddings are computed once per distinct text (in batches
    of 64); the comparisons are one matrix product per candidate, so thousands of points merge in seconds.
    """
    import numpy as np  # here, not at import: the functions that never merge do not load it

    ordered = sorted(candidates, key=lambda c: -c.count)
    distinct = list(dict.fromkeys(c.text for c in ordered))
    if not distinct:
        return []
    matrix = np.asarray(list(_embed_all(distinct, embed)), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.where(norms == 0, 1.0, norms)
    row = {text: i for i, text in enumerate(distinct)}
    sizes = Counter(c.kind for c in ordered)
    groups: dict[PointKind, _Leaders] = {}
    for candidate in ordered:
        leaders = groups.get(candidate.kind)
        if leaders is None:
            leaders = groups[candidate.kind] = _Leaders(sizes[candidate.kind], matrix.shape[1])
        vector = matrix[row[candidate.text]]
        cluster = leaders.by_text.get(candidate.text.lower()) or leaders.closest(vector, threshold)
        if cluster is None:
            cluster = _Cluster(kind=candidate.kind, text=candidate.text, document_ids=[])
            leaders.add(cluster, vector)
        cluster.absorb(candidate)
    points: list[SummaryPoint] = []
    for kind in _KIND_ORDER:
        clusters = groups[kind].clusters if kind in groups else []
        kept = sorted(clusters, key=lambda c: -c.count)[:max_points]
        points.extend(
            SummaryPoint(kind=kind, text=c.text, document_ids=tuple(c.document_ids[:max_citations]), count=c.count)
            for c in kept
        )
    return points


def _embed_all(texts: Sequence[str], embed: Callable[[Sequence[str]], list[list[float]]]) -> Iterator[list[float]]:
    for start in range(0, len(texts), 64):
        yield from embed(texts[start : start + 64])


# --------------------------------------------------------------------------- language


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP_WORDS: dict[str, frozenset[str]] = {
    "english": _words("the and is are was with for not but very too it this of to in on my"),
    "german": _words("der die das und ist nicht sehr mit f\u00fcr zu ein eine ich es auch aber den dem"),
    "french": _words("le la les et est pas tr\u00e8s avec pour un une je il ce mais des du trop"),
    "spanish": _words("el la los las y es no muy con para un una pero del demasiado lo se"),
    "italian": _words("il lo la gli le e \u00e8 non molto con per un una ma del troppo che"),
    "portuguese": _words("o a os as e \u00e9 n\u00e3o muito com para um uma mas do da demais"),
    "dutch": _words("de het een en is niet zeer erg met voor te maar van ik ook"),
}
#: Characters English text uses beyond ASCII (typographic quotes, dashes, the ellipsis).
_ENGLISH_EXTRA = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"


def detect_language(text: str) -> str | None:
    """The language whose common words ``text`` holds most of (None: too short to tell)."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    scores = {name: sum(w in stop for w in words) for name, stop in _STOP_WORDS.items()}
    best = max(scores, key=lambda name: scores[name])
    ranked = sorted(scores.values(), reverse=True)
    return best if ranked[0] >= 1 and ranked[0] > ranked[1] else None


def needs_rewrite(texts: Sequence[str], language: str) -> bool:
    """Whether the final texts must be rewritten into ``language``.

    For English: when a text reads as another language or holds letters English does not use. For a
    language told apart here (German, French, ...): when a text reads as another one, or none of them reads
    as it. Any other language: always (a small model writes English whatever it is asked).
    """
    target = language.strip().lower()
    if not texts:
        return False
    if target not in _STOP_WORDS:
        return True
    detected = [detect_language(text) for text in texts]
    if any(found is not None and found != target for found in detected):
        return True
    if target == "english":
        return any(re.search(f"[^\\x00-\\x7f{_ENGLISH_EXTRA}]", text) for text in texts)
    return not any(found == target for found in detected)


def parse_rewrite(reply: str, originals: Sequence[str]) -> list[str]:
    """The rewritten texts by number; an original stays where its line is missing or implausible."""
    out = list(originals)
    for line in reply.splitlines():
        match = re.match(r"^\s*(\d{1,3})[.):]\s*(.+)$", line)
        if not match:
            continue
        n = int(match[1])
        text = _clean(match[2])
        if 1 <= n <= len(out) and 2 <= len(text) <= max(3 * len(originals[n - 1]), 60):
            out[n - 1] = text
    return out
