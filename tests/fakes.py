"""In-memory fakes of the storage ports, and small deterministic models, for service unit tests.

They keep the behaviour the contract suites in ``tests/contracts`` pin down (and those suites run
against them in ``tests/unit/test_fakes_contracts.py``), so a service tested on fakes behaves the
same on Postgres, DynamoDB or OpenSearch.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from quarry.adapters.blob_keys import OBJECT_METADATA_PREFIX, check_object_metadata
from quarry.adapters.paging import INVALID_CURSOR, check_limit, decode_cursor, encode_cursor
from quarry.errors import Conflict, InvalidInput, NotFound
from quarry.filters import Filter
from quarry.metadata import USER_METADATA_KEY, validate_metadata
from quarry.models import Chunk, Document, DocumentStatus, Feedback, Message, Session, Usage, Workspace, utcnow
from quarry.ports import (
    UPLOAD_SEQUENCER,
    BlobInfo,
    ChatDelta,
    ChatTurn,
    ConnectionInfo,
    DownloadLink,
    Page,
    ScoredChunk,
    UploadTarget,
    WorkflowName,
)
from quarry.summary_models import SummaryJob, job_from_record, job_to_record
from quarry.text.bm25 import BM25

__all__ = [
    "ENGLISH_STOP_WORDS",
    "ChatCall",
    "FakeBlobStore",
    "FakeCatalog",
    "FakeChatHistory",
    "FakeConnections",
    "FakeSummarySchedules",
    "FakeSummaryStore",
    "FakeVectorIndex",
    "HashEmbedder",
    "RecordingBus",
    "RecordingNotifier",
    "RecordingWorkflow",
    "ScriptedChatModel",
    "WordOverlapReranker",
    "WordTokenizer",
    "analyse",
]

# PostgreSQL's english.stop (Snowball), so keyword scores match the pgvector adapter on plain words.
ENGLISH_STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
    hers herself it its itself they them their theirs themselves what which who whom this that these those
    am is are was were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why how all
    any both each few more most other some such no nor not only own same so than too very s t can will
    just don should now""".split()  # noqa: SIM905 - the list as PostgreSQL ships it
)


def analyse(text: str) -> list[str]:
    """Lower-cased words minus stop words (no stemming: enough for tests that avoid inflections)."""
    return [word for word in re.findall(r"[^\W_]+", text.lower()) if word not in ENGLISH_STOP_WORDS]


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    (offset,) = decode_cursor(cursor, "fake", (int,))
    if offset < 0:
        raise InvalidInput(INVALID_CURSOR)
    return int(offset)


def _page(items: list[Any], limit: int, cursor: str | None) -> Page[Any]:
    check_limit(limit)
    start = _offset(cursor)
    end = start + limit
    return Page(items[start:end], encode_cursor("fake", end) if end < len(items) else None)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------- catalog


class FakeCatalog:
    def __init__(self) -> None:
        self.workspaces: dict[str, Workspace] = {}
        self.documents: dict[tuple[str, str], Document] = {}
        self.keys: dict[tuple[str, str], str] = {}  # (workspace, idempotency key) -> document id
        self.feedback: dict[tuple[str, str, str], Feedback] = {}
        self._lock = threading.RLock()

    def put_workspace(self, workspace: Workspace) -> None:
        self.workspaces[workspace.id] = workspace

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        return self.workspaces.get(workspace_id)

    def list_workspaces(self, user: str) -> list[Workspace]:
        found = [ws for ws in self.workspaces.values() if ws.readable_by(user)]
        return sorted(found, key=lambda ws: (ws.created_at, ws.id))

    def delete_workspace(self, workspace_id: str) -> None:
        with self._lock:
            self.workspaces.pop(workspace_id, None)
            for key in [key for key in self.documents if key[0] == workspace_id]:
                del self.documents[key]
            for key in [key for key in self.keys if key[0] == workspace_id]:
                del self.keys[key]

    def register_document(self, document: Document, *, idempotency_key: str | None = None) -> tuple[Document, bool]:
        with self._lock:
            if idempotency_key is not None:
                known = self.keys.get((document.workspace_id, idempotency_key))
                if known is not None and (document.workspace_id, known) in self.documents:
                    return self.documents[(document.workspace_id, known)], False
            existing = self.documents.get((document.workspace_id, document.id))
            if existing is not None:
                return existing, False
            self.documents[(document.workspace_id, document.id)] = document
            if idempotency_key is not None:
                self.keys[(document.workspace_id, idempotency_key)] = document.id
            return document, True

    def put_document(self, document: Document) -> None:
        self.documents[(document.workspace_id, document.id)] = document

    def put_document_if(
        self, document: Document, *, expected_sequencer: str | None, expected_status: DocumentStatus | None = None
    ) -> bool:
        with self._lock:
            current = self.documents.get((document.workspace_id, document.id))
            if current is None or (current.metadata.get(UPLOAD_SEQUENCER) or None) != expected_sequencer:
                return False
            if expected_status is not None and current.status is not DocumentStatus(expected_status):
                return False
            self.documents[(document.workspace_id, document.id)] = document
            return True

    def get_document(self, workspace_id: str, document_id: str) -> Document | None:
        return self.documents.get((workspace_id, document_id))

    def list_documents(
        self,
        workspace_id: str,
        *,
        status: DocumentStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Document]:
        found = [
            doc
            for (ws, _), doc in self.documents.items()
            if ws == workspace_id and (status is None or doc.status == status)
        ]
        return _page(sorted(found, key=lambda doc: (doc.created_at, doc.id)), limit, cursor)

    def set_document_status(
        self,
        workspace_id: str,
        document_id: str,
        status: DocumentStatus,
        *,
        reason: str | None = None,
        chunk_count: int | None = None,
    ) -> Document | None:
        with self._lock:
            current = self.documents.get((workspace_id, document_id))
            if current is None:
                return None
            updated = replace(
                current,
                status=DocumentStatus(status),
                status_reason=reason,
                chunk_count=current.chunk_count if chunk_count is None else chunk_count,
                updated_at=utcnow(),
            )
            self.documents[(workspace_id, document_id)] = updated
            return updated

    def delete_document(self, workspace_id: str, document_id: str) -> None:
        with self._lock:
            self.documents.pop((workspace_id, document_id), None)
            for key in [key for key, doc_id in self.keys.items() if key[0] == workspace_id and doc_id == document_id]:
                del self.keys[key]

    def existing_document_ids(self, workspace_id: str, document_ids: Iterable[str]) -> set[str]:
        with self._lock:
            return {doc_id for doc_id in document_ids if (workspace_id, doc_id) in self.documents}

    def stale_documents(self, status: DocumentStatus, older_than: datetime) -> list[Document]:
        limit = _aware(older_than)
        found = [doc for doc in self.documents.values() if doc.status == status and doc.updated_at < limit]
        return sorted(found, key=lambda doc: (doc.updated_at, doc.workspace_id, doc.id))

    def put_feedback(self, feedback: Feedback) -> None:
        self.feedback[(feedback.session_id, feedback.message_id, feedback.user)] = feedback

    def list_feedback(self, *, since: datetime | None = None) -> list[Feedback]:
        found = [fb for fb in self.feedback.values() if since is None or fb.created_at >= _aware(since)]
        return sorted(found, key=lambda fb: (fb.created_at, fb.session_id, fb.message_id, fb.user))


# --------------------------------------------------------------------------- chat history


class FakeChatHistory:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.messages: dict[str, dict[str, Message]] = {}  # session -> id -> message, in insertion order
        self._lock = threading.Lock()

    def put_session(self, session: Session) -> None:
        self.sessions[session.id] = session

    def get_session(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def list_sessions(self, owner: str, *, limit: int = 20, cursor: str | None = None) -> Page[Session]:
        found = [s for s in self.sessions.values() if s.owner == owner]
        found.sort(key=lambda s: (s.updated_at, s.id), reverse=True)
        return _page(found, limit, cursor)

    def delete_session(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        self.messages.pop(session_id, None)

    def add_message(self, message: Message) -> None:
        try:
            json.dumps(message.metadata)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"message {message.id} cannot be stored: {exc}") from exc
        messages = self.messages.setdefault(message.session_id, {})
        previous = messages.get(message.id)
        if previous is not None:  # same id again: the content is replaced, the place kept
            message = replace(message, created_at=previous.created_at)
        messages[message.id] = message

    def add_message_if_new(self, message: Message) -> bool:
        with self._lock:
            if message.id in self.messages.get(message.session_id, {}):
                return False
            self.add_message(message)
            return True

    def get_message(self, session_id: str, message_id: str) -> Message | None:
        return self.messages.get(session_id, {}).get(message_id)

    def _ordered(self, session_id: str) -> list[Message]:
        return sorted(self.messages.get(session_id, {}).values(), key=lambda m: m.created_at)  # stable

    def list_messages(self, session_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        return _page(self._ordered(session_id), limit, cursor)

    def recent_messages(self, session_id: str, *, limit: int) -> list[Message]:
        check_limit(limit)
        return self._ordered(session_id)[-limit:]


# --------------------------------------------------------------------------- connections


class FakeConnections:
    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self.live: dict[str, tuple[str, datetime, datetime | None]] = {}  # id -> (user, expires, token expires)

    def add(
        self, connection_id: str, user: str, *, ttl_seconds: int = 7200, token_expires_at: datetime | None = None
    ) -> None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise InvalidInput("ttl_seconds must be a positive integer")
        token_expiry = None if token_expires_at is None else _aware(token_expires_at)
        self.live[connection_id] = (user, self.clock() + timedelta(seconds=ttl_seconds), token_expiry)

    def remove(self, connection_id: str) -> None:
        self.live.pop(connection_id, None)

    def get(self, connection_id: str) -> ConnectionInfo | None:
        entry = self.live.get(connection_id)
        if entry is None or entry[1] <= self.clock():
            return None
        return ConnectionInfo(id=connection_id, user=entry[0], token_expires_at=entry[2])

    def user_of(self, connection_id: str) -> str | None:
        info = self.get(connection_id)
        return info.user if info else None

    def of_user(self, user: str) -> list[str]:
        now = self.clock()
        return sorted(cid for cid, (owner, expires, _) in self.live.items() if owner == user and expires > now)


# --------------------------------------------------------------------------- vector index


def _vector(values: Sequence[float] | None, what: str, dimensions: int) -> list[float]:
    if values is None:
        raise InvalidInput(f"{what} is missing")
    try:
        vector = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be a sequence of numbers") from exc
    if len(vector) != dimensions:
        raise InvalidInput(f"{what} has {len(vector)} dimensions; the workspace uses {dimensions}")
    if not all(math.isfinite(v) for v in vector) or not any(vector):
        raise InvalidInput(f"{what} must be finite and not all zeros")
    return vector


def _check_chunks(workspace_id: str, document_id: str, chunks: Sequence[Chunk], dimensions: int) -> None:
    if not isinstance(document_id, str) or not document_id:
        raise InvalidInput("document ids must be non-empty strings")
    ordinals: set[int] = set()
    for chunk in chunks:
        if chunk.workspace_id != workspace_id or chunk.document_id != document_id:
            raise InvalidInput(f"chunk {chunk.id} does not belong to {workspace_id}/{document_id}")
        if chunk.ordinal in ordinals:
            raise InvalidInput(f"duplicate chunk ordinal {chunk.ordinal}")
        ordinals.add(chunk.ordinal)
        _vector(chunk.embedding, f"embedding of chunk {chunk.id}", dimensions)
        if "\x00" in chunk.text or "\x00" in chunk.title:
            raise InvalidInput(f"chunk {chunk.id} contains NUL characters")
        try:
            json.dumps(chunk.metadata)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"chunk {chunk.id} metadata is not JSON") from exc


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@dataclass
class _FakeWorkspace:
    dimensions: int
    documents: dict[str, list[Chunk]] = field(default_factory=dict)

    def chunks(self) -> list[Chunk]:
        return [chunk for chunks in self.documents.values() for chunk in chunks]


class FakeVectorIndex:
    """Brute-force cosine and exact BM25 (``quarry.text.bm25``: the pgvector adapter's formula and defaults)."""

    def __init__(self, *, k1: float = 0.9, b: float = 0.4) -> None:
        self.k1 = k1
        self.b = b
        self.workspaces: dict[str, _FakeWorkspace] = {}

    def _workspace(self, workspace_id: str) -> _FakeWorkspace:
        try:
            return self.workspaces[workspace_id]
        except KeyError:
            raise NotFound(f"workspace {workspace_id!r} has no index") from None

    def ensure_workspace(self, workspace_id: str, *, dimensions: int) -> None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or not 1 <= dimensions <= 2000:
            raise InvalidInput("embedding dimensions must be between 1 and 2000")
        existing = self.workspaces.get(workspace_id)
        if existing is not None and existing.dimensions != dimensions:
            raise Conflict(f"workspace {workspace_id!r} is indexed with {existing.dimensions} dimensions")
        self.workspaces.setdefault(workspace_id, _FakeWorkspace(dimensions))

    def drop_workspace(self, workspace_id: str) -> None:
        self.workspaces.pop(workspace_id, None)

    def replace_document(self, workspace_id: str, document_id: str, chunks: Sequence[Chunk]) -> None:
        self.replace_documents(workspace_id, {document_id: chunks})

    def optimize(self, workspace_id: str) -> None:
        self._workspace(workspace_id)  # nothing to refresh in memory; an unknown workspace still fails

    def replace_documents(self, workspace_id: str, documents: Mapping[str, Sequence[Chunk]]) -> None:
        """All or nothing, like the pgvector adapter's bulk variant."""
        workspace = self._workspace(workspace_id)
        for document_id, chunks in documents.items():
            _check_chunks(workspace_id, document_id, chunks, workspace.dimensions)
        for document_id, chunks in documents.items():
            if chunks:
                workspace.documents[document_id] = list(chunks)
            else:
                workspace.documents.pop(document_id, None)

    def delete_document(self, workspace_id: str, document_id: str) -> int:
        workspace = self.workspaces.get(workspace_id)
        if workspace is None:
            return 0
        return len(workspace.documents.pop(document_id, []))

    def count(self, workspace_id: str, *, document_id: str | None = None) -> int:
        workspace = self._workspace(workspace_id)
        if document_id is not None:
            return len(workspace.documents.get(document_id, []))
        return sum(len(chunks) for chunks in workspace.documents.values())

    def set_document_fields(self, workspace_id: str, document_id: str, fields: Mapping[str, Any]) -> int:
        workspace = self.workspaces.get(workspace_id)
        if workspace is None:
            return 0
        checked = validate_metadata(fields, where="fields")
        chunks = workspace.documents.get(document_id, [])
        workspace.documents[document_id] = [
            replace(chunk, metadata={**chunk.metadata, USER_METADATA_KEY: dict(checked)}) for chunk in chunks
        ]
        if not chunks:
            workspace.documents.pop(document_id, None)
        return len(chunks)

    def dense(
        self, workspace_id: str, vector: Sequence[float], *, k: int, filters: Filter | None = None
    ) -> list[ScoredChunk]:
        workspace = self._workspace(workspace_id)
        _check_k(k)
        wanted = Filter.parse(filters)
        query = _vector(vector, "query vector", workspace.dimensions)
        scored = [
            ScoredChunk(replace(chunk, embedding=None), _cosine(query, chunk.embedding or ()))
            for chunk in workspace.chunks()
            if wanted.matches_chunk_metadata(chunk.metadata, document_id=chunk.document_id)
        ]
        return _best(scored, k)

    def keyword(self, workspace_id: str, query: str, *, k: int, filters: Filter | None = None) -> list[ScoredChunk]:
        """Filters restrict the ranked chunks; BM25's corpus statistics stay the whole workspace's."""
        workspace = self._workspace(workspace_id)
        _check_k(k)
        wanted = Filter.parse(filters)
        chunks = workspace.chunks()
        bm25 = BM25((f"{chunk.title} {chunk.text}" for chunk in chunks), analyzer=analyse, k1=self.k1, b=self.b)
        scored = [
            ScoredChunk(replace(chunks[position], embedding=None), score)
            for position, score in bm25.scores(query).items()
            if wanted.matches_chunk_metadata(chunks[position].metadata, document_id=chunks[position].document_id)
        ]
        return _best(scored, k)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise InvalidInput("k must be between 1 and 1000")


def _best(scored: list[ScoredChunk], k: int) -> list[ScoredChunk]:
    scored.sort(key=lambda hit: (-hit.score, hit.chunk.document_id, hit.chunk.ordinal))
    return scored[:k]


# --------------------------------------------------------------------------- blobs


class FakeBlobStore:
    def __init__(self, *, base_url: str = "memory://blobs") -> None:
        self.base_url = base_url
        self.blobs: dict[str, tuple[bytes, str | None]] = {}
        self.object_metadata: dict[str, dict[str, str]] = {}

    def put(
        self, key: str, data: bytes, *, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> BlobInfo:
        if not key or key.startswith("/"):
            raise InvalidInput("blob keys must be relative and non-empty")
        self.blobs[key] = (bytes(data), content_type)
        self.object_metadata[key] = check_object_metadata(metadata)
        return self._info(key)

    def _info(self, key: str) -> BlobInfo:
        data, content_type = self.blobs[key]
        return BlobInfo(
            key=key,
            size=len(data),
            content_type=content_type,
            etag=hashlib.md5(data).hexdigest(),
            metadata=dict(self.object_metadata.get(key, {})),
        )

    def get(self, key: str) -> bytes:
        try:
            return self.blobs[key][0]
        except KeyError:
            raise NotFound(f"blob {key!r} not found") from None

    def head(self, key: str) -> BlobInfo | None:
        return self._info(key) if key in self.blobs else None

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)
        self.object_metadata.pop(key, None)

    def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self.blobs if key.startswith(prefix)]
        for key in doomed:
            self.delete(key)
        return len(doomed)

    def presigned_post(
        self,
        key: str,
        *,
        max_bytes: int,
        content_type: str,
        expires_in: int,
        metadata: Mapping[str, str] | None = None,
    ) -> UploadTarget:
        meta_fields = {OBJECT_METADATA_PREFIX + name: value for name, value in check_object_metadata(metadata).items()}
        return UploadTarget(
            url=f"{self.base_url}/upload",
            fields={"key": key, "Content-Type": content_type, **meta_fields},
            key=key,
            expires_at=utcnow() + timedelta(seconds=expires_in),
            max_bytes=max_bytes,
        )

    def presigned_get(self, key: str, *, expires_in: int, filename: str) -> DownloadLink:
        if key not in self.blobs:
            raise NotFound(f"blob not found: {key}")
        return DownloadLink(
            url=f"{self.base_url}/download/{key}?{urlencode({'filename': filename})}",
            expires_at=utcnow() + timedelta(seconds=expires_in),
        )


# --------------------------------------------------------------------------- models


class HashEmbedder:
    """A deterministic ``Embedder``: a bag of hashed lower-cased words (punctuation dropped), unit length.

    Texts sharing words have a positive cosine, texts sharing none a cosine of zero. Every call's batch size
    is kept in ``batches``.
    """

    def __init__(self, *, name: str = "hash-16", dimensions: int = 16) -> None:
        self.name = name
        self.dimensions = dimensions
        self.batches: list[int] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.batches.append(len(texts))
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def _vector(self, text: str) -> list[float]:
        v = [0.0] * self.dimensions
        for word in re.findall(r"[^\W_]+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]


class WordOverlapReranker:
    """A deterministic ``Reranker``: the share of the query's distinct words found in each passage."""

    def __init__(self, *, name: str = "overlap") -> None:
        self.name = name

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        wanted = set(query.lower().split())
        return [len(wanted & set(p.lower().split())) / max(len(wanted), 1) for p in passages]


@dataclass(frozen=True)
class ChatCall:
    """One request a ``ScriptedChatModel`` received."""

    turns: list[ChatTurn]
    max_tokens: int
    temperature: float


class ScriptedChatModel:
    """A ``ChatModel`` that answers from a script: each call streams the next reply's pieces, then a usage delta.

    A reply is a list of pieces (each one ``ChatDelta``) or a string (one piece). The usage counts the
    words of the request as prompt tokens and the pieces as completion tokens. Requests are kept in
    ``calls``; ``closed`` counts the streams closed before their end (a cancelled answer).
    """

    context_tokens = 2048

    def __init__(self, *replies: str | Sequence[str], name: str = "scripted") -> None:
        self.name = name
        self.replies: list[list[str]] = [[r] if isinstance(r, str) else list(r) for r in replies]
        self.calls: list[ChatCall] = []
        self.closed = 0

    def stream(
        self, turns: Sequence[ChatTurn], *, max_tokens: int = 512, temperature: float = 0.1
    ) -> Iterator[ChatDelta]:
        self.calls.append(ChatCall(list(turns), max_tokens, temperature))
        if not self.replies:
            raise AssertionError(f"the chat model was called {len(self.calls)} times; the script has no reply left")
        pieces = self.replies.pop(0)
        usage = Usage(prompt_tokens=sum(len(t.content.split()) for t in turns), completion_tokens=len(pieces))
        return self._deltas(pieces, usage)

    def _deltas(self, pieces: list[str], usage: Usage) -> Iterator[ChatDelta]:
        finished = False
        try:
            for piece in pieces:
                yield ChatDelta(piece)
            yield ChatDelta("", usage=usage)
            finished = True
        finally:
            if not finished:
                self.closed += 1


class WordTokenizer:
    """A ``Tokenizer`` counting whitespace-separated words: chunk budgets in words, for the real chunker."""

    def count(self, text: str) -> int:
        return len(text.split())


# --------------------------------------------------------------------------- outgoing calls


class RecordingWorkflow:
    """A ``Workflow`` that keeps the runs it is asked to start; like Step Functions, a run id seen before
    starts nothing."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[WorkflowName, dict[str, Any]]] = {}
        self.starts = 0

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        self.starts += 1
        execution = run_id or f"run-{self.starts}"
        self.runs.setdefault(execution, (name, dict(payload)))
        return execution

    def started(self, name: WorkflowName) -> list[dict[str, Any]]:
        """The payloads of the distinct runs of ``name``, in start order."""
        return [payload for kind, payload in self.runs.values() if kind is name]


class RecordingBus:
    """A ``Bus`` that keeps what is published: (topic, message, attributes)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def publish(self, topic: str, message: Mapping[str, Any], *, attributes: Mapping[str, str] | None = None) -> None:
        self.published.append((topic, dict(message), dict(attributes or {})))


class RecordingNotifier:
    """A ``Notifier`` that keeps what it delivers; a connection in ``gone`` (or gone after ``drop_after``
    deliveries) refuses, as API Gateway answers 410."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.closed: list[tuple[str, int, str]] = []
        self.gone: set[str] = set()
        self._left: dict[str, int] = {}

    def drop_after(self, connection_id: str, deliveries: int) -> None:
        self._left[connection_id] = deliveries

    def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
        if connection_id in self._left:
            if self._left[connection_id] <= 0:
                self.gone.add(connection_id)
            self._left[connection_id] -= 1
        if connection_id in self.gone:
            return False
        self.sent.append((connection_id, dict(payload)))
        return True

    def close(self, connection_id: str, *, code: int, reason: str) -> None:
        self.closed.append((connection_id, code, reason))

    def to(self, connection_id: str) -> list[dict[str, Any]]:
        """What ``connection_id`` received, in order."""
        return [payload for target, payload in self.sent if target == connection_id]


def fake_overrides(recorder: Any, models: Any, **more: Any) -> Any:
    """Adapter overrides for ``build_services`` on the in-memory stores: one ``recorder`` standing in for the
    bus, the workflow and the notifier, the given model registry, the summary jobs' store and schedules, and any
    ``more`` ports."""
    return {
        "catalog": FakeCatalog(),
        "chat_history": FakeChatHistory(),
        "connections": FakeConnections(),
        "vector_index": FakeVectorIndex(),
        "blob_store": FakeBlobStore(),
        "bus": recorder,
        "workflow": recorder,
        "notifier": recorder,
        "models": models,
        "summaries": FakeSummaryStore(),
        "summary_schedules": FakeSummarySchedules(),
        **more,
    }


# --------------------------------------------------------------------------- summaries


class FakeSummaryStore:
    """Summary jobs kept as their records (``job_to_record``), as the real stores keep them."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put_job(self, job: SummaryJob) -> None:
        record = json.loads(json.dumps(job_to_record(job)))  # what a store holds: JSON, no shared objects
        with self._lock:
            self.records[(job.workspace_id, job.id)] = record

    def put_job_if(self, job: SummaryJob, expected_updated_at: datetime) -> bool:
        if expected_updated_at.tzinfo is None:
            raise InvalidInput("datetimes must be timezone-aware")
        record = json.loads(json.dumps(job_to_record(job)))
        expected = expected_updated_at.astimezone(UTC).isoformat()  # the record's form (job_to_record)
        with self._lock:
            stored = self.records.get((job.workspace_id, job.id))
            if stored is None or stored["updated_at"] != expected:
                return False
            self.records[(job.workspace_id, job.id)] = record
            return True

    def get_job(self, workspace_id: str, job_id: str) -> SummaryJob | None:
        record = self.records.get((workspace_id, job_id))
        return job_from_record(record) if record is not None else None

    def list_jobs(self, workspace_id: str, *, limit: int = 50, cursor: str | None = None) -> Page[SummaryJob]:
        with self._lock:
            jobs = [job_from_record(record) for (ws, _), record in self.records.items() if ws == workspace_id]
        jobs.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        return _page(jobs, limit, cursor)

    def scheduled_jobs(self) -> list[SummaryJob]:
        with self._lock:
            records = [self.records[key] for key in sorted(self.records) if self.records[key]["schedule"] is not None]
        return [job_from_record(record) for record in records]

    def delete_job(self, workspace_id: str, job_id: str) -> None:
        with self._lock:
            self.records.pop((workspace_id, job_id), None)


class FakeSummarySchedules:
    """``SummarySchedules`` in memory: the expression each scheduled job has, and every delete asked."""

    def __init__(self) -> None:
        self.schedules: dict[tuple[str, str], str | None] = {}
        self.deleted: list[tuple[str, str]] = []

    def put(self, job: SummaryJob) -> None:
        if job.schedule is None:
            self.delete(job.workspace_id, job.id)
            return
        self.schedules[(job.workspace_id, job.id)] = job.schedule

    def delete(self, workspace_id: str, job_id: str) -> None:
        self.schedules.pop((workspace_id, job_id), None)
        self.deleted.append((workspace_id, job_id))
