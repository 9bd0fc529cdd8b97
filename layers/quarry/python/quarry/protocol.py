"""Wire schemas: WebSocket messages, bus messages and REST bodies.

The one source of truth for the frontend's types (``frontend/src/api/schema.json``
is generated from this module by ``quarry schema`` and checked in a test).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from quarry.metadata import USER_METADATA_KEY, user_metadata
from quarry.models import (
    Answer,
    Citation,
    Document,
    DocumentSource,
    DocumentStatus,
    Hit,
    Message,
    Role,
    SearchMode,
    Session,
    UsageTotal,
    Workspace,
)

if TYPE_CHECKING:
    from quarry.services.budget import Allowance
    from quarry.services.usage import UsageReport

__all__ = [
    "MAX_WS_MESSAGE_BYTES",
    "CancelAction",
    "ChatAction",
    "ChatIn",
    "ChatJob",
    "ChatOut",
    "CitationOut",
    "ClientMessage",
    "DailyAllowanceOut",
    "DocumentOut",
    "DocumentPatchIn",
    "DocumentPreviewOut",
    "DocumentStatusEvent",
    "EmbeddingsIn",
    "EmbeddingsOut",
    "ErrorBody",
    "ErrorEvent",
    "ErrorOut",
    "FeedbackIn",
    "FinalEvent",
    "HitOut",
    "ListOut",
    "MessageOut",
    "MetadataValue",
    "ModelKwargs",
    "PingAction",
    "PongEvent",
    "ProgressEvent",
    "ProgressPhase",
    "RerankIn",
    "RerankOut",
    "SearchIn",
    "SearchOut",
    "ServerMessage",
    "SessionDetailOut",
    "SessionOut",
    "SessionPatchIn",
    "SourceLinkOut",
    "TextDocumentIn",
    "TokenEvent",
    "UploadUrlIn",
    "UploadUrlOut",
    "UsageOut",
    "UsageReportOut",
    "UsageRowOut",
    "WebsiteIn",
    "WorkspaceIn",
    "WorkspaceOut",
    "client_message_adapter",
    "server_message_adapter",
]

T = TypeVar("T")

MAX_WS_MESSAGE_BYTES = 32 * 1024
MAX_QUESTION_CHARS = 8000


def _no_nul(value: Any) -> Any:
    """NUL cannot be stored in PostgreSQL text or DynamoDB keys: refuse it at the edge, with a clear message."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    if isinstance(value, list | tuple):
        for item in value:
            _no_nul(item)
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


#: A user metadata value as the API returns it (``quarry.metadata``: dates are normalised ISO strings).
MetadataValue = str | int | float | bool | list[str]

_METADATA_IN = (
    "User metadata, key -> value: a string, number, boolean, ISO 8601 date or list of strings "
    "(checked by quarry.metadata; 422 names the field)."
)
_FILTER_IN = (
    "Only chunks whose document metadata matches: {key: value}, {key: [a, b]} (in), {key: {gte, gt, lte, lt}}, "
    "{key: {exists: true}}, AND across keys, {'$or': [...]} at the top level (quarry.filters). Alias: filter."
)


def _filter_field() -> Any:
    """``filters`` (also accepted as ``filter``): the filter JSON, parsed by ``quarry.filters.Filter`` at the edge."""
    return Field(default_factory=dict, validation_alias=AliasChoices("filters", "filter"), description=_FILTER_IN)


def _with_filter_alias(schema: dict[str, Any]) -> None:
    """The request schema names the alias too, so API Gateway's model (additionalProperties: false) takes it."""
    properties = schema.get("properties", {})
    if "filters" in properties:
        properties["filter"] = {**properties["filters"], "description": "Alias of filters."}


# =========================================================================== WebSocket: client -> server


class ModelKwargs(_In):
    temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    max_tokens: int = Field(default=384, ge=1, le=4096)


class ChatAction(_In):
    action: Literal["chat"]
    text: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    session_id: str | None = Field(default=None, max_length=64)
    workspace_id: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=200)
    model_kwargs: ModelKwargs = Field(default_factory=ModelKwargs)
    top_k: int = Field(default=5, ge=1, le=20)
    filters: dict[str, Any] = _filter_field()

    model_config = ConfigDict(json_schema_extra=_with_filter_alias)


class PingAction(_In):
    action: Literal["ping"]


class CancelAction(_In):
    action: Literal["cancel"]
    session_id: str = Field(max_length=64)
    message_id: str | None = Field(default=None, max_length=64)


ClientMessage = Annotated[ChatAction | PingAction | CancelAction, Field(discriminator="action")]
client_message_adapter: TypeAdapter[ChatAction | PingAction | CancelAction] = TypeAdapter(ClientMessage)


# =========================================================================== WebSocket: server -> client


class CitationOut(_Out):
    n: int
    chunk_id: str
    document_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    document_name: str = Field(default="", description="The document's name: label the source by it.")
    workspace_id: str = Field(default="", description="The workspace holding the document (where its source opens).")
    page: int | None = Field(default=None, description="The page the passage starts on, when known.")
    highlight_start: int | None = Field(
        default=None, description="Start of the passage's supporting sentence in `text` (code points)."
    )
    highlight_end: int | None = Field(default=None, description="End of that sentence in `text` (code points).")

    @classmethod
    def of(cls, citation: Citation) -> CitationOut:
        return cls.model_validate(citation)


class UsageOut(_Out):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TokenEvent(_Out):
    type: Literal["token"] = "token"
    session_id: str
    message_id: str
    sequence: int
    text: str


ProgressPhase = Literal["condensing", "searching", "reading", "writing"]


class ProgressEvent(_Out):
    """What the worker is doing before the first token: ``condensing`` the follow-up, ``searching`` the workspace,
    ``reading`` the ``sources`` passages kept, ``writing`` the answer. Zero or more, all before any ``token`` of the
    same message; they carry no ``sequence`` (token ordering is unaffected) and a late one may be ignored."""

    type: Literal["progress"] = "progress"
    session_id: str
    message_id: str
    phase: ProgressPhase
    sources: int | None = None


class ChatOut(_Out):
    """An answer with its citations: the non-streaming ``POST /chat`` reply, and the body of ``final``."""

    session_id: str
    message_id: str
    answer: str
    citations: list[CitationOut]
    usage: UsageOut
    timings: dict[str, float]
    grounded: bool
    standalone_question: str

    @classmethod
    def of(cls, *, session_id: str, message_id: str, answer: Answer) -> Self:
        return cls(
            session_id=session_id,
            message_id=message_id,
            answer=answer.text,
            citations=[CitationOut.of(c) for c in answer.citations],
            usage=UsageOut.model_validate(answer.usage),
            timings=answer.timings,
            grounded=answer.grounded,
            standalone_question=answer.standalone_question,
        )


class FinalEvent(ChatOut):
    """The WebSocket message that ends a streamed answer (it replaces the streamed text)."""

    type: Literal["final"] = "final"
    stopped: bool = False  # the user stopped it: ``answer`` is the text written until then


class ErrorEvent(_Out):
    type: Literal["error"] = "error"
    code: str
    message: str
    session_id: str | None = None


class DocumentStatusEvent(_Out):
    type: Literal["document_status"] = "document_status"
    workspace_id: str
    document_id: str
    name: str
    status: DocumentStatus
    reason: str | None = None
    chunk_count: int = 0
    #: When this status was recorded (the document's ``updated_at``), so the UI shows it without a reload.
    updated_at: datetime | None = None


class PongEvent(_Out):
    type: Literal["pong"] = "pong"


ServerMessage = Annotated[
    TokenEvent | ProgressEvent | FinalEvent | ErrorEvent | DocumentStatusEvent | PongEvent,
    Field(discriminator="type"),
]
server_message_adapter: TypeAdapter[
    TokenEvent | ProgressEvent | FinalEvent | ErrorEvent | DocumentStatusEvent | PongEvent
] = TypeAdapter(ServerMessage)


# =========================================================================== bus


class ChatJob(BaseModel):
    """What ``ws_message`` publishes (direction IN) and ``chat_worker`` consumes."""

    direction: Literal["in"] = "in"
    connection_id: str
    user: str
    session_id: str
    message_id: str
    request: ChatAction
    received_at: datetime
    #: The request's filter, checked and in canonical form (``quarry.filters.Filter.to_json``); {} for none.
    filters: dict[str, Any] = Field(default_factory=dict)


# =========================================================================== REST bodies


class WorkspaceIn(_In):
    name: str = Field(min_length=1, max_length=100)
    embedding_model: str | None = Field(default=None, max_length=200)
    chunk_size: int = Field(default=256, ge=16, le=2048)
    chunk_overlap: int = Field(default=32, ge=0, le=1024)
    hybrid: bool = True
    reranker: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> WorkspaceIn:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self


class WorkspaceOut(_Out):
    id: str
    name: str
    owner: str
    embedding_model: str
    dimensions: int
    chunk_size: int
    chunk_overlap: int
    hybrid: bool
    reranker: str | None
    created_at: datetime
    document_count: int | None = None
    chunk_count: int | None = None
    size_bytes: int | None = None

    @classmethod
    def of(cls, ws: Workspace, **counts: int) -> WorkspaceOut:
        return cls(
            id=ws.id,
            name=ws.name,
            owner=ws.owner,
            embedding_model=ws.embedding_model,
            dimensions=ws.dimensions,
            chunk_size=ws.chunking.size,
            chunk_overlap=ws.chunking.overlap,
            hybrid=ws.hybrid,
            reranker=ws.reranker,
            created_at=ws.created_at,
            **counts,
        )


class DocumentOut(_Out):
    id: str
    workspace_id: str
    name: str
    source: DocumentSource
    status: DocumentStatus
    status_reason: str | None
    content_type: str | None
    size_bytes: int
    chunk_count: int
    parent_id: str | None
    metadata: dict[str, MetadataValue] = Field(description="The metadata users set (filters select on it).")
    system: dict[str, Any] = Field(description="What the platform records about the document (url, upload version).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, doc: Document) -> DocumentOut:
        return cls(
            id=doc.id,
            workspace_id=doc.workspace_id,
            name=doc.name,
            source=doc.source,
            status=doc.status,
            status_reason=doc.status_reason,
            content_type=doc.content_type,
            size_bytes=doc.size_bytes,
            chunk_count=doc.chunk_count,
            parent_id=doc.parent_id,
            metadata=user_metadata(doc.metadata),
            system={k: v for k, v in doc.metadata.items() if k != USER_METADATA_KEY},
            created_at=doc.created_at,
            updated_at=doc.updated_at,
        )


class DocumentPatchIn(_In):
    """``PATCH /workspaces/{id}/documents/{doc}``: a JSON merge patch of the user metadata (null removes a key)."""

    metadata: dict[str, Any] = Field(description=_METADATA_IN + " A null value removes the key.")


class DocumentPreviewOut(_Out):
    """``GET /workspaces/{id}/documents/{doc}/preview``: the document and the start of its extracted text."""

    document: DocumentOut
    text: str
    #: The text is the first part only (the preview shows at most 5,000 characters).
    truncated: bool
    #: False when no extracted text is stored (processed before previews existed): process it again.
    available: bool


class UploadUrlIn(_In):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=200)
    size_bytes: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = Field(
        default=None,
        description=_METADATA_IN + " Kept with the uploaded object; omitted: a replaced file keeps its own.",
    )

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if "/" in v or "\\" in v or v in {".", ".."}:
            raise ValueError("filename must be a plain file name")
        return v


class UploadUrlOut(_Out):
    document_id: str
    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime
    max_bytes: int


class TextDocumentIn(_In):
    """Raw text (``type=text``) or a question/answer pair (``type=qna``)."""

    type: Literal["text", "qna"]
    title: str = Field(default="", max_length=300)
    text: str | None = Field(default=None, max_length=1_000_000)
    question: str | None = Field(default=None, max_length=10_000)
    answer: str | None = Field(default=None, max_length=100_000)
    metadata: dict[str, Any] | None = Field(
        default=None, description=_METADATA_IN + " Omitted: a replaced document keeps its own."
    )

    @model_validator(mode="after")
    def _fields_for_type(self) -> TextDocumentIn:
        if self.type == "text" and not (self.text and self.text.strip()):
            raise ValueError("text documents need a non-empty 'text'")
        if self.type == "qna" and not (self.question and self.answer):
            raise ValueError("question/answer documents need 'question' and 'answer'")
        return self


class WebsiteIn(_In):
    """A website crawl: every page becomes a sub-document of the crawl's document."""

    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    follow_links: bool = True
    use_sitemap: bool = False
    max_pages: int = Field(default=20, ge=1, le=500)
    max_depth: int = Field(default=2, ge=0, le=5)
    content_types: list[str] = Field(default_factory=lambda: ["text/html", "text/plain", "application/pdf"])
    metadata: dict[str, Any] | None = Field(default=None, description=_METADATA_IN + " Set on every page too.")


class ListOut(_Out, Generic[T]):
    items: list[T]
    cursor: str | None = None


class SearchIn(_In):
    query: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(default=10, ge=1, le=100)
    mode: SearchMode = SearchMode.HYBRID
    rerank: bool = False
    filters: dict[str, Any] = _filter_field()

    model_config = ConfigDict(json_schema_extra=_with_filter_alias)


class SourceLinkOut(_Out):
    """Where a cited document opens: a short-lived download of its file, or a web page's own address."""

    url: str
    expires_at: datetime | None = Field(description="When `url` stops working; null for a web page's address.")


class HitOut(_Out):
    chunk_id: str
    document_id: str
    document_name: str = Field(description="The document's name: label the hit by it.")
    page: int | None = Field(description="The page the passage starts on, when known.")
    title: str
    text: str
    start: int
    end: int
    score: float
    dense_rank: int | None
    keyword_rank: int | None
    rerank_score: float | None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, hit: Hit) -> HitOut:
        c = hit.chunk
        return cls(
            chunk_id=c.id,
            document_id=c.document_id,
            document_name=c.document_name,
            page=c.page,
            title=c.title,
            text=c.text,
            start=c.start,
            end=c.end,
            score=hit.score,
            dense_rank=hit.dense_rank,
            keyword_rank=hit.keyword_rank,
            rerank_score=hit.rerank_score,
            metadata=c.metadata,
        )


class SearchOut(_Out):
    hits: list[HitOut]
    mode: SearchMode
    took_ms: float


class RerankIn(_In):
    query: str = Field(min_length=1, max_length=4000)
    passages: list[str] = Field(min_length=1, max_length=200)
    model: str | None = None


class RerankOut(_Out):
    scores: list[float]
    ranking: list[int]
    model: str


class EmbeddingsIn(_In):
    texts: list[str] = Field(min_length=1, max_length=256)
    model: str | None = None


class EmbeddingsOut(_Out):
    model: str
    dimensions: int
    embeddings: list[list[float]]


class ChatIn(_In):
    text: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    session_id: str | None = Field(default=None, max_length=64)
    workspace_id: str | None = Field(default=None, max_length=64)
    model: str | None = None
    model_kwargs: ModelKwargs = Field(default_factory=ModelKwargs)
    top_k: int = Field(default=5, ge=1, le=20)
    filters: dict[str, Any] = _filter_field()

    model_config = ConfigDict(json_schema_extra=_with_filter_alias)


class SessionOut(_Out):
    id: str
    owner: str
    workspace_id: str | None
    title: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Session) -> SessionOut:
        return cls.model_validate(s)


class SessionPatchIn(_In):
    """A conversation's new title (``PATCH /sessions/{id}``)."""

    title: str = Field(min_length=1, max_length=80)


class MessageOut(_Out):
    id: str
    session_id: str
    role: Role
    content: str
    citations: list[CitationOut]
    created_at: datetime
    stopped: bool = False  # an answer the user stopped before it was complete

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(
            id=m.id,
            session_id=m.session_id,
            role=m.role,
            content=m.content,
            citations=[CitationOut.of(c) for c in m.citations],
            created_at=m.created_at,
            stopped=m.role is Role.ASSISTANT and m.metadata.get("cancelled") is True,
        )


class SessionDetailOut(_Out):
    session: SessionOut
    messages: list[MessageOut]
    cursor: str | None = None


class UsageRowOut(_Out):
    """Answers counted, tokens and estimated cost (USD) for one model (or all: ``model`` empty), one UTC day
    (or the whole period: ``day`` is then its first day)."""

    day: date
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @classmethod
    def of(cls, row: UsageTotal) -> UsageRowOut:
        return cls.model_validate(row)


class DailyAllowanceOut(_Out):
    """The caller's daily token allowance (input + output tokens, all workspaces) for the current UTC day."""

    daily_token_budget: int
    tokens_today: int
    tokens_left_today: int
    renews_at: datetime  # the next 00:00 UTC

    @classmethod
    def of(cls, allowance: Allowance) -> DailyAllowanceOut:
        return cls(
            daily_token_budget=allowance.budget,
            tokens_today=allowance.used,
            tokens_left_today=allowance.left,
            renews_at=allowance.renews_at,
        )


class UsageReportOut(_Out):
    """``GET /usage`` (the caller's own) and ``GET /workspaces/{id}/usage`` (its owner's view).

    ``allowance``: the caller's daily token allowance, in ``GET /usage`` only; null when the deployment sets
    none, and always in a workspace's view (an allowance is a user's, not a workspace's)."""

    scope: Literal["user", "workspace"]
    id: str
    since: date
    until: date
    currency: Literal["USD"] = "USD"
    prices_as_of: str
    total: UsageRowOut
    by_model: list[UsageRowOut]
    days: list[UsageRowOut]
    allowance: DailyAllowanceOut | None = None

    @classmethod
    def of(cls, report: UsageReport, *, prices_as_of: str, allowance: Allowance | None = None) -> UsageReportOut:
        return cls(
            scope=report.scope.value,
            id=report.key,
            since=report.since,
            until=report.until,
            prices_as_of=prices_as_of,
            total=UsageRowOut.of(report.total()),
            by_model=[UsageRowOut.of(r) for r in report.by_model()],
            days=[UsageRowOut.of(r) for r in report.days],
            allowance=DailyAllowanceOut.of(allowance) if allowance is not None else None,
        )


class ErrorBody(_Out):
    code: str
    message: str


class ErrorOut(_Out):
    """Every REST error: ``{"error": {"code", "message"}}``."""

    error: ErrorBody


class FeedbackIn(_In):
    session_id: str = Field(max_length=64)
    message_id: str = Field(max_length=64)
    rating: Literal[-1, 1]
    comment: str | None = Field(default=None, max_length=2000)
