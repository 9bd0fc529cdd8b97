"""Okapi BM25 over an in-memory list of texts: the Python reference for the formula the pgvector adapter runs in SQL.

    score(t) = sum_q qtf(q) * idf(q) * tf(q,t) * (k1 + 1) / (tf(q,t) + k1 * (1 - b + b * dl(t) / avgdl))
    idf(q)   = ln(1 + (N - df(q) + 0.5) / (df(q) + 0.5))

``N`` is the number of texts, ``df`` how many hold the term, ``dl`` a text's length in terms and ``avgdl``
the mean length. The analyzer (text -> terms) is injected, so each user keeps its own: the in-memory
``VectorIndex`` fake uses PostgreSQL's english stop words (k1 0.9, b 0.4, the adapter's defaults), the
evaluation's passage pool plain lower-cased words (k1 1.2, b 0.75).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = ["BM25", "Analyzer", "query_terms"]

Analyzer = Callable[[str], Sequence[str]]


def query_terms(terms: Iterable[str], *, repeated: bool = True) -> dict[str, int]:
    """A query's terms with their counts (``qtf``); ``repeated=False`` counts each distinct term once."""
    counts = Counter(terms)
    return dict(counts) if repeated else dict.fromkeys(counts, 1)


class BM25:
    """Term statistics of a fixed list of texts, and their BM25 scores for a query."""

    def __init__(self, texts: Iterable[str], *, analyzer: Analyzer, k1: float = 1.2, b: float = 0.75) -> None:
        if not (math.isfinite(k1) and k1 >= 0):
            raise ValueError("BM25 k1 must be a finite number >= 0")
        if not 0 <= b <= 1:
            raise ValueError("BM25 b must be between 0 and 1")
        self.analyzer = analyzer
        self.k1 = k1
        self.b = b
        self._bags = [Counter(analyzer(text)) for text in texts]
        self._lengths = [sum(bag.values()) for bag in self._bags]
        self._df: Counter[str] = Counter(term for bag in self._bags for term in bag)
        self.n = len(self._bags)
        self.avgdl = sum(self._lengths) / self.n if self.n else 0.0

    def df(self, term: str) -> int:
        return self._df[term]

    def idf(self, term: str) -> float:
        df = self._df[term]
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def scores(self, query: str | Mapping[str, int]) -> dict[int, float]:
        """The score of every text holding at least one query term, by its position in ``texts``.

        ``query`` is a string (run through the analyzer, a repeated term counting each time) or terms
        with their counts (see :func:`query_terms`).
        """
        terms = query_terms(self.analyzer(query)) if isinstance(query, str) else query
        idf = {term: self.idf(term) for term in terms if term in self._df}
        k1, b, avgdl = self.k1, self.b, self.avgdl
        out: dict[int, float] = {}
        for position, (bag, dl) in enumerate(zip(self._bags, self._lengths, strict=True)):
            if not any(term in bag for term in idf):
                continue
            out[position] = sum(
                qtf * idf[term] * bag[term] * (k1 + 1) / (bag[term] + k1 * (1 - b + b * dl / avgdl))
                for term, qtf in terms.items()
                if term in bag
            )
        return out
