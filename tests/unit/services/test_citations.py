"""Mapping [n] in an answer to the sources the model was given."""

from __future__ import annotations

from quarry.models import Chunk, Hit
from quarry.services.citations import extract_citations, normalise_markers, supporting_span

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


# --------------------------------------------------------------------------- the source people recognise

NAMED = Hit(
    Chunk(
        "w",
        "doc-readme",
        2,
        "# Quarry\nRefunds are possible within 27 days. Shipping is free over 40 euros.\n- Returns go to Ghent",
        300,
        400,
        title="Quarry",
        metadata={"document_name": "returns-policy.md", "page_number": 4},
    ),
    score=0.7,
)


def test_citations_carry_the_documents_name_and_page() -> None:
    _, [citation] = extract_citations("Refunds are possible within 27 days [1].", [NAMED])
    assert (citation.document_name, citation.title, citation.page) == ("returns-policy.md", "Quarry", 4)
    assert citation.workspace_id == "w"


def test_a_chunk_without_a_kept_name_falls_back_to_its_title_then_its_document_id() -> None:
    _, [titled] = extract_citations("Zorbania is landlocked [1].", SOURCES)
    assert (titled.document_name, titled.page) == ("Zorbania", None)
    untitled = Hit(Chunk("w", "doc-7", 0, "Zorbania is landlocked.", 0, 23), score=0.1)
    _, [bare] = extract_citations("Zorbania is landlocked [1].", [untitled])
    assert bare.document_name == "doc-7"


def test_the_highlight_is_the_passage_sentence_that_supports_the_citing_sentence() -> None:
    _, [citation] = extract_citations("You can get a refund within 27 days [1]. Ask support.", [NAMED])
    assert citation.highlight_start is not None and citation.highlight_end is not None
    assert citation.text[citation.highlight_start : citation.highlight_end] == "Refunds are possible within 27 days."


def test_each_citation_is_highlighted_for_its_own_sentence() -> None:
    _, citations = extract_citations("Cats sleep sixteen hours [2]. Zorbania has 2.4 million people [1].", SOURCES)
    spans = {c.n: c.text[c.highlight_start : c.highlight_end] for c in citations}
    assert spans == {
        1: "The population of Zorbania is about 2.4 million people.",
        2: "Cats are small carnivorous mammals that sleep sixteen hours.",
    }


def test_supporting_span_reads_lines_and_decimals_as_part_of_sentences() -> None:
    passage = NAMED.chunk.text
    start, end = supporting_span(passage, "Returns are sent to Ghent [1].") or (0, 0)
    assert passage[start:end] == "- Returns go to Ghent"
    start, end = supporting_span("It weighs 2.5 kg. It is blue.", "weighs 2.5 kg") or (0, 0)
    assert (start, end) == (0, 17)


def test_supporting_span_is_none_when_no_sentence_shares_a_word() -> None:
    assert supporting_span("Cats sleep a lot.", "Zorbania is landlocked [1].") is None
    assert supporting_span("Cats sleep a lot.", "[1]") is None
    assert supporting_span("", "Cats sleep") is None


def test_numbers_and_content_words_decide_between_similar_sentences() -> None:
    passage = (
        "Customers can return any item within 27 days of delivery. "
        "Refunds are paid to the original card within five working days."
    )
    start, end = supporting_span(passage, "Items can be returned within 27 days.[1]") or (0, 0)
    assert passage[start:end] == "Customers can return any item within 27 days of delivery."
    start, end = supporting_span(passage, "The refund reaches your card in five working days [1].") or (0, 0)
    assert passage[start:end] == "Refunds are paid to the original card within five working days."


def test_a_source_cited_by_several_sentences_highlights_the_support_of_the_first() -> None:
    passage = Hit(
        Chunk(
            "w",
            "p",
            0,
            "Customers can return any item within 27 days of delivery. "
            "Refunds are paid to the original card within five working days.",
            0,
            120,
        ),
        score=0.5,
    )
    _, [citation] = extract_citations(
        "Customers can return any item within 27 days of delivery.[1] "
        "Refunds are paid to the original card within five working days.[1]",
        [passage],
    )
    highlighted = citation.text[citation.highlight_start : citation.highlight_end]
    assert highlighted == "Customers can return any item within 27 days of delivery."
