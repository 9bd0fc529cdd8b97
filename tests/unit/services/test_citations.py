"""Mapping [n] in an answer to the sources the model was given."""

from __future__ import annotations

from quarry.models import Chunk, Hit
from quarry.services.citations import extract_citations, normalise_markers

SOURCES = [
    Hit(
        Chunk(
            "w",
            "zorb",
            0,
            "Zorbania is landlocked. The population of Zorbania is about 2.4 million people.",
            100,
            180,
            title="Zorbania",
        ),
        score=0.9,
    ),
    Hit(
        Chunk("w", "cats", 3, "Cats are small carnivorous mammals that sleep sixteen hours.", 5, 66, title="Cats"),
        score=0.4,
    ),
]


def test_valid_markers_become_citations_with_spans() -> None:
    text, citations = extract_citations("Cats sleep a lot [2]. Zorbania is landlocked [1].", SOURCES)
    assert text == "Cats sleep a lot [2]. Zorbania is landlocked [1]."
    assert [(c.n, c.document_id, c.chunk_id, c.start, c.end) for c in citations] == [
        (1, "zorb", "zorb:0", 100, 180),
        (2, "cats", "cats:3", 5, 66),
    ]


def test_marker_variants_are_normalised_and_invalid_ones_dropped() -> None:
    assert normalise_markers("see [Source 1], [source 2, 3] and [1;2] or [9]", 2) == "see [1], [2] and [1][2] or "
    text, citations = extract_citations("Known fact [7].", SOURCES)
    assert "[7]" not in text and citations == []


def test_uncited_sentence_copied_from_a_source_is_attributed() -> None:
    text, citations = extract_citations("The population of Zorbania is about 2.4 million people.", SOURCES)
    assert text == "The population of Zorbania is about 2.4 million people [1]."
    assert [c.n for c in citations] == [1]


def test_a_wrong_number_is_corrected_when_another_source_clearly_supports_it() -> None:
    text, _ = extract_citations("Zorbania has about 2.4 million people [2].", SOURCES)
    assert text.endswith("[1].")


def test_refusals_and_unrelated_text_cite_nothing() -> None:
    assert extract_citations("I don't know.", SOURCES) == ("I don't know.", [])
    text, citations = extract_citations("Paris is the capital of France.", SOURCES)
    assert citations == [] and "[" not in text
    assert extract_citations("Anything [1].", []) == ("Anything .", [])
