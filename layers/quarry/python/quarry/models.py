"""Domain types. Pure data: no I/O, no AWS, no heavy imports.

Records that travel between layers are frozen dataclasses; anything a user
sends in is validated at the edge (pydantic, see ``protocol.py``) before it
becomes one of these.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from quarry.filters import Filter

__all__ = [
    "Answer",
    "Chunk",
    "ChunkingConfig",
    "Citation",
    "Document",
    "DocumentSource",
    "DocumentStatus",
    "Feedback",
    "Hit",
    "Message",
    "Role",
    "SearchMode",
    "SearchRequest",
    "Session",
    "Usage",
    "UsageEntry",
    "UsageScope",
    "UsageTotal",
    "Workspace",
    "content_hash",
    "new_id",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh opaque id (32 hex chars, safe inside SQL identifiers and S3 keys)."""
    return uuid.uuid4().hex


def content_hash(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


class DocumentStatus(StrEnum):
    CREATED = "created"
    PROCESSING = "processing"
    PROCESSED = "processed"
    ERROR = "error"


class DocumentSource(StrEnum):
    FILE = "file"
    TEXT = "text"
    QNA = "qna"
    WEBSITE = "website"
    WEBPAGE = "webpage"  # one page of a website crawl, a sub-document


class SearchMode(StrEnum):
    DENSE = "dense"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    """Token-aware recursive chunking parameters (tokens of the embedding model)."""

    size: int = 256
    overlap: int = 32

    MIN_SIZE = 16
    MAX_SIZE = 2048

    def __post_init__(self) -> None:
        if not self.MIN_SIZE <= self.size <= self.MAX_SIZE:
            raise ValueError(f"chunk size must be between {self.MIN_SIZE} and {self.MAX_SIZE} tokens")
        if not 0 <= self.overlap < self.size:
            raise ValueError("chunk overlap must be at least 0 and smaller than the chunk size")


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    name: str
    owner: str
    embedding_model: str
    dimensions: int
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    hybrid: bool = True
    reranker: str | None = None
    shared_with: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=utcnow)

    def readable_by(self, user: str) -> bool:
        return user == self.owner or user in self.shared_with


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    workspace_id: str
    name: str
    source: DocumentSource
    status: DocumentStatus = DocumentStatus.CREATED
    status_reason: str | None = None
    blob_key: str | None = None
    content_type: str | None = None
    size_bytes: int = 0
    content_hash: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    chunk_count: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of one document. ``id`` is deterministic: (document, ordinal), so re-runs upsert."""

    workspace_id: str
    document_id: str
    ordinal: int
    text: str
    start: int
    end: int
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: tuple[float, ...] | None = None

    @property
    def id(self) -> str:
        return f"{self.document_id}:{self.ordinal}"

    @property
    def document_name(self) -> str:
        """What people call the chunk's document: the name it was uploaded or added under (kept on every chunk).

        Chunks indexed before the name was kept fall back to their title, then to the document id.
        """
        name = self.metadata.get("document_name")
        return name if isinstance(name, str) and name.strip() else (self.title or self.document_id)

    @property
    def page(self) -> int | None:
        """The page the chunk starts on, when its parser knew pages (PDFs)."""
        page = self.metadata.get("page_number")
        return page if isinstance(page, int) and not isinstance(page, bool) and page >= 1 else None


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None  # cosine similarity, when the dense ranker saw this chunk
    rerank_score: float | None = None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    workspace_id: str
    query: str
    top_k: int = 10
    mode: SearchMode = SearchMode.HYBRID
    rerank: bool = False
    #: Which chunks may be returned (``quarry.filters``); the JSON form is accepted and parsed here too.
    filters: Filter = field(default_factory=Filter)

    MAX_TOP_K = 100

    def __post_init__(self) -> None:
        if not isinstance(self.filters, Filter):
            object.__setattr__(self, "filters", Filter.parse(self.filters))
        if not self.query.strip():
            raise ValueError("query must not be empty")
        if not 1 <= self.top_k <= self.MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {self.MAX_TOP_K}")


@dataclass(frozen=True, slots=True)
class Citation:
    """Source ``[n]`` of an answer, pointing at one chunk."""

    n: int
    chunk_id: str
    document_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    #: The document's name (its file name, or the name the user gave); "" on citations stored before it was kept.
    document_name: str = ""
    #: The workspace holding the document (where its source opens); "" on citations stored before it was kept.
    workspace_id: str = ""
    #: The page the passage starts on, when the parser knew pages.
    page: int | None = None
    #: The passage's sentence that best supports the citing answer sentence, as a span within ``text``.
    highlight_start: int | None = None
    highlight_end: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


class UsageScope(StrEnum):
    USER = "user"
    WORKSPACE = "workspace"


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """What one answer spent: kept with the assistant message and added to the per-day counters."""

    message_id: str
    user: str
    workspace_id: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """The counters of one scope (a user or a workspace) for one UTC day and one model."""

    day: date
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    usage: Usage
    timings: dict[str, float]
    standalone_question: str
    grounded: bool
    model: str = ""  # the chat model that answered (its name in the registry)


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    owner: str
    workspace_id: str | None
    title: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. Stored one record per message, never the whole history in one item."""

    session_id: str
    id: str
    role: Role
    content: str
    citations: tuple[Citation, ...] = ()
    created_at: datetime = field(default_factory=utcnow)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Feedback:
    session_id: str
    message_id: str
    user: str
    rating: int
    comment: str | None = None
    created_at: datetime = field(default_factory=utcnow)
