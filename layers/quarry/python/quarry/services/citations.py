"""Map ``[n]`` markers in an answer to the sources the model was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from quarry.models import Citation, Hit

__all__ = [
    "attribute_sentences",
    "extract_citations",
    "normalise_markers",
    "supporting_span",
]

# Small models write "[Source 1]", "[source 2, 3]" or "[1, 2]"; bring them to "[1]" / "[1][2]".
_VARIANT = re.compile(r"\[(?:sources?\s*)?(\d+(?:\s*[,;]\s*(?:sources?\s*)?\d+)*)\]", re.IGNORECASE)
_MARKER = re.compile(r"\[(\d+)\]")


def normalise_markers(text: str, n_sources: int) -> str:
    """Rewrite marker variants to ``[n]`` and drop markers that point at no source."""

    def fix(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
        return "".join(f"[{n}]" for n in numbers if 1 <= n <= n_sources)

    return _VARIANT.sub(fix, text)


_WORDS = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=\d\]))\s+(?=[A-Z0-9\[])")  # also after "days.[1]"
_MIN_SHARED = 0.5  # a sentence is attributed to a source sharing at least half its content words


def _words(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if len(w) > 2}


def attribute_sentences(answer: str, hits: Sequence[Hit]) -> str:
    """Add ``[n]`` to sentences the model left uncited when one source clearly supports them.

    Small models copy from a source and forget the marker, or cite the wrong number; a
    sentence whose words come mostly from one source is attributed to it.
    """
    if not hits:
        return answer
    sources = [_words(h.chunk.text) | _words(h.chunk.title) for h in hits]
    out = []
    for sentence in _SENTENCE.split(answer.strip()):
        words = _words(_MARKER.sub("", sentence))
        shares = [len(words & src) / len(words) if words else 0.0 for src in sources]
        best = max(range(len(sources)), key=lambda i: shares[i])
        cited = [int(n) for n in _MARKER.findall(sentence)]
        strong = shares[best] >= _MIN_SHARED and len(words) >= 2
        if strong and (not cited or all(shares[n - 1] < _MIN_SHARED / 2 for n in cited)):
            body = _MARKER.sub("", sentence).rstrip()
            tail = body[-1] if body and body[-1] in ".!?" else ""
            sentence = f"{body[: len(body) - len(tail)].rstrip()} [{best + 1}]{tail}"
        out.append(sentence)
    return " ".join(out)


_PASSAGE_BREAK = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences (and lines: headings and list items end without a full stop) as trimmed spans."""
    spans = []
    start = 0
    for gap in [*_PASSAGE_BREAK.finditer(text), None]:
        end = gap.start() if gap else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = gap.end() if gap else len(text)
    return spans


# Words too common to tell two sentences of one passage apart.
_COMMON = frozenset(
    {
        "the",
        "and",
        "are",
        "was",
        "were",
        "for",
        "with",
        "within",
        "from",
        "that",
        "this",
        "than",
        "then",
        "there",
        "their",
        "they",
        "them",
        "you",
        "your",
        "can",
        "could",
        "will",
        "would",
        "has",
        "have",
        "had",
        "not",
        "but",
        "any",
        "all",
        "its",
        "into",
        "onto",
        "per",
        "our",
        "out",
        "about",
        "after",
        "before",
        "also",
        "each",
    }
)


def _claim_words(text: str) -> set[str]:
    """Content words, and numbers of any length ("27" tells sentences apart better than most words)."""
    return {w for w in _WORDS.findall(text.lower()) if w.isdigit() or (len(w) > 2 and w not in _COMMON)}


def supporting_span(passage: str, claim: str) -> tuple[int, int] | None:
    """The span of ``passage``'s sentence sharing the most content words with ``claim``; None if none shares any.

    Ties go to the earlier sentence. Shares are counted on the passage sentence's distinct words, weighted
    by how much of the claim they cover, so a long sentence does not win on length alone.
    """
    wanted = _claim_words(_MARKER.sub("", claim))
    if not wanted:
        return None
    best: tuple[float, int, int] | None = None
    for start, end in _sentence_spans(passage):
        words = _claim_words(passage[start:end])
        shared = len(words & wanted)
        if not shared:
            continue
        score = shared / len(wanted) + shared / len(words)
        if best is None or score > best[0]:
            best = (score, start, end)
    return None if best is None else (best[1], best[2])


def _claims(answer: str) -> dict[int, list[str]]:
    """The answer's sentences citing each source, in answer order."""
    claims: dict[int, list[str]] = {}
    for sentence in _SENTENCE.split(answer.strip()):
        for n in sorted({int(x) for x in _MARKER.findall(sentence)}):
            claims.setdefault(n, []).append(sentence)
    return claims


def _first_support(passage: str, claims: Sequence[str]) -> tuple[int, int] | None:
    """The passage's support for the first citing sentence it supports (a source cited twice shows the first)."""
    return next((span for claim in claims if (span := supporting_span(passage, claim)) is not None), None)


def extract_citations(answer: str, hits: Sequence[Hit]) -> tuple[str, list[Citation]]:
    """Return the cleaned answer and one Citation per distinct valid marker, in order of number."""
    cleaned = attribute_sentences(normalise_markers(answer, len(hits)), hits)
    claims = _claims(cleaned)
    citations = []
    for n in sorted(claims):
        hit = hits[n - 1]
        c = hit.chunk
        span = _first_support(c.text, claims[n])
        citations.append(
            Citation(
                n=n,
                chunk_id=c.id,
                document_id=c.document_id,
                title=c.title,
                text=c.text,
                start=c.start,
                end=c.end,
                score=hit.score,
                document_name=c.document_name,
                workspace_id=c.workspace_id,
                page=c.page,
                highlight_start=span[0] if span else None,
                highlight_end=span[1] if span else None,
            )
        )
    return cleaned, citations
