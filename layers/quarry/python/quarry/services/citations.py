"""Map ``[n]`` markers in an answer to the sources the model was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from quarry.models import Citation, Hit

__all__ = ["extract_citations", "normalise_markers"]

# Small models write "[Source 1]", "[source 2, 3]" or "[1, 2]"; bring them to "[1]" / "[1][2]".
_VARIANT = re.compile(r"\[(?:sources?\s*)?(\d+(?:\s*[,;]\s*(?:sources?\s*)?\d+)*)\]", re.IGNORECASE)
_MARKER = re.compile(r"\[(\d+)\]")


def normalise_markers(text: str, n_sources: int) -> str:
    """Rewrite marker variants to ``[n]`` and drop markers that point at no source."""

    def fix(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
        return "".join(f"[{n}]" for n in numbers if 1 <= n <= n_sources)

    return _VARIANT.sub(fix, text)


def extract_citations(answer: str, hits: Sequence[Hit]) -> tuple[str, list[Citation]]:
    """Return the cleaned answer and one Citation per distinct valid marker, in order of number."""
    cleaned = normalise_markers(answer, len(hits))
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
