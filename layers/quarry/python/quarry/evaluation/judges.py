"""An LLM judge on any chat model: the local llama.cpp model offline, a Bedrock model (by registry id) in AWS.

``ChatModelJudge`` implements ``quarry.evaluation.answers.Judge`` with two short, constrained prompts at
temperature 0, the question last (small models answer the last thing they read):

* ``judge``: does the passage say this statement? The reply is read as yes or no.
* ``correct``: does the answer agree with the reference? The reply is read as a score in 0..1: yes 1,
  no 0, and whatever a stronger judge writes instead (``partly`` 0.5, ``0.7``, ``70%``, ``4/5``).

Both prompts end on a plain yes/no question because the 0.5B local model copies: given worked examples
it repeats the last example's verdict, and offered "yes, no or partly" it answers "partly" to nearly
everything. Even so it is a weak judge: on a hand-made set of 6 statements and 6 answers it agreed with
the expected verdict 4 times in 6 for each, so its scores are indicative only. A stronger judge
(``--judge`` with a Bedrock model id in AWS) uses the same prompts.

Three cases are settled by rule because the answer is certain: a statement found word for word in one of
its passages is supported; an answer equal to the reference is correct; a refusal ("I don't know") to a
question that has a reference answer is not.

Small models do not always answer in the requested form, so the replies are parsed leniently
(``parse_yes_no``, ``parse_score``). A reply that cannot be read counts against the answer (unsupported,
score 0) and is counted in ``JudgeStats.unparsed``, so a judge that stops following the format is visible.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from quarry.evaluation.answers import is_refusal, normalize_answer, strip_citations
from quarry.models import Role
from quarry.ports import ChatModel, ChatTurn

__all__ = ["ChatModelJudge", "JudgeStats", "parse_score", "parse_yes_no"]

_SUPPORT_SYSTEM = "You are a careful fact checker."
_SUPPORT_PROMPT = "Passage:\n{passages}\n\nStatement: {statement}\n\nDoes the passage say this? Answer yes or no."
_CORRECT_SYSTEM = "You are a strict teacher grading answers against the reference answer."
_CORRECT_PROMPT = (
    "Question: {question}\nReference answer: {reference}\nStudent answer: {answer}\n\n"
    "Does the student answer agree with the reference answer? Answer yes or no."
)

_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")
_VERBATIM_MIN_WORDS = 4  # "Yes." found in a passage proves nothing
_YES = frozenset({"yes", "supported", "true", "correct", "y"})
_NO = frozenset({"no", "unsupported", "not", "false", "incorrect", "n"})
_WORD = re.compile(r"[a-z]+")
_NUMBER = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?|\.\d+)\s*(%|/\s*\d+)?")


def parse_yes_no(reply: str) -> bool | None:
    """The first yes-like or no-like word of ``reply``; None when there is none.

    Reads "Yes.", "**No**", "Answer: yes", "The statement is supported" and "not supported" (no).
    """
    for word in _WORD.findall(reply.lower()):
        if word in _YES:
            return True
        if word in _NO:
            return False
    return None


def _scaled(value: float, suffix: str | None) -> float | None:
    if suffix and suffix.startswith("%"):
        value /= 100.0
    elif suffix and suffix.startswith("/"):
        denominator = float(suffix[1:].strip())
        if denominator <= 0:
            return None
        value /= denominator
    elif value > 1.0 and value <= 10.0:
        value /= 10.0  # "8" on a 0-10 scale
    elif value > 10.0 and value <= 100.0:
        value /= 100.0
    return value if 0.0 <= value <= 1.0 else None


def parse_score(reply: str) -> float | None:
    """A 0..1 score from ``reply``: the first number (``0.7``, ``.5``, ``70%``, ``4/5``, ``8`` read as 8/10),
    else a yes/correct (1.0) or no/wrong (0.0) word; None when nothing can be read."""
    match = _NUMBER.search(reply)
    if match is not None:
        return _scaled(float(match.group(1)), match.group(2))
    lowered = reply.lower()
    if "partial" in lowered or "partly" in lowered:
        return 0.5
    verdict = parse_yes_no(lowered.replace("wrong", "no"))
    if verdict is None:
        return None
    return 1.0 if verdict else 0.0


@dataclass
class JudgeStats:
    """How often the judge was asked, how often a rule settled it first, and how often a reply was unreadable."""

    support_calls: int = 0
    correctness_calls: int = 0
    verbatim: int = 0
    exact_matches: int = 0
    refusals: int = 0
    unparsed: int = 0
    unparsed_samples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChatModelJudge:
    """The ``Judge`` port on a ``ChatModel``; ``max_passage_chars`` bounds each passage in the prompt.

    Word-for-word matches are found after SQuAD normalisation (case, punctuation, articles).
    """

    def __init__(self, chat_model: ChatModel, *, max_passage_chars: int = 1200, max_tokens: int = 8) -> None:
        self.model = chat_model
        self.max_passage_chars = max_passage_chars
        self.max_tokens = max_tokens
        self.stats = JudgeStats()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model.name

    def _ask(self, system: str, prompt: str) -> str:
        turns = [ChatTurn(Role.SYSTEM, system), ChatTurn(Role.USER, prompt)]
        return "".join(d.text for d in self.model.stream(turns, max_tokens=self.max_tokens, temperature=0.0))

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def _unparsed(self, reply: str) -> None:
        with self._lock:
            self.stats.unparsed += 1
            if len(self.stats.unparsed_samples) < 5:
                self.stats.unparsed_samples.append(reply[:200])

    def judge(self, question: str, passage_texts: Sequence[str], statement: str) -> bool:
        wanted = normalize_answer(statement)
        if len(wanted.split()) >= _VERBATIM_MIN_WORDS and any(
            f" {wanted} " in f" {normalize_answer(text)} " for text in passage_texts
        ):
            self._count("verbatim")
            return True
        passages = "\n\n".join(" ".join(text.split())[: self.max_passage_chars] for text in passage_texts)
        self._count("support_calls")
        claim = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", statement.strip())
        reply = self._ask(_SUPPORT_SYSTEM, _SUPPORT_PROMPT.format(passages=passages, statement=claim))
        verdict = parse_yes_no(reply)
        if verdict is None:
            self._unparsed(reply)
            return False
        return verdict

    def correct(self, question: str, reference: str, answer: str) -> float:
        if normalize_answer(strip_citations(answer)) == normalize_answer(reference):
            self._count("exact_matches")
            return 1.0
        if is_refusal(answer):
            self._count("refusals")
            return 0.0
        text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", strip_citations(answer))
        prompt = _CORRECT_PROMPT.format(question=question.strip(), reference=reference.strip(), answer=text)
        self._count("correctness_calls")
        reply = self._ask(_CORRECT_SYSTEM, prompt)
        score = parse_score(reply)
        if score is None:
            self._unparsed(reply)
            return 0.0
        return score
