"""RecursiveChunker: exact spans, token budgets, overlap, metadata, determinism."""

from __future__ import annotations

import itertools
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quarry.models import Chunk, ChunkingConfig
from quarry.ports import ParsedDocument, ParsedSection
from quarry.text.chunking import RecursiveChunker
from quarry.text.tokens import HFTokenizer


class WhitespaceTokenizer:
    """A second, offset-less implementation of ports.Tokenizer: exercises the re-encoding path."""

    def count(self, text: str) -> int:
        return len(text.split())


@pytest.fixture(scope="module")
def tokenizer() -> HFTokenizer:
    tok = HFTokenizer()
    tok.warm_up()
    return tok


def chunk(tokenizer: object, text: str, size: int = 32, overlap: int = 8, **kwargs: object) -> list[Chunk]:
    chunker = RecursiveChunker(tokenizer, ChunkingConfig(size=size, overlap=overlap))  # type: ignore[arg-type]
    parsed = ParsedDocument(text=text, title="Doc", **kwargs)  # type: ignore[arg-type]
    return chunker.split("doc-1", "ws-1", parsed, base_metadata={"source": "file"})


def assert_well_formed(text: str, chunks: list[Chunk], tokenizer: HFTokenizer | None, size: int) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text.strip() == c.text != ""
        if tokenizer is not None:
            assert tokenizer.count(c.text) <= size
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    assert [c.end for c in chunks] == sorted(c.end for c in chunks)
    # Nothing is lost: every non-blank character is inside some chunk.
    covered = [False] * len(text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))


WORDS = st.sampled_from(
    ["the", "cell", "protein", "a", "É", "naïve", "東京", "x" * 30, "end.", "why?", "wow!", "(ok)", "-", "😀"]
)
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\n \n\n", "\t", ". "])


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(WORDS, SEPARATORS), max_size=300))
    lead = draw(st.sampled_from(["", " ", "\n\n"]))
    return lead + "".join(w + s for w, s in parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=documents(), size=st.integers(16, 64), overlap_ratio=st.floats(0, 0.9))
def test_spans_are_exact_and_within_budget(tokenizer: HFTokenizer, text: str, size: int, overlap_ratio: float) -> None:
    overlap = int(size * overlap_ratio)
    chunks = chunk(tokenizer, text, size=size, overlap=overlap)
    assert_well_formed(text, chunks, tokenizer, size)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=600))
def test_spans_are_exact_for_arbitrary_unicode(tokenizer: HFTokenizer, text: str) -> None:
    chunks = chunk(tokenizer, text, size=16, overlap=4)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text.strip()
    assert chunk(tokenizer, text, size=16, overlap=4) == chunks


@settings(max_examples=100, deadline=None)
@given(text=documents(), size=st.integers(16, 40))
def test_offsetless_tokenizer_gives_exact_spans_too(text: str, size: int) -> None:
    ws = WhitespaceTokenizer()
    chunks = chunk(ws, text, size=size, overlap=4)
    assert_well_formed(text, chunks, None, size)
    assert all(ws.count(c.text) <= size for c in chunks)


def test_empty_and_blank_documents_give_no_chunks(tokenizer: HFTokenizer) -> None:
    assert chunk(tokenizer, "") == []
    assert chunk(tokenizer, " \n\n\t ") == []


def test_short_document_is_one_stripped_chunk(tokenizer: HFTokenizer) -> None:
    [only] = chunk(tokenizer, "\n\n  Hello there, world.  \n")
    assert only.text == "Hello there, world."
    assert (only.start, only.end) == (4, 23)
    assert only.title == "Doc"
    assert only.id == "doc-1:0"
    assert (only.workspace_id, only.document_id) == ("ws-1", "doc-1")


def test_paragraph_boundaries_are_preferred(tokenizer: HFTokenizer) -> None:
    paragraphs = [" ".join(f"p{i}w{j}" for j in range(6)) for i in range(8)]  # ~18 tokens each
    text = "\n\n".join(paragraphs)
    chunks = chunk(tokenizer, text, size=40, overlap=0)
    assert len(chunks) > 1
    for c in chunks:
        # Every chunk is a run of whole paragraphs.
        assert c.text.split("\n\n")[0] in paragraphs
        assert c.text.split("\n\n")[-1] in paragraphs


def test_sentences_are_kept_whole_when_a_paragraph_is_too_long(tokenizer: HFTokenizer) -> None:
    sentences = [f"Sentence {i} tells a short story about item {i}." for i in range(20)]
    text = " ".join(sentences)
    chunks = chunk(tokenizer, text, size=48, overlap=0)
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.startswith("Sentence ")
        assert c.text.endswith(".")


def test_consecutive_chunks_overlap_by_at_most_the_overlap(tokenizer: HFTokenizer) -> None:
    text = " ".join(f"Fact number {i} is true." for i in range(60))
    size, overlap = 40, 12
    chunks = chunk(tokenizer, text, size=size, overlap=overlap)
    assert len(chunks) > 3
    overlaps = []
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.start > prev.start
        assert nxt.end > prev.end
        shared = text[nxt.start : prev.end] if nxt.start < prev.end else ""
        overlaps.append(tokenizer.count(shared))
    assert all(0 < o <= overlap for o in overlaps)


def test_zero_overlap_gives_disjoint_chunks(tokenizer: HFTokenizer) -> None:
    text = " ".join(f"Fact number {i} is true." for i in range(60))
    chunks = chunk(tokenizer, text, size=40, overlap=0)
    assert all(nxt.start >= prev.end for prev, nxt in itertools.pairwise(chunks))


def test_a_run_without_separators_is_cut_at_token_boundaries(tokenizer: HFTokenizer) -> None:
    rng = random.Random(7)
    blob = "".join(rng.choice("abcdefghij0123456789+/") for _ in range(3000))
    text = f"Before.\n\n{blob}\n\nAfter."
    chunks = chunk(tokenizer, text, size=64, overlap=0)
    assert_well_formed(text, chunks, None, 64)
    offsets = {a for a, _ in tokenizer.token_offsets(text)}
    assert all(c.start in offsets for c in chunks)
    assert len(chunks) > 5
    assert "".join("".join(c.text.split()) for c in chunks) == "".join(text.split())


def test_repeated_text_gets_its_own_positions(tokenizer: HFTokenizer) -> None:
    # str.find-based start indices (LangChain add_start_index) put all of these at 0.
    text = "\n\n".join(["same words again and again here"] * 12)
    chunks = chunk(tokenizer, text, size=16, overlap=0)
    assert len({c.start for c in chunks}) == len(chunks) > 1
    assert_well_formed(text, chunks, tokenizer, 16)


def test_metadata_merges_document_sections_and_base(tokenizer: HFTokenizer) -> None:
    page1 = " ".join(f"alpha{i}" for i in range(30))
    page2 = " ".join(f"beta{i}" for i in range(30))
    text = page1 + "\n\n" + page2
    sections = [
        ParsedSection(0, len(page1), {"page_number": 1, "source": "ignored"}),
        ParsedSection(len(page1) + 2, len(text), {"page_number": 2}),
    ]
    chunks = chunk(tokenizer, text, size=48, overlap=16, sections=sections, metadata={"subject": "S"})
    assert chunks[0].metadata == {"page_number": 1, "source": "file", "subject": "S"}
    assert chunks[-1].metadata == {"page_number": 2, "source": "file", "subject": "S"}
    spanning = [c for c in chunks if c.start < len(page1) < c.end]
    assert spanning, "some chunk should cross the page break"
    for c in spanning:
        assert c.metadata["page_number"] == 1
        assert c.metadata["page_number_end"] == 2


def test_chunks_outside_any_section_get_only_base_metadata(tokenizer: HFTokenizer) -> None:
    text = "one two three"
    [only] = chunk(tokenizer, text, sections=[ParsedSection(100, 120, {"page_number": 9})])
    assert only.metadata == {"source": "file"}


def test_split_is_deterministic_and_split_many_agrees(tokenizer: HFTokenizer) -> None:
    texts = [" ".join(f"Claim {i}.{j} holds." for j in range(40)) for i in range(5)]
    chunker = RecursiveChunker(tokenizer, ChunkingConfig(size=32, overlap=8))
    docs = [(f"d{i}", ParsedDocument(text=t, title=f"T{i}")) for i, t in enumerate(texts)]
    one_by_one = [chunker.split(d, "ws", p) for d, p in docs]
    assert one_by_one == [chunker.split(d, "ws", p) for d, p in docs]
    assert chunker.split_many("ws", docs) == one_by_one
    ws_chunker = RecursiveChunker(WhitespaceTokenizer(), ChunkingConfig(size=32, overlap=8))
    assert ws_chunker.split_many("ws", docs) == [ws_chunker.split(d, "ws", p) for d, p in docs]


def test_default_config_is_used_when_none_given(tokenizer: HFTokenizer) -> None:
    assert RecursiveChunker(tokenizer).config == ChunkingConfig()


def test_throughput_on_abstract_sized_documents(tokenizer: HFTokenizer) -> None:
    rng = random.Random(0)
    vocab = [
        "the",
        "of",
        "and",
        "protein",
        "cell",
        "cancer",
        "patients",
        "study",
        "results",
        "significant",
        "increased",
        "expression",
    ]
    abstracts = [
        ". ".join(" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 25))) for _ in range(rng.randint(5, 14)))
        for _ in range(1000)
    ]
    chunker = RecursiveChunker(tokenizer, ChunkingConfig(size=256, overlap=32))
    begin = time.perf_counter()
    out = chunker.split_many("ws", [(str(i), ParsedDocument(text=a, title="")) for i, a in enumerate(abstracts)])
    elapsed = time.perf_counter() - begin
    assert sum(len(c) for c in out) >= 1000
    assert elapsed < 10, f"1,000 abstracts took {elapsed:.1f}s"
