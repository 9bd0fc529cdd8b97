"""Token-aware recursive chunking with exact character spans.

The text is cut recursively at the coarsest boundary that makes every piece fit
the token budget: paragraphs, then lines, then sentences, then words, and as a
last resort at token boundaries. Neighbouring pieces are then merged greedily up
to ``config.size`` tokens, and each new chunk starts with the trailing pieces of
the previous one that fit in ``config.overlap`` tokens (the semantics of
LangChain's ``RecursiveCharacterTextSplitter``).

Pieces are kept as ``(start, end)`` offsets into the parsed text and never
rebuilt from strings, so ``parsed.text[chunk.start:chunk.end] == chunk.text``
holds for every chunk. (LangChain's ``add_start_index`` finds the start again
with ``str.find`` and drops separators, which misplaces chunks of repeated text.)
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from quarry.models import Chunk, ChunkingConfig
from quarry.ports import ParsedDocument, ParsedSection, Tokenizer

__all__ = ["BatchSpanTokenizer", "RecursiveChunker", "SpanTokenizer"]

# Coarsest first. A piece ends right after its separator, so pieces tile the text.
_SEPARATORS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\n[ \t\r\f\v]*\n\s*"),  # paragraphs
    re.compile(r"\n\s*"),  # lines
    re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|(?<=[\u3002\uff01\uff1f])"),  # sentences
    re.compile(r"\s+"),  # words
)

Span = tuple[int, int]


@runtime_checkable
class SpanTokenizer(Protocol):
    """A tokenizer that can say where its tokens are; lets spans be counted without re-encoding."""

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...


@runtime_checkable
class BatchSpanTokenizer(Protocol):
    def token_offsets_many(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...


class _SpanCounter:
    """Token counts of spans of one text."""

    def __init__(self, text: str, tokenizer: Tokenizer, offsets: Sequence[tuple[int, int]] | None = None) -> None:
        self._text = text
        self._count: Callable[[str], int] = tokenizer.count
        if offsets is None and isinstance(tokenizer, SpanTokenizer):
            offsets = tokenizer.token_offsets(text)
        self._starts = None if offsets is None else [start for start, _ in offsets]

    def count(self, start: int, end: int) -> int:
        if self._starts is None:
            return self._count(self._text[start:end])
        # A token belongs to the span its first character is in: counts are additive over a tiling.
        return bisect.bisect_left(self._starts, end) - bisect.bisect_left(self._starts, start)

    def cut_near(self, start: int, end: int) -> int:
        """A cut strictly inside ``(start, end)`` near the middle, on a token boundary when known."""
        middle = (start + end) // 2
        if self._starts is not None:
            i = bisect.bisect_left(self._starts, middle)
            for candidate in (i, i - 1):
                if 0 <= candidate < len(self._starts) and start < self._starts[candidate] < end:
                    return self._starts[candidate]
        return max(start + 1, middle)


class RecursiveChunker:
    """Splits a parsed document into ``Chunk``s of at most ``config.size`` tokens."""

    def __init__(self, tokenizer: Tokenizer, config: ChunkingConfig | None = None) -> None:
        self._tokenizer = tokenizer
        self._config = config or ChunkingConfig()

    @property
    def config(self) -> ChunkingConfig:
        return self._config

    def split(
        self,
        doc_id: str,
        workspace_id: str,
        parsed: ParsedDocument,
        *,
        base_metadata: Mapping[str, Any] | None = None,
    ) -> list[Chunk]:
        """Chunks with ordinals from 0 and spans into ``parsed.text``.

        Metadata, later sources winning: ``parsed.metadata``, then the sections the chunk
        overlaps (see ``_SectionIndex``), then ``base_metadata``.
        """
        return self._chunks(doc_id, workspace_id, parsed, base_metadata, self._spans(parsed.text, None))

    def split_many(
        self,
        workspace_id: str,
        documents: Sequence[tuple[str, ParsedDocument]],
        *,
        base_metadata: Mapping[str, Any] | None = None,
    ) -> list[list[Chunk]]:
        """``split`` for many ``(doc_id, parsed)`` pairs, tokenizing them in one batch when the tokenizer can."""
        texts = [parsed.text for _, parsed in documents]
        offsets: Sequence[Sequence[tuple[int, int]] | None] = [None] * len(texts)
        if isinstance(self._tokenizer, BatchSpanTokenizer):
            offsets = self._tokenizer.token_offsets_many(texts)
        return [
            self._chunks(doc_id, workspace_id, parsed, base_metadata, self._spans(parsed.text, doc_offsets))
            for (doc_id, parsed), doc_offsets in zip(documents, offsets, strict=True)
        ]

    def spans(self, text: str) -> list[Span]:
        """The ``[start, end)`` spans of the chunks of ``text``: stripped, non-empty, in order."""
        return self._spans(text, None)

    def _spans(self, text: str, offsets: Sequence[tuple[int, int]] | None) -> list[Span]:
        if not text or text.isspace():
            return []
        counter = _SpanCounter(text, self._tokenizer, offsets)
        pieces = self._split(text, counter, 0, len(text), 0)
        return self._merge(text, counter, pieces)

    def _chunks(
        self,
        doc_id: str,
        workspace_id: str,
        parsed: ParsedDocument,
        base_metadata: Mapping[str, Any] | None,
        spans: Sequence[Span],
    ) -> list[Chunk]:
        sections = _SectionIndex(parsed.sections)
        base = dict(base_metadata or {})
        return [
            Chunk(
                workspace_id=workspace_id,
                document_id=doc_id,
                ordinal=ordinal,
                text=parsed.text[start:end],
                start=start,
                end=end,
                title=parsed.title,
                metadata={**parsed.metadata, **sections.metadata(start, end), **base},
            )
            for ordinal, (start, end) in enumerate(spans)
        ]

    # ------------------------------------------------------------------ splitting

    def _split(self, text: str, counter: _SpanCounter, start: int, end: int, level: int) -> list[Span]:
        if counter.count(start, end) <= self._config.size:
            return [(start, end)]
        if level == len(_SEPARATORS):
            return self._halve(counter, start, end)
        pieces = _cut(text, _SEPARATORS[level], start, end)
        if len(pieces) == 1:
            return self._split(text, counter, start, end, level + 1)
        out: list[Span] = []
        for piece_start, piece_end in pieces:
            if counter.count(piece_start, piece_end) <= self._config.size:
                out.append((piece_start, piece_end))
            else:
                out.extend(self._split(text, counter, piece_start, piece_end, level + 1))
        return out

    def _halve(self, counter: _SpanCounter, start: int, end: int) -> list[Span]:
        """Last resort for runs without separators (long URLs, base64...): cut at token boundaries."""
        if end - start <= 1 or counter.count(start, end) <= self._config.size:
            return [(start, end)]
        middle = counter.cut_near(start, end)
        return self._halve(counter, start, middle) + self._halve(counter, middle, end)

    # ------------------------------------------------------------------ merging

    def _merge(self, text: str, counter: _SpanCounter, pieces: Sequence[Span]) -> list[Span]:
        size, overlap = self._config.size, self._config.overlap
        tokens = [counter.count(s, e) for s, e in pieces]
        out: list[Span] = []
        first, n = 0, len(pieces)
        while first < n:
            last, total = first, tokens[first]
            while last + 1 < n and total + tokens[last + 1] <= size:
                last += 1
                total += tokens[last]
            span = _strip(text, pieces[first][0], pieces[last][1])
            if span is not None and not (out and out[-1][0] <= span[0] and span[1] <= out[-1][1]):
                out.append(span)
            if last + 1 >= n:
                break
            first = _overlap_start(tokens, first, last, overlap, size)
        return out


def _overlap_start(tokens: Sequence[int], first: int, last: int, overlap: int, size: int) -> int:
    """First piece of the next chunk: trailing pieces of [first, last] worth at most ``overlap`` tokens.

    The carried-over pieces plus the next new piece must still fit, so the next chunk
    always advances; it never starts at ``first`` again.
    """
    following = tokens[last + 1]
    start, carried = last + 1, 0
    while (
        start - 1 > first
        and carried + tokens[start - 1] <= overlap
        and (carried + tokens[start - 1] + following <= size)
    ):
        start -= 1
        carried += tokens[start]
    return start


def _cut(text: str, separator: re.Pattern[str], start: int, end: int) -> list[Span]:
    """Tile ``[start, end)`` into pieces that each end right after a separator match."""
    pieces: list[Span] = []
    piece_start = start
    for match in separator.finditer(text, start, end):
        cut = match.end()
        if piece_start < cut < end:
            pieces.append((piece_start, cut))
            piece_start = cut
    pieces.append((piece_start, end))
    return pieces


def _strip(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


class _SectionIndex:
    """Metadata of the sections a span overlaps.

    For each key the first overlapping section's value wins; when the last
    overlapping section has a different value it is kept as ``<key>_end``
    (a chunk spanning pages 3 and 4 has ``page_number=3, page_number_end=4``).
    """

    def __init__(self, sections: Sequence[ParsedSection]) -> None:
        self._sections = sorted(sections, key=lambda s: (s.start, s.end))
        self._max_end = 0
        self._prefix_max_end: list[int] = []
        for section in self._sections:
            self._max_end = max(self._max_end, section.end)
            self._prefix_max_end.append(self._max_end)

    def overlapping(self, start: int, end: int) -> list[ParsedSection]:
        # Sections are sorted by start; any section before the first whose running max end
        # exceeds ``start`` cannot overlap.
        first = bisect.bisect_right(self._prefix_max_end, start)
        found: list[ParsedSection] = []
        for section in self._sections[first:]:
            if section.start >= end:
                break
            if section.end > start and section.start < section.end:
                found.append(section)
        return found

    def metadata(self, start: int, end: int) -> dict[str, Any]:
        sections = self.overlapping(start, end)
        if not sections:
            return {}
        merged: dict[str, Any] = {}
        for section in sections:
            for key, value in section.metadata.items():
                merged.setdefault(key, value)
        for key, value in sections[-1].metadata.items():
            if merged.get(key) != value:
                merged[f"{key}_end"] = value
        return merged
