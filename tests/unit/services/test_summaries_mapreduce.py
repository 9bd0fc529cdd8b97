"""Reading a small model's map replies, merging points, batching, and the language check."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from quarry.models import Role
from quarry.services.summary_mapreduce import (
    BatchDocument,
    Batcher,
    Candidate,
    batch_points,
    grounded,
    grounded_points,
    merge_points,
    needs_rewrite,
    parse_reply,
    parse_rewrite,
    said_nothing,
    supporting_sentence,
)
from quarry.services.summary_prompts import DOCUMENT_CHARS, clip, document_turns, parse_polarity, polarity_turns
from quarry.summary_models import PointKind, SummaryKind
from tests.fakes import HashEmbedder


def parsed(reply: str, kind: SummaryKind = SummaryKind.PROS_CONS) -> list[tuple[str, str]]:
    return [(point_kind.value, text) for point_kind, text in parse_reply(reply, kind=kind)]


def test_points_with_their_judgement_after_them() -> None:
    assert parsed("long battery life (good) | screen too dim (bad)") == [
        ("pro", "Long battery life"),
        ("con", "Screen too dim"),
    ]


@pytest.mark.parametrize(
    "reply",
    [
        "long battery life (good)",
        "Long battery life (Good).",
        "- long battery life (good)\n",
        "1. **long battery life** (good)",
        "PRO: long battery life",
        "Good: long battery life",
        "long battery life [positive]",
        '"long battery life" (good)',
        "[1] long battery life (good)",
        "long battery life (good) | long battery life (good)",
    ],
)
def test_the_forms_small_models_write_are_read(reply: str) -> None:
    assert parsed(reply) == [("pro", "Long battery life")]


def test_points_on_several_lines_or_separated_by_semicolons() -> None:
    assert parsed("comfortable (good)\ncheap case (bad); too expensive (bad)") == [
        ("pro", "Comfortable"),
        ("con", "Cheap case"),
        ("con", "Too expensive"),
    ]


def test_none_and_chatter_are_no_points() -> None:
    assert parsed("NONE") == []
    assert parsed("none (no point) | noise cancelling (good)") == [("pro", "Noise cancelling")]
    assert parsed("The review is mostly positive about the product overall, with some small reservations here") == []
    assert parsed("battery life") == []  # a pro or con needs its judgement
    assert said_nothing("NONE.") and said_nothing("") and said_nothing("none (no point)")
    assert not said_nothing("The review is mixed")


def test_themes_and_custom_points_take_any_label_or_none() -> None:
    assert parsed("battery life | screen (bad)", SummaryKind.THEMES) == [("theme", "Battery life"), ("theme", "Screen")]
    assert parsed("THEME: battery life", SummaryKind.THEMES) == [("theme", "Battery life")]
    assert parsed("lasts two days | NONE", SummaryKind.CUSTOM) == [("point", "Lasts two days")]


def test_a_batch_cites_every_document_that_made_a_point() -> None:
    points = batch_points(
        [
            ("a", [(PointKind.PRO, "Long battery life"), (PointKind.CON, "Too dim")]),
            ("b", []),
            ("c", [(PointKind.PRO, "long battery life")]),
            ("d", [(PointKind.CON, "Feels cheap"), (PointKind.CON, "Too dim")]),
        ]
    )
    assert [(p.kind.value, p.text, p.document_ids) for p in points] == [
        ("pro", "Long battery life", ("a", "c")),
        ("con", "Too dim", ("a", "d")),
        ("con", "Feels cheap", ("d",)),
    ]
    capped = batch_points([(str(n), [(PointKind.PRO, f"Point {n % 3}")]) for n in range(9)], limit_per_kind=2)
    assert [p.text for p in capped] == ["Point 0", "Point 1"]


def embed(texts: Sequence[str]) -> list[list[float]]:
    return HashEmbedder().embed_documents(texts)


def test_merge_unions_citations_and_counts_distinct_documents() -> None:
    points = merge_points(
        [
            Candidate(PointKind.PRO, "Long battery life", ("a", "b"), 2),
            Candidate(PointKind.PRO, "Battery life long", ("b", "c"), 2),  # the same words: cosine 1
            Candidate(PointKind.PRO, "Charges fast", ("d",), 1),
            Candidate(PointKind.CON, "Long battery life", ("e",), 1),  # another kind never merges
        ],
        embed=embed,
        max_points=5,
    )
    assert [(p.kind, p.text, p.document_ids, p.count) for p in points] == [
        (PointKind.PRO, "Long battery life", ("a", "b", "c"), 3),
        (PointKind.PRO, "Charges fast", ("d",), 1),
        (PointKind.CON, "Long battery life", ("e",), 1),
    ]


def test_merge_keeps_the_most_mentioned_points_and_a_previous_results_uncited_count() -> None:
    points = merge_points(
        [
            Candidate(PointKind.THEME, "Battery", ("a",), 40),  # a previous result: 40 documents, 1 cited
            Candidate(PointKind.THEME, "Battery", ("a", "b"), 2),
            Candidate(PointKind.THEME, "Price", ("c",), 1),
            Candidate(PointKind.THEME, "Screen", ("c", "d"), 2),
        ],
        embed=embed,
        max_points=2,
        max_citations=1,
    )
    assert [(p.text, p.document_ids, p.count) for p in points] == [("Battery", ("a",), 41), ("Screen", ("c",), 2)]


def test_merge_threshold_separates_different_points() -> None:
    candidates = [
        Candidate(PointKind.PRO, "Long battery life", ("a",), 1),
        Candidate(PointKind.PRO, "Bright screen", ("b",), 1),
    ]
    assert len(merge_points(candidates, embed=embed, max_points=5)) == 2
    assert len(merge_points(candidates, embed=embed, max_points=5, threshold=-1.0)) == 1


def test_batches_fill_up_to_the_character_and_the_document_cap() -> None:
    batcher = Batcher(max_chars=1000, max_documents=3)
    closed = [batcher.add(BatchDocument(str(n), str(n), 400)) for n in range(5)]
    closed.append(batcher.finish())
    assert [len(batch) for batch in closed if batch] == [2, 2, 1]
    small = Batcher(max_chars=10_000, max_documents=3)
    closed = [small.add(BatchDocument(str(n), str(n), 10)) for n in range(7)]
    closed.append(small.finish())
    assert [len(batch) for batch in closed if batch] == [3, 3, 1]


def test_a_document_prompt_shares_its_prefix_and_fits_the_local_models_context() -> None:
    """Everything before the document is the same for every document (llama.cpp keeps it evaluated)."""
    one = document_turns(SummaryKind.PROS_CONS, "Short review.", language="German")
    two = document_turns(SummaryKind.PROS_CONS, "word " * 2000, language="German")
    assert one[:-1] == two[:-1] and one[-1].content == "Document: Short review."
    assert "Write the points in German." in one[0].content
    assert two[-1].content.endswith(" ...") and len(two[-1].content) < DOCUMENT_CHARS + 20
    assert sum(len(t.content) for t in two) / 3 < 4096 - 64  # ~3-4 characters a token, and the answer
    assert clip("a  b\n\nc") == "a b c"
    custom = document_turns(SummaryKind.CUSTOM, "Text.", instructions=" What about price? ")
    assert custom[-1].content == "Question: What about price?\nDocument: Text."


@pytest.mark.parametrize(
    ("texts", "language", "expected"),
    [
        (["Long battery life", "Screen too dim"], "English", False),
        (["Lange Akkulaufzeit", "Bildschirm ist zu dunkel"], "English", True),
        (["La batterie dure très longtemps"], "English", True),
        (["The battery is great"], "German", True),
        (["Der Akku ist sehr gut"], "German", False),
        (["Long battery life"], "Japanese", True),
        ([], "German", False),
    ],
)
def test_a_rewrite_is_asked_only_when_the_texts_are_not_in_the_language(
    texts: list[str], language: str, expected: bool
) -> None:
    assert needs_rewrite(texts, language) is expected


def test_a_rewrite_keeps_the_original_where_a_line_is_missing_or_implausible() -> None:
    reply = "1. Lange Akkulaufzeit [3]\n3. " + "x" * 500
    assert parse_rewrite(reply, ["Long battery life", "Too dim", "Cheap"]) == ["Lange Akkulaufzeit", "Too dim", "Cheap"]


# --------------------------------------------------------------------------- points grounded in their document


@pytest.mark.parametrize(
    ("point", "document"),
    [
        ("Rich bass", "The bass is rich and deep."),
        ("Long battery life", "The battery lasts forever."),  # paraphrase around a word of the document
        ("Noisy grinder", "The grinder is so noisy in the morning."),
        ("Plasticky build", "Cheap plastic everywhere, the build is plasticky."),
        ("Charges fast", "It charges in no time."),
        ("Very good", "Love it."),  # no word of its own: nothing to check
        ("Sounds great", "Music sounds fantastic."),
    ],
)
def test_a_point_in_its_documents_words_is_grounded(point: str, document: str) -> None:
    assert grounded(point, document)


@pytest.mark.parametrize(
    ("point", "document"),
    [
        ("Feels cheap", "The sound is great and the battery lasts forever."),  # copied from a worked example
        ("Feels cheap", "The build feels solid."),  # a judgement word is not enough
        ("Rude front desk staff", "Makes the best coffee I have had."),
        ("Hip belt comfortable", "The zipper broke after two weeks."),
    ],
)
def test_a_point_the_document_does_not_say_is_not_grounded(point: str, document: str) -> None:
    assert not grounded(point, document)


def test_grounded_points_drops_a_copied_point_and_keeps_the_others_in_order() -> None:
    points = [
        (PointKind.PRO, "Deep bass"),
        (PointKind.CON, "Feels cheap"),
        (PointKind.CON, "Connection keeps dropping"),
    ]
    kept, dropped = grounded_points(
        points, "The bass is deep. The connection keeps dropping on my phone.", language="English"
    )
    assert kept == [(PointKind.PRO, "Deep bass"), (PointKind.CON, "Connection keeps dropping")]
    assert dropped == [(PointKind.CON, "Feels cheap")]


def test_grounded_points_keeps_the_points_of_a_document_in_another_language() -> None:
    points = [(PointKind.PRO, "Long battery life"), (PointKind.CON, "Feels cheap")]
    kept, dropped = grounded_points(points, "Der Akku h\u00e4lt ewig, das ist sehr gut.", language="English")
    assert kept == points and dropped == []


def test_grounded_points_keeps_a_paraphrase_close_in_meaning_to_a_sentence() -> None:
    """Not in the document's words, but close to one of its sentences by the embedder: a paraphrase."""
    meaning = {
        "too expensive": [1.0, 0.0, 0.0],
        "the price is far too high.": [0.9, 0.1, 0.0],
        "love the colour.": [0.0, 1.0, 0.0],
    }
    calls: list[list[str]] = []

    def embed(texts: Sequence[str]) -> list[list[float]]:
        calls.append(list(texts))
        return [meaning.get(text.lower(), [0.0, 0.0, 1.0]) for text in texts]

    points = [(PointKind.CON, "Too expensive"), (PointKind.CON, "Feels cheap"), (PointKind.PRO, "Love the colour")]
    kept, dropped = grounded_points(
        points, "The price is far too high. Love the colour.", language="English", embed=embed
    )
    assert kept == [(PointKind.CON, "Too expensive"), (PointKind.PRO, "Love the colour")]
    assert dropped == [(PointKind.CON, "Feels cheap")]
    assert calls == [["Too expensive", "Feels cheap", "The price is far too high.", "Love the colour."]]


def test_grounded_points_embeds_nothing_when_every_point_is_in_the_documents_words() -> None:
    def embed(texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError("not needed")

    kept, dropped = grounded_points(
        [(PointKind.PRO, "Rich bass")], "The bass is rich.", language="English", embed=embed
    )
    assert kept == [(PointKind.PRO, "Rich bass")] and dropped == []


@pytest.mark.parametrize(
    ("point", "document", "sentence"),
    [
        (
            "Battery never runs out",
            "Great sound. The battery never runs out on long flights.",
            "The battery never runs out on long flights.",
        ),
        ("Loud grinder", "Makes good coffee, but the grinder is loud, it wakes everyone.", "but the grinder is loud,"),
        ("Lots of pockets", "Roomy inside. Lots of pockets; the zip broke.", "Lots of pockets;"),
    ],
)
def test_the_supporting_sentence_is_the_clause_with_most_of_the_points_words(
    point: str, document: str, sentence: str
) -> None:
    assert supporting_sentence(point, document) == sentence


def test_a_point_with_no_word_in_the_document_has_no_supporting_sentence() -> None:
    assert supporting_sentence("Feels cheap", "The battery lasts for days.") is None
    assert supporting_sentence("Very good", "The battery lasts for days.") is None  # judgement words only


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("praise", PointKind.PRO),
        ("Complaint.", PointKind.CON),
        ("**praise**", PointKind.PRO),
        ("unsure", None),
        ("", None),
    ],
)
def test_a_polarity_answer_is_read_leniently_and_anything_else_is_no_verdict(
    answer: str, kind: PointKind | None
) -> None:
    assert parse_polarity(answer) is kind


def test_a_polarity_check_asks_about_the_sentence_alone_after_shared_examples() -> None:
    first, second = polarity_turns("The lid leaks."), polarity_turns("Solid build.")
    assert first[:-1] == second[:-1]  # the same prefix for every check: a local model evaluates it once
    assert first[-1].content == "The lid leaks." and first[-1].role is Role.USER
