"""Map ``[n]`` markers in an answer to the sources the model was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from quarry.models import Citation, Hit

__all__ = ["attribute_sentences", "extract_citations", "normalise_markers"]

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
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[])")
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


def extract_citations(answer: str, hits: Sequence[Hit]) -> tuple[str, list[Citation]]:
    """Return the cleaned answer and one Citation per distinct valid marker, in order of number."""
    cleaned = attribute_sentences(normalise_markers(answer, len(hits)), hits)
    cited = sorted({int(n) for n in _MARKER.findall(cleaned)})
    citations = []
    for n in cited:
        hit = hits[n - 1]
        c = hit.chunk
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
            )
        )
    return cleaned, citations
