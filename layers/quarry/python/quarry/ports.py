"""Ports: the small interfaces the use cases speak to.

Every technology lives behind one of these in ``quarry.adapters``. Fakes for
tests subclass nothing but implement the same Protocol, and the contract
suites under ``tests/contracts`` run the same assertions on every adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from quarry.filters import Filter
from quarry.models import (
    Chunk,
    Document,
    DocumentStatus,
    Feedback,
    Message,
    Role,
    Session,
    Usage,
    UsageEntry,
    UsageScope,
    UsageTotal,
    Workspace,
)
from quarry.summary_models import SummaryJob

__all__ = [
    "UPLOAD_SEQUENCER",
    "BatchChatModel",
    "BlobInfo",
    "BlobStore",
    "Bus",
    "Cancellations",
    "Catalog",
    "ChatDelta",
    "ChatHistory",
    "ChatModel",
    "ChatTurn",
    "ConnectionInfo",
    "Connections",
    "DocumentParser",
    "DownloadLink",
    "Embedder",
    "Notifier",
    "Page",
    "ParsedDocument",
    "ParsedSection",
    "Reranker",
    "ScoredChunk",
    "SummarySchedules",
    "SummaryStore",
    "Tokenizer",
    "UploadTarget",
    "UsageLedger",
    "VectorIndex",
    "Workflow",
    "WorkflowName",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``cursor`` back to get the next (None: no more)."""

    items: list[T]
    cursor: str | None = None


# --------------------------------------------------------------------------- blobs


@dataclass(frozen=True, slots=True)
class DownloadLink:
    """A presigned GET: anyone holding ``url`` can read the blob until ``expires_at``."""

    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """A presigned POST: send ``fields`` plus the file as multipart form data to ``url``."""

    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime
    max_bytes: int


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    content_type: str | None
    etag: str
    #: Metadata kept with the object (S3 user metadata ``x-amz-meta-<name>``): lower-case names, ASCII values.
    metadata: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class BlobStore(Protocol):
    def put(
        self, key: str, data: bytes, *, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> BlobInfo:
        """Store ``data``; ``metadata`` is kept with the object and returned by ``head`` (``check_object_metadata``)."""
        ...

    def get(self, key: str) -> bytes:
        """Raises ``quarry.errors.NotFound`` when absent."""
        ...

    def head(self, key: str) -> BlobInfo | None: ...
    def delete(self, key: str) -> None:
        """Idempotent."""
        ...

    def delete_prefix(self, prefix: str) -> int: ...
    def presigned_post(
        self,
        key: str,
        *,
        max_bytes: int,
        content_type: str,
        expires_in: int,
        metadata: Mapping[str, str] | None = None,
    ) -> UploadTarget:
        """A browser upload of exactly ``key``; ``metadata`` travels as signed ``x-amz-meta-<name>`` form fields,
        so the stored object keeps it (``head`` returns it) and a form that changes or drops it is refused."""
        ...

    def presigned_get(self, key: str, *, expires_in: int, filename: str) -> DownloadLink:
        """A URL that serves the blob for ``expires_in`` seconds, without credentials, as ``filename``

        (inline: a browser shows what it can, such as a PDF, and saves the rest under that name).
        Raises ``quarry.errors.NotFound`` when the blob is absent.
        """
        ...


# --------------------------------------------------------------------------- catalog

#: The ``Document.metadata`` key holding the S3 ``sequencer`` of the upload a document was last set from:
#: the value ``Catalog.put_document_if`` compares.
UPLOAD_SEQUENCER = "s3_sequencer"


@runtime_checkable
class Catalog(Protocol):
    """Workspaces, documents and feedback."""

    def put_workspace(self, workspace: Workspace) -> None: ...
    def get_workspace(self, workspace_id: str) -> Workspace | None: ...
    def list_workspaces(self, user: str) -> list[Workspace]:
        """Workspaces the user owns or that were shared with them."""
        ...

    def delete_workspace(self, workspace_id: str) -> None: ...

    def register_document(self, document: Document, *, idempotency_key: str | None = None) -> tuple[Document, bool]:
        """Insert unless the idempotency key or the document id is taken; returns (stored document, created).

        A redelivered event finds its key taken and changes nothing. A new version of a known document
        (same id, other key) is not inserted either: the caller sees the stored version and decides.
        """
        ...

    def put_document(self, document: Document) -> None: ...
    def put_document_if(
        self, document: Document, *, expected_sequencer: str | None, expected_status: DocumentStatus | None = None
    ) -> bool:
        """Compare-and-set: replace the stored document only if it still records ``expected_sequencer``
        and, unless ``expected_status`` is None, still has that status.

        The stored value is ``metadata[UPLOAD_SEQUENCER]`` (None: the document records none). One atomic
        write, so of two writers that read the same version only the first wins; the other gets False,
        writes nothing, and reads again. The status is compared for a writer that keeps the status it read
        (a metadata edit): a run's status change (``set_document_status``) leaves the sequencer as it is.
        False as well when no document is stored under that id (it was deleted: register it again). An
        idempotency key set at registration is kept.
        """
        ...

    def get_document(self, workspace_id: str, document_id: str) -> Document | None: ...
    def list_documents(
        self,
        workspace_id: str,
        *,
        status: DocumentStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Document]: ...
    def set_document_status(
        self,
        workspace_id: str,
        document_id: str,
        status: DocumentStatus,
        *,
        reason: str | None = None,
        chunk_count: int | None = None,
    ) -> Document | None: ...
    def delete_document(self, workspace_id: str, document_id: str) -> None: ...
    def existing_document_ids(self, workspace_id: str, document_ids: Iterable[str]) -> set[str]:
        """The ids among ``document_ids`` that the workspace holds now (read-your-writes, any number of ids).

        Search passes its hits through this, so chunks of a deleted document are never served.
        """
        ...

    def stale_documents(self, status: DocumentStatus, older_than: datetime) -> list[Document]: ...

    def put_feedback(self, feedback: Feedback) -> None: ...
    def list_feedback(self, *, since: datetime | None = None) -> list[Feedback]: ...


@runtime_checkable
class ChatHistory(Protocol):
    """Sessions and their messages, one record per message."""

    def put_session(self, session: Session) -> None: ...
    def get_session(self, session_id: str) -> Session | None: ...
    def list_sessions(self, owner: str, *, limit: int = 20, cursor: str | None = None) -> Page[Session]: ...
    def delete_session(self, session_id: str) -> None: ...
    def add_message(self, message: Message) -> None: ...
    def add_message_if_new(self, message: Message) -> bool:
        """Insert unless the session already holds a message with this id (whatever its time); True if inserted.

        The conditional write a redelivered chat job loses: exactly one delivery stores the question.
        """
        ...

    def get_message(self, session_id: str, message_id: str) -> Message | None: ...
    def list_messages(self, session_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        """Oldest first."""
        ...

    def recent_messages(self, session_id: str, *, limit: int) -> list[Message]:
        """The last ``limit`` messages, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A live connection: who holds it and when the token it was opened with expires (None: not known)."""

    id: str
    user: str
    token_expires_at: datetime | None = None


@runtime_checkable
class UsageLedger(Protocol):
    """Per-day counters of what answers spent, per user and per workspace, by model.

    ``record`` adds one answer to both scopes' counters for its UTC day, atomically and at most once per
    ``message_id`` (a redelivered job counts nothing). Reads cost one range read per scope, not a scan.
    """

    def record(self, entry: UsageEntry) -> bool:
        """Add the entry; False (and nothing changed) when its message was counted already."""
        ...

    def totals(self, scope: UsageScope, key: str, *, since: date, until: date) -> list[UsageTotal]:
        """The scope's counters from ``since`` to ``until`` (both UTC days, inclusive), by day then model."""
        ...


@runtime_checkable
class Connections(Protocol):
    """Live WebSocket connections and who holds them."""

    def add(
        self, connection_id: str, user: str, *, ttl_seconds: int = 7200, token_expires_at: datetime | None = None
    ) -> None: ...
    def remove(self, connection_id: str) -> None: ...
    def get(self, connection_id: str) -> ConnectionInfo | None:
        """The live (unexpired) connection, with its token's expiry as given to ``add``."""
        ...

    def user_of(self, connection_id: str) -> str | None: ...
    def of_user(self, user: str) -> list[str]: ...


# --------------------------------------------------------------------------- retrieval


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    chunk: Chunk
    score: float


@runtime_checkable
class VectorIndex(Protocol):
    """Chunk store with dense (HNSW cosine) and keyword (BM25) ranking, per workspace."""

    def ensure_workspace(self, workspace_id: str, *, dimensions: int) -> None: ...
    def drop_workspace(self, workspace_id: str) -> None: ...
    def replace_document(self, workspace_id: str, document_id: str, chunks: Sequence[Chunk]) -> None:
        """Make ``chunks`` the document's whole set, atomically: re-runs never duplicate."""
        ...

    def replace_documents(self, workspace_id: str, documents: Mapping[str, Sequence[Chunk]]) -> None:
        """``replace_document`` for many documents at once, all or nothing (bulk loads)."""
        ...

    def optimize(self, workspace_id: str) -> None:
        """Refresh statistics after a bulk load (may be a no-op)."""
        ...

    def delete_document(self, workspace_id: str, document_id: str) -> int: ...
    def count(self, workspace_id: str, *, document_id: str | None = None) -> int: ...
    def set_document_fields(self, workspace_id: str, document_id: str, fields: Mapping[str, Any]) -> int:
        """Make ``fields`` the user metadata (``quarry.metadata``) of every chunk of the document, in place
        (no re-embedding). Returns the number of chunks changed."""
        ...

    def dense(
        self, workspace_id: str, vector: Sequence[float], *, k: int, filters: Filter | None = None
    ) -> list[ScoredChunk]:
        """The k chunks nearest ``vector`` among those ``filters`` selects (evaluated inside the store)."""
        ...

    def keyword(self, workspace_id: str, query: str, *, k: int, filters: Filter | None = None) -> list[ScoredChunk]:
        """The k best BM25 chunks among those ``filters`` selects; corpus statistics stay workspace-wide."""
        ...


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimensions: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...
    def embed_query(self, text: str) -> list[float]: ...


@runtime_checkable
class Tokenizer(Protocol):
    def count(self, text: str) -> int: ...


@runtime_checkable
class Reranker(Protocol):
    name: str

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Relevance of each passage to the query; higher is better."""
        ...


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """A streamed piece of the answer; the last one carries ``usage``."""

    text: str
    usage: Usage | None = None


@runtime_checkable
class ChatModel(Protocol):
    name: str
    context_tokens: int

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]: ...


@runtime_checkable
class BatchChatModel(ChatModel, Protocol):
    """A chat model that answers many requests together, greedily (temperature 0), faster than one
    ``stream`` after another (llama.cpp: several sequences per decode). ``services.usage.complete_all``
    uses it where a model has it, and ``stream`` otherwise."""

    def complete_many(self, requests: Sequence[Sequence[ChatTurn]], *, max_tokens: int) -> list[tuple[str, Usage]]: ...


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class ParsedSection:
    """A span of ``ParsedDocument.text`` with the metadata it came with (page number, heading...)."""

    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    text: str
    title: str
    sections: list[ParsedSection] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class DocumentParser(Protocol):
    def parse(self, data: bytes, *, filename: str, content_type: str | None = None) -> ParsedDocument:
        """Raises ``quarry.errors.UnsupportedDocument`` or ``UnreadableDocument`` with a reason."""
        ...


# --------------------------------------------------------------------------- messaging


class WorkflowName(StrEnum):
    INGEST = "ingest"
    DELETE_DOCUMENT = "delete_document"
    DELETE_WORKSPACE = "delete_workspace"
    SUMMARIZE = "summarize"


@runtime_checkable
class Bus(Protocol):
    def publish(
        self, topic: str, message: Mapping[str, Any], *, attributes: Mapping[str, str] | None = None
    ) -> None: ...


@runtime_checkable
class Workflow(Protocol):
    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        """Start a run; ``run_id`` makes the start idempotent. Returns the execution id."""
        ...


@runtime_checkable
class Cancellations(Protocol):
    """'Stop this answer' flags, shared between the process that receives ``cancel`` and the one streaming."""

    def cancel(self, session_id: str) -> None: ...
    def take(self, session_id: str) -> bool:
        """True once if the session's answer was cancelled (the flag is consumed)."""
        ...

    def clear(self, session_id: str) -> None: ...


@runtime_checkable
class Notifier(Protocol):
    def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
        """Push to one connection; False when it has gone away."""
        ...

    def close(self, connection_id: str, *, code: int, reason: str) -> None:
        """Close the connection from the server side (idempotent; a gone connection is fine).

        ``code``/``reason`` reach the client where the transport allows (locally the close frame; API
        Gateway's DeleteConnection sends its own close frame, so say why in an event sent before)."""
        ...


# --------------------------------------------------------------------------- summary jobs


@runtime_checkable
class SummaryStore(Protocol):
    """Summary job definitions, their status, progress and result (the catalog's job table)."""

    def put_job(self, job: SummaryJob) -> None: ...
    def put_job_if(self, job: SummaryJob, expected_updated_at: datetime) -> bool:
        """Write ``job`` only while the stored job's ``updated_at`` is still ``expected_updated_at`` (the
        version the caller read), atomically: False, and nothing written, when another writer changed the
        job meanwhile or it is gone. Concurrent read-change-writes (batches adding to the progress) retry
        on False, so none is lost; each write must move ``updated_at`` on."""
        ...

    def get_job(self, workspace_id: str, job_id: str) -> SummaryJob | None: ...
    def list_jobs(self, workspace_id: str, *, limit: int = 50, cursor: str | None = None) -> Page[SummaryJob]:
        """Newest first."""
        ...

    def scheduled_jobs(self) -> list[SummaryJob]:
        """Every job with a schedule, across workspaces (the local scheduler's list)."""
        ...

    def delete_job(self, workspace_id: str, job_id: str) -> None: ...


@runtime_checkable
class SummarySchedules(Protocol):
    """Re-runs of scheduled summary jobs: EventBridge Scheduler in AWS, a timer thread in ``quarry serve``."""

    def put(self, job: SummaryJob) -> None:
        """Create or replace the job's schedule (``job.schedule`` is a checked expression)."""
        ...

    def delete(self, workspace_id: str, job_id: str) -> None:
        """Idempotent."""
        ...
