"""Summary jobs on the in-memory fakes: a workspace of short reviews, and a chat model that reads them.

``ReviewerChat`` answers a map prompt the way a good model would: for each aspect it knows (battery,
screen, price...) it writes the point once, citing the numbered documents of the batch that mention it.
So the tests exercise the real prompts, parser, merge and bookkeeping, with answers that can be checked.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from quarry.adapters.local_workflow import LocalWorkflow
from quarry.models import Document, DocumentSource, DocumentStatus, Usage, Workspace, new_id, utcnow
from quarry.ports import ChatDelta, ChatTurn, SummaryStore, UsageLedger, WorkflowName
from quarry.services.access import WorkspaceAccess
from quarry.services.budget import TokenBudget
from quarry.services.documents import preview_key
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.summaries import RunJournal, SummaryService, SummarySpec
from quarry.services.summary_prompts import polarity_turns
from quarry.summary_models import SummaryJob
from tests.fakes import FakeBlobStore, FakeCatalog, FakeSummarySchedules, FakeSummaryStore, HashEmbedder

__all__ = [
    "ASPECTS",
    "OWNER",
    "PRICED",
    "RecordingSchedules",
    "ReviewerChat",
    "SummaryWorld",
    "batches_at_once",
    "review",
]

OWNER = "alice"
_POLARITY_TASK = polarity_turns("")[0].content
PRICED = "amazon.nova-lite-v1:0"  # a model with a per-token price, so cost is not 0

#: word in a review -> (label, the point the reviewer writes)
ASPECTS: dict[str, tuple[str, str]] = {
    "battery": ("PRO", "Long battery life"),
    "charges": ("PRO", "Charges fast"),
    "dim": ("CON", "Screen too dim"),
    "cheap": ("CON", "Feels cheap"),
    "price": ("CON", "Too expensive"),
}


def review(*aspects: str) -> str:
    sentences = {
        "battery": "The battery lasts for days.",
        "charges": "It charges in no time.",
        "dim": "The screen is dim outdoors.",
        "cheap": "The case feels cheap.",
        "price": "The price is far too high.",
    }
    return " ".join(sentences[a] for a in aspects) or "Nothing to say."


@dataclass
class ReviewerChat:
    """A ``ChatModel`` that summarises map prompts by keywords, translates rewrite prompts, and can fail."""

    name: str = PRICED
    context_tokens: int = 4096
    calls: list[list[ChatTurn]] = field(default_factory=list)
    #: Replies to send instead, in order, before answering by keywords ("" answers nothing readable).
    scripted: list[str] = field(default_factory=list)
    #: Called before each map answer with the number of map calls so far (raise to fail the batch).
    before_map: Callable[[int], None] | None = None
    map_calls: int = 0
    #: Aspect words (``ASPECTS``) whose polarity check answers the opposite of what the sentence says.
    contradict: set[str] = field(default_factory=set)
    polarity_calls: int = 0

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        self.calls.append(list(turns))
        last = turns[-1].content
        if last.startswith("Translate into"):
            reply = self._translate(last)
        elif turns[0].content == _POLARITY_TASK:
            self.polarity_calls += 1
            reply = self._polarity(last)
        else:
            self.map_calls += 1
            if self.before_map is not None:
                self.before_map(self.map_calls)
            reply = self.scripted.pop(0) if self.scripted else self._summarise(turns)
        usage = Usage(prompt_tokens=sum(len(t.content.split()) for t in turns), completion_tokens=len(reply.split()))
        return iter([ChatDelta(reply), ChatDelta("", usage=usage)])

    @staticmethod
    def _summarise(turns: Sequence[ChatTurn]) -> str:
        """One document's points, as the prompt asks: ``point (good) | point (bad)`` or NONE."""
        request = next(t.content for t in reversed(turns) if t.content.startswith(("Document:", "Question:")))
        document = request.split("Document:", 1)[1].lower()
        points = [
            f"{text.lower()} ({'good' if label == 'PRO' else 'bad'})"
            for word, (label, text) in ASPECTS.items()
            if word in document
        ]
        return " | ".join(points) or "NONE"

    def _polarity(self, sentence: str) -> str:
        """Praise or complaint, by the aspect word the sentence holds (flipped for ``contradict``)."""
        for word, (label, _) in ASPECTS.items():
            if word in sentence.lower():
                praise = (label == "PRO") != (word in self.contradict)
                return "praise" if praise else "complaint"
        return "unsure"

    @staticmethod
    def _translate(request: str) -> str:
        """Upper case, as its translation: the words (and the hash embeddings) stay, so translated points
        merge as the originals would, and translating again changes nothing."""
        items = re.findall(r"^(\d+)\. (.*)$", request.split(":", 1)[1], re.MULTILINE)
        return "\n".join(f"{n}. {text.upper()}" for n, text in items)


#: ``SummarySchedules`` that keeps what it is asked (the shared in-memory fake).
RecordingSchedules = FakeSummarySchedules


class CountingBlobs(FakeBlobStore):
    """A blob store that counts reads per key prefix (what a step holds in memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get(key)


@dataclass
class SummaryWorld:
    """A workspace, its documents, and the summary service on fakes (workflow inline, as the CLI runs it)."""

    chat: ReviewerChat = field(default_factory=ReviewerChat)
    batch_documents: int = 4
    catalog: FakeCatalog = field(default_factory=FakeCatalog)
    blobs: CountingBlobs = field(default_factory=CountingBlobs)
    store: FakeSummaryStore = field(default_factory=FakeSummaryStore)
    schedules: RecordingSchedules = field(default_factory=RecordingSchedules)
    workspace_id: str = "ws"
    inline: bool = True
    journal: RunJournal | None = None
    usage: UsageLedger | None = None
    budget: TokenBudget | None = None
    #: Map replies the service keeps (0 here: the tests count the model's calls, one per document read).
    reply_cache: int = 0
    started: list[dict[str, Any]] = field(default_factory=list)
    service: SummaryService = field(init=False)
    _count: int = 0

    def __post_init__(self) -> None:
        self.catalog.put_workspace(
            Workspace(id=self.workspace_id, name="reviews", owner=OWNER, embedding_model="hash-16", dimensions=16)
        )
        self.service = self.build()

    def build(self, chat: ReviewerChat | None = None) -> SummaryService:
        """A service on the same stores (a new process after a crash, when called again)."""
        models = ModelRegistry()
        models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
        model = chat or self.chat
        models.chat_models.register(ModelInfo(model.name, "reviewer", "test"), lambda: model)
        workflow = LocalWorkflow({WorkflowName.SUMMARIZE: self._run}, background=False)
        service = SummaryService(
            catalog=self.catalog,
            store=self.store,
            blobs=self.blobs,
            previews=self.blobs,
            models=models,
            access=WorkspaceAccess(self.catalog),
            workflow=workflow,
            schedules=self.schedules,
            batch_documents=self.batch_documents,
            journal=self.journal,
            usage=self.usage,
            budget=self.budget,
            reply_cache=self.reply_cache,
        )
        self.service = service
        return service

    def _run(self, payload: dict[str, Any]) -> object:
        self.started.append(payload)
        return self.service.run(payload) if self.inline else None

    def add(
        self,
        text: str,
        *,
        name: str | None = None,
        fields: dict[str, Any] | None = None,
        status: DocumentStatus = DocumentStatus.PROCESSED,
        updated_at: datetime | None = None,
    ) -> Document:
        self._count += 1
        moment = updated_at or utcnow() - timedelta(hours=1)
        document = Document(
            id=f"doc{self._count:03d}",
            workspace_id=self.workspace_id,
            name=name or f"review-{self._count:03d}.txt",
            source=DocumentSource.FILE,
            status=status,
            size_bytes=len(text),
            metadata={"fields": fields or {}},
            created_at=moment,
            updated_at=moment,
        )
        self.catalog.put_document(document)
        self.blobs.put(preview_key(self.workspace_id, document.id), text.encode())
        return document


def batches_at_once(store: SummaryStore, *, batches: int = 8, workers: int = 4) -> tuple[SummaryJob, SummaryJob]:
    """A run of ``batches`` one-document batches whose map steps run ``workers`` at once (as the AWS
    Distributed Map runs them) over ``store``: the job as the map steps left it (the live progress), then
    as the reduce wrote it."""
    # the world is typed for the fake store, whose records the other tests read; any SummaryStore serves
    world = SummaryWorld(store=cast(Any, store), batch_documents=1, inline=False, workspace_id=f"ws-{new_id()[:8]}")
    for n in range(batches):
        world.add(review("battery" if n % 2 else "dim"))
    job = world.service.create(OWNER, world.workspace_id, SummarySpec(kind="pros_cons"))
    planned = world.service.plan(world.started[-1])
    assert planned["batches"] == batches
    start = threading.Barrier(workers)

    def map_from(first: int) -> None:
        start.wait()
        for index in range(first, batches, workers):
            world.service.map_batch({**world.started[-1], "index": index})

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(map_from, range(workers)))
    live = store.get_job(world.workspace_id, job.id)
    world.service.reduce(world.started[-1])
    final = store.get_job(world.workspace_id, job.id)
    assert live is not None and final is not None
    return live, final
