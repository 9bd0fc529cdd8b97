"""Answer quality: correctness, citations, refusals and faithfulness of generated answers.

* Correctness: SQuAD v1.1 normalisation (lower case, punctuation and the articles a/an/the removed, white
  space collapsed) then exact match and token F1; citation markers are stripped first. A judge model can add
  a graded correctness score.
* Citations: every ``[n]`` (also ``[1, 2]``) must name a source 1..N of those given with the answer. An
  answer without any citation is *uncited*: counted on its own, never as valid nor invalid.
* Refusals: the answer says it does not know (``REFUSAL_PHRASES``, the chat service's wording).
* Faithfulness: the answer is split into sentences; each is judged against the passages it cites (or, when
  it cites none, the passages the whole answer cites, or else all passages given); the score is the share
  judged supported. A sentence citing only sources that do not exist is unsupported. Refusals get no score.

The judge is a port (``Judge``); the composition root backs it with the local LLM or a Bedrock model.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from quarry.errors import InvalidInput
from quarry.evaluation.bench import LatencyStats, latency_stats

__all__ = [
    "REFUSAL_PHRASES",
    "AnswerItemResult",
    "AnswerRecord",
    "AnswerReport",
    "CitationCheck",
    "FaithfulnessResult",
    "Judge",
    "check_citations",
    "cited_sources",
    "evaluate_answers",
    "exact_match",
    "faithfulness",
    "is_refusal",
    "normalize_answer",
    "split_sentences",
    "strip_citations",
    "token_f1",
]

REFUSAL_PHRASES: tuple[str, ...] = (
    "i don't know",
    "i do not know",
    "does not contain",
    "do not contain",
    "doesn't contain",
    "don't contain",
)
"""Lower-case phrases that mark an answer as a refusal (curly apostrophes are straightened first)."""

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


# --------------------------------------------------------------------------- correctness


def strip_citations(text: str) -> str:
    return re.sub(r"\s+", " ", _CITATION.sub(" ", text)).strip()


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation."""
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", no_punct).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(strip_citations(prediction)) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    predicted = normalize_answer(strip_citations(prediction)).split()
    expected = normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = Counter(predicted) & Counter(expected)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------- citations and refusals


def cited_sources(text: str) -> list[int]:
    """Source numbers cited in ``text``, in order of first appearance, without repeats."""
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(text):
        for part in match.group(1).split(","):
            seen.setdefault(int(part), None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class CitationCheck:
    cited: tuple[int, ...]
    invalid: tuple[int, ...]

    @property
    def has_citations(self) -> bool:
        return bool(self.cited)

    @property
    def valid(self) -> bool | None:
        """True when every citation names a given source; None for an uncited answer."""
        return None if not self.cited else not self.invalid


def check_citations(answer: str, sources: int) -> CitationCheck:
    if sources < 0:
        raise InvalidInput("the number of sources must not be negative")
    cited = cited_sources(answer)
    return CitationCheck(cited=tuple(cited), invalid=tuple(n for n in cited if not 1 <= n <= sources))


def is_refusal(answer: str) -> bool:
    text = " ".join(answer.replace("\u2019", "'").replace("\u2018", "'").lower().split())
    return any(phrase in text for phrase in REFUSAL_PHRASES)


# --------------------------------------------------------------------------- sentences and faithfulness

_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "no", "fig", "al", "approx", "u.s"}
)
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[\d+(?:\s*,\s*\d+)*\])+[.!?]?")


def _ends_with_abbreviation(fragment: str) -> bool:
    words = fragment.rstrip().split()
    if not words:
        return False
    last = words[-1].rstrip(".!?").lower().lstrip("(\"'")
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split on ., ! or ? followed by white space; keeps abbreviations, initials and numbers whole and
    attaches a trailing run of citation markers (``... end. [1]``) to the sentence before it."""
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        fragment = text[start : match.start()]
        if _ends_with_abbreviation(fragment) and fragment.rstrip().endswith("."):
            continue
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    sentences: list[str] = []
    for piece in pieces:
        leading = _LEADING_CITATIONS.match(piece)
        if sentences and leading:
            sentences[-1] = f"{sentences[-1]} {leading.group(0).strip()}"
            piece = piece[leading.end() :].strip()
        if piece:
            sentences.append(piece)
    return sentences


@runtime_checkable
class Judge(Protocol):
    """A model that grades answers. Backed by the local LLM or a Bedrock model at the composition root."""

    def judge(self, question: str, passage_texts: Sequence[str], statement: str) -> bool:
        """Is ``statement`` supported by the passages?"""
        ...

    def correct(self, question: str, reference: str, answer: str) -> float:
        """How correct is ``answer`` against ``reference``, from 0.0 to 1.0?"""
        ...


@dataclass(frozen=True, slots=True)
class FaithfulnessResult:
    statements: int
    supported: int
    unsupported_statements: tuple[str, ...]

    @property
    def score(self) -> float | None:
        return None if self.statements == 0 else self.supported / self.statements


def _passages_for(sentence: str, passages: Sequence[str], answer_cited: Sequence[int]) -> list[str] | None:
    """Passages a sentence is judged against; None when it cites only sources that do not exist."""
    cited = cited_sources(sentence)
    if cited:
        chosen = [passages[n - 1] for n in cited if 1 <= n <= len(passages)]
        return chosen or None
    from_answer = [passages[n - 1] for n in answer_cited if 1 <= n <= len(passages)]
    return from_answer or list(passages)


def faithfulness(question: str, answer: str, passages: Sequence[str], judge: Judge) -> FaithfulnessResult:
    answer_cited = cited_sources(answer)
    statements = 0
    supported = 0
    unsupported: list[str] = []
    for sentence in split_sentences(answer):
        statement = strip_citations(sentence)
        if not any(ch.isalnum() for ch in statement):
            continue
        statements += 1
        chosen = _passages_for(sentence, passages, answer_cited)
        if chosen is not None and judge.judge(question, chosen, statement):
            supported += 1
        else:
            unsupported.append(statement)
    return FaithfulnessResult(statements=statements, supported=supported, unsupported_statements=tuple(unsupported))


# --------------------------------------------------------------------------- a whole evaluation


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """One question put to the system and what came back.

    ``passages`` are the texts of the sources given with the answer, source ``[n]`` at index n - 1.
    ``answerable`` is False for questions the corpus cannot answer (a refusal is then the right answer).
    """

    question: str
    answer: str
    passages: tuple[str, ...] = ()
    reference: str | None = None
    answerable: bool | None = None
    latency_ms: float | None = None
    id: str = ""


@dataclass(frozen=True, slots=True)
class AnswerItemResult:
    id: str
    refusal: bool
    cited: tuple[int, ...]
    citations_valid: bool | None
    exact_match: float | None = None
    token_f1: float | None = None
    judge_correctness: float | None = None
    faithfulness: float | None = None
    unsupported_statements: tuple[str, ...] = ()


def _mean(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass(frozen=True, slots=True)
class AnswerReport:
    items: int
    exact_match: float | None
    token_f1: float | None
    judge_correctness: float | None
    faithfulness: float | None
    citation_validity: float | None
    cited_answers: int
    uncited_answers: int
    refusal_rate: float
    refusal_rate_unanswerable: float | None
    false_refusal_rate: float | None
    latency: LatencyStats | None
    per_item: tuple[AnswerItemResult, ...]

    def to_dict(self, *, include_per_item: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "items": self.items,
            "exact_match": self.exact_match,
            "token_f1": self.token_f1,
            "judge_correctness": self.judge_correctness,
            "faithfulness": self.faithfulness,
            "citation_validity": self.citation_validity,
            "cited_answers": self.cited_answers,
            "uncited_answers": self.uncited_answers,
            "refusal_rate": self.refusal_rate,
            "refusal_rate_unanswerable": self.refusal_rate_unanswerable,
            "false_refusal_rate": self.false_refusal_rate,
            "latency": self.latency.to_dict() if self.latency else None,
        }
        if include_per_item:
            out["per_item"] = [asdict(item) for item in self.per_item]
        return out


def _score_item(record: AnswerRecord, index: int, judge: Judge | None) -> AnswerItemResult:
    refusal = is_refusal(record.answer)
    citations = check_citations(record.answer, len(record.passages))
    scored = bool(record.reference) and record.answerable is not False
    reference = record.reference or ""
    correctness: float | None = None
    if scored and judge is not None:
        correctness = judge.correct(record.question, reference, record.answer)
        if not 0.0 <= correctness <= 1.0:
            raise InvalidInput(f"judge correctness must be within 0..1, got {correctness}")
    faithful = (
        None if refusal or judge is None else faithfulness(record.question, record.answer, record.passages, judge)
    )
    return AnswerItemResult(
        id=record.id or str(index),
        refusal=refusal,
        cited=citations.cited,
        citations_valid=citations.valid,
        exact_match=exact_match(record.answer, reference) if scored else None,
        token_f1=token_f1(record.answer, reference) if scored else None,
        judge_correctness=correctness,
        faithfulness=faithful.score if faithful else None,
        unsupported_statements=faithful.unsupported_statements if faithful else (),
    )


def evaluate_answers(records: Sequence[AnswerRecord], *, judge: Judge | None = None) -> AnswerReport:
    """Score every record; correctness only where a reference exists, the judge's metrics only with a judge."""
    if not records:
        raise InvalidInput("no answers to evaluate")
    results = [_score_item(record, index, judge) for index, record in enumerate(records)]
    cited = [item for item in results if item.citations_valid is not None]
    unanswerable = [item.refusal for item, rec in zip(results, records, strict=True) if rec.answerable is False]
    answerable = [item.refusal for item, rec in zip(results, records, strict=True) if rec.answerable is True]
    latencies = [rec.latency_ms for rec in records if rec.latency_ms is not None]
    return AnswerReport(
        items=len(results),
        exact_match=_mean([item.exact_match for item in results]),
        token_f1=_mean([item.token_f1 for item in results]),
        judge_correctness=_mean([item.judge_correctness for item in results]),
        faithfulness=_mean([item.faithfulness for item in results]),
        citation_validity=_share([bool(item.citations_valid) for item in cited]),
        cited_answers=len(cited),
        uncited_answers=len(results) - len(cited),
        refusal_rate=sum(item.refusal for item in results) / len(results),
        refusal_rate_unanswerable=_share(unanswerable),
        false_refusal_rate=_share(answerable),
        latency=latency_stats(latencies) if latencies else None,
        per_item=tuple(results),
    )
