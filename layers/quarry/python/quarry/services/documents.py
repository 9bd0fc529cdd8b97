"""Document use cases: upload URLs, registering uploads, text / Q&A / website sources, listing, deletion, and the
metadata users set on a document (``quarry.metadata``).

User metadata sits in ``Document.metadata[USER_METADATA_KEY]`` beside the system fields, and the ingestion copies
it onto every chunk. It comes in with every way a document does: an upload carries it in its object's metadata
(``FIELDS_OBJECT_METADATA``, signed into the presigned POST), so the upload event finds it on the object; text,
Q&A and website requests carry it in the request (a crawl's pages get the crawl's). A new version given no
metadata keeps the document's own. ``set_metadata`` edits it afterwards: catalog, then the chunks in place.
An edit never writes over a run's status, and a run that starts while an edit is made ends with the edit on
its chunks (``_store_fields``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from quarry.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from quarry.filetypes import content_type_for
from quarry.metadata import (
    USER_METADATA_KEY,
    MetadataValue,
    merge_metadata,
    user_metadata,
    validate_key,
    validate_metadata,
)
from quarry.models import Document, DocumentSource, DocumentStatus, content_hash, new_id, utcnow
from quarry.ports import (
    UPLOAD_SEQUENCER,
    BlobStore,
    Catalog,
    Page,
    UploadTarget,
    VectorIndex,
    Workflow,
    WorkflowName,
)
from quarry.services.access import WorkspaceAccess
from quarry.services.workspaces import workspace_prefix

__all__ = [
    "FIELDS_OBJECT_METADATA",
    "MAX_UPLOAD_FIELDS_BYTES",
    "PREVIEW_CHARS",
    "STUCK_CREATED_AFTER",
    "DocumentPreview",
    "DocumentService",
    "SourceLink",
    "UploadKey",
    "document_id_for",
    "document_prefix",
    "preview_key",
    "sequencer_after",
]

log = logging.getLogger(__name__)

# Where an upload's object version is recorded on its document (metadata, so no schema change).
SEQUENCER = UPLOAD_SEQUENCER  # also what ``Catalog.put_document_if`` compares
EVENT_TIME = "s3_event_time"
VERSION_ID = "s3_version_id"

#: The object metadata name (S3 ``x-amz-meta-quarry-fields``) an upload's user metadata travels under, as JSON.
FIELDS_OBJECT_METADATA = "quarry-fields"
#: S3 keeps 2 KB of metadata with an object: the JSON of an upload's user metadata must fit in it (ASCII).
MAX_UPLOAD_FIELDS_BYTES = 2000

#: A document still ``created`` this long after its last change never got its run (a start that failed,
#: a queue that was lost): ``retry`` accepts it. A younger one may still be queued: 409.
STUCK_CREATED_AFTER = timedelta(minutes=10)


def document_id_for(workspace_id: str, name: str) -> str:
    """A document's identity is its name within the workspace: the same name again replaces it."""
    return hashlib.sha256(f"{workspace_id}\x00{name}".encode()).hexdigest()[:32]


def document_prefix(workspace_id: str, document_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}documents/{document_id}/"


#: How much of a document's extracted text its preview shows (the pipeline stores one character more,
#: so the preview knows whether it was cut).
PREVIEW_CHARS = 5000


def preview_key(workspace_id: str, document_id: str) -> str:
    """Where the pipeline keeps the start of a document's extracted text (never an upload: no file name has a /)."""
    return document_prefix(workspace_id, document_id) + "preview/text.txt"


@dataclass(frozen=True, slots=True)
class DocumentPreview:
    document: Document
    #: The first ``PREVIEW_CHARS`` characters of the extracted text ("" when none was stored).
    text: str
    truncated: bool
    #: False for a document processed before previews were stored: it has to be processed again.
    available: bool


@dataclass(frozen=True, slots=True)
class SourceLink:
    """Where a document's own file (or page) opens."""

    url: str
    #: When ``url`` stops working; None for a web page's own address.
    expires_at: datetime | None


def source_filename(document: Document) -> str:
    """The name a document's file is served under: its own, or for typed text its title as Markdown."""
    name = "".join(ch for ch in document.name if ch.isprintable()).strip() or document.id
    if document.source is DocumentSource.FILE:
        return name[:255]
    return name[:200] if name.lower().endswith((".md", ".txt")) else f"{name[:200]}.md"


def sequencer_after(candidate: str, applied: str) -> bool:
    """Whether S3 ``sequencer`` ``candidate`` is later than ``applied`` (events of one key only).

    Sequencers are hexadecimal strings of varying length: left-pad the shorter with zeros, then
    compare lexicographically (as the S3 event notification documentation says).
    """
    width = max(len(candidate), len(applied))
    return candidate.upper().rjust(width, "0") > applied.upper().rjust(width, "0")


def _upload_supersedes(incoming: Document, stored: Document) -> bool:
    """Whether an upload event's object version comes after the one the document holds.

    By S3 sequencer when both have one; else by event time when both have one and they differ; else
    (nothing to order by) a different content wins, and the same content is the same version, except
    after a failed run: then an event other than the one recorded (a document registered before versions
    were recorded holds none) is the same bytes uploaded again, a new run. A redelivered event never is.
    """
    new_seq, old_seq = incoming.metadata.get(SEQUENCER), stored.metadata.get(SEQUENCER)
    if new_seq and old_seq:
        return sequencer_after(str(new_seq), str(old_seq))
    new_time, old_time = incoming.metadata.get(EVENT_TIME), stored.metadata.get(EVENT_TIME)
    if new_time and old_time and new_time != old_time:
        return datetime.fromisoformat(str(new_time)) > datetime.fromisoformat(str(old_time))
    if incoming.content_hash != stored.content_hash:
        return True
    new_version, old_version = _upload_version(incoming), _upload_version(stored)
    return stored.status is DocumentStatus.ERROR and any(new_version) and new_version != old_version


def _upload_version(document: Document) -> tuple[str | None, ...]:
    recorded = (document.metadata.get(name) for name in (SEQUENCER, EVENT_TIME, VERSION_ID))
    return tuple(str(value) if value else None for value in recorded)


def _sequencer_of(document: Document) -> str | None:
    value = document.metadata.get(SEQUENCER)
    return str(value) if value else None


@dataclass(frozen=True, slots=True)
class UploadKey:
    """``workspaces/{ws}/documents/{doc}/{filename}``: everything an upload event needs is in its key."""

    workspace_id: str
    document_id: str
    filename: str

    @property
    def key(self) -> str:
        return document_prefix(self.workspace_id, self.document_id) + self.filename

    @classmethod
    def parse(cls, key: str) -> UploadKey:
        parts = key.split("/")
        if len(parts) != 5 or parts[0] != "workspaces" or parts[2] != "documents" or not all(parts):
            raise InvalidInput(f"not a document upload key: {key!r}")
        return cls(workspace_id=parts[1], document_id=parts[3], filename=parts[4])


class DocumentService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        blobs: BlobStore,
        index: VectorIndex,
        workflow: Workflow,
        access: WorkspaceAccess,
        max_upload_bytes: int,
        upload_ttl_seconds: int = 900,
        preview_blobs: BlobStore | None = None,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._previews = preview_blobs or blobs
        self._index = index
        self._workflow = workflow
        self._access = access
        self._max_bytes = max_upload_bytes
        self._ttl = upload_ttl_seconds

    # ------------------------------------------------------------------ files
    def upload_url(
        self,
        user: str,
        workspace_id: str,
        filename: str,
        content_type: str,
        size_bytes: int | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> tuple[str, UploadTarget]:
        """A presigned upload. ``metadata`` (user metadata, checked here) is signed into the upload as the object's
        ``FIELDS_OBJECT_METADATA``, so the stored object keeps it and its upload event sets it on the document;
        None: the document keeps the metadata it has (a replaced file), or has none."""
        self._access.readable(user, workspace_id)
        canonical = content_type_for(filename, content_type)
        if size_bytes is not None and size_bytes > self._max_bytes:
            raise PayloadTooLarge(f"{filename}: {size_bytes} bytes is over the {self._max_bytes}-byte limit")
        object_metadata = None if metadata is None else {FIELDS_OBJECT_METADATA: _fields_json(metadata)}
        key = UploadKey(workspace_id, document_id_for(workspace_id, filename), filename)
        target = self._blobs.presigned_post(
            key.key, max_bytes=self._max_bytes, content_type=canonical, expires_in=self._ttl, metadata=object_metadata
        )
        return key.document_id, target

    def register_upload(
        self,
        key: str,
        *,
        etag: str,
        size: int,
        content_type: str | None,
        sequencer: str | None = None,
        event_time: datetime | None = None,
        version_id: str | None = None,
    ) -> tuple[Document, bool]:
        """An object landed in the upload store: register it and start ingestion; returns (document, started).

        Idempotent on key+etag+sequencer, and never backwards: the object version (S3 ``sequencer``, else
        the event time) is recorded on the document, and an event for an older version than the recorded
        one (S3 delivers out of order, SQS redelivers) is logged and changes nothing.
        """
        parsed = UploadKey.parse(key)
        if self._catalog.get_workspace(parsed.workspace_id) is None:
            raise NotFound(f"workspace {parsed.workspace_id} not found for upload {key}")
        fields = self._object_fields(key)
        document = Document(
            id=parsed.document_id,
            workspace_id=parsed.workspace_id,
            name=parsed.filename,
            source=DocumentSource.FILE,
            blob_key=key,
            content_type=content_type,
            size_bytes=size,
            content_hash=etag,
            metadata=_with_fields(_version_metadata(sequencer, event_time, version_id), fields),
        )
        return self._register(
            document,
            idempotency_key=f"{key}#{etag}",
            run_key=f"{key}#{etag}#{sequencer or version_id or ''}",
            supersedes=_upload_supersedes,
        )

    def _register(
        self,
        document: Document,
        *,
        idempotency_key: str,
        run_key: str | None = None,
        supersedes: Callable[[Document, Document], bool] | None = None,
    ) -> tuple[Document, bool]:
        """``supersedes(new, stored)``: whether ``document`` replaces a stored one (default: other content).

        The replacement is a compare-and-set on the stored version's sequencer (``put_document_if``): a
        writer that read the same version and wrote first wins, and this decision is taken once more on
        what it wrote (an older event then changes nothing). Losing twice is a Conflict (an event is
        redelivered, a request can be repeated).
        """
        for _ in range(2):
            stored, created = self._catalog.register_document(document, idempotency_key=idempotency_key)
            if not created:
                if not (supersedes or _other_content)(document, stored):
                    if stored.content_hash != document.content_hash:
                        log.info(
                            "stale version of %s ignored: %s is older than the stored %s",
                            document.name,
                            {k: v for k, v in document.metadata.items() if k.startswith("s3_")},
                            {k: v for k, v in stored.metadata.items() if k.startswith("s3_")},
                        )
                    return stored, False
                # Same name, a newer version: it replaces the document (and, once indexed, its chunks). Given no
                # metadata of its own, it keeps the document's.
                document = _keeping_fields(document, stored)
                if not self._catalog.put_document_if(document, expected_sequencer=_sequencer_of(stored)):
                    log.info("%s changed while a new version was applied: deciding again", document.name)
                    continue
                stored = document
            self._workflow.start(
                WorkflowName.INGEST,
                {"workspace_id": document.workspace_id, "document_id": document.id},
                run_id=hashlib.sha256((run_key or idempotency_key).encode()).hexdigest()[:40],
            )
            return stored, True
        raise Conflict(f"{document.name!r} is being replaced concurrently; try again")

    def add_file(
        self, user: str, workspace_id: str, filename: str, data: bytes, *, metadata: Mapping[str, Any] | None = None
    ) -> tuple[Document, bool]:
        """Direct ingestion of a local file (CLI): stored, then registered like an upload. ``metadata``: the
        document's user metadata (None: a known document keeps its own); unchanged bytes with other metadata
        get it in place, without a new run."""
        self._access.readable(user, workspace_id)
        fields = None if metadata is None else validate_metadata(metadata)
        content_type = content_type_for(filename)
        if len(data) > self._max_bytes:
            raise PayloadTooLarge(f"{filename}: {len(data)} bytes is over the {self._max_bytes}-byte limit")
        key = UploadKey(workspace_id, document_id_for(workspace_id, filename), filename).key
        existing = self._catalog.get_document(workspace_id, document_id_for(workspace_id, filename))
        digest = content_hash(data)
        if existing and existing.content_hash == digest and existing.status is DocumentStatus.PROCESSED:
            return self._fields_changed(existing, fields), False
        if existing and existing.content_hash == digest and existing.status is DocumentStatus.ERROR:
            # The same bytes again after a failure: the idempotency key is taken, so this is an explicit retry.
            return self._restart(self._fields_changed(existing, fields)), True
        info = self._blobs.put(key, data, content_type=content_type)
        document = Document(
            id=document_id_for(workspace_id, filename),
            workspace_id=workspace_id,
            name=filename,
            source=DocumentSource.FILE,
            blob_key=info.key,
            content_type=content_type,
            size_bytes=len(data),
            content_hash=digest,
            metadata=_with_fields({}, fields),
        )
        stored, started = self._register(document, idempotency_key=f"{key}#{digest}")
        return (stored, started) if started else (self._same_content_fields(stored, document, fields), started)

    # ------------------------------------------------------------------ text, Q&A, website
    def add_text(
        self, user: str, workspace_id: str, *, title: str, text: str, metadata: Mapping[str, Any] | None = None
    ) -> Document:
        """``metadata``: user metadata (None: a known document keeps its own)."""
        name = title.strip() or f"text-{content_hash(text)[:12]}"
        return self._add_inline(user, workspace_id, name, text, DocumentSource.TEXT, {}, metadata)

    def add_qna(
        self,
        user: str,
        workspace_id: str,
        *,
        question: str,
        answer: str,
        title: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        name = title.strip() or f"qna-{content_hash(question)[:12]}"
        body = f"Question: {question.strip()}\n\nAnswer: {answer.strip()}"
        system = {"question": question.strip()}
        return self._add_inline(user, workspace_id, name, body, DocumentSource.QNA, system, metadata)

    def add_website(
        self, user: str, workspace_id: str, options: dict[str, Any], *, metadata: Mapping[str, Any] | None = None
    ) -> Document:
        """A crawl; ``metadata`` is set on the crawl's document and on every page it indexes."""
        self._access.readable(user, workspace_id)
        fields = None if metadata is None else validate_metadata(metadata)
        url = str(options["url"])
        spec = json.dumps(options, sort_keys=True)
        doc_id = document_id_for(workspace_id, f"website:{url}")
        key = document_prefix(workspace_id, doc_id) + "crawl.json"
        info = self._blobs.put(key, spec.encode(), content_type="application/json")
        document = Document(
            id=doc_id,
            workspace_id=workspace_id,
            name=url,
            source=DocumentSource.WEBSITE,
            blob_key=key,
            content_type="application/json",
            size_bytes=info.size,
            content_hash=content_hash(spec),
            metadata=_with_fields({"url": url}, fields),
        )
        stored, started = self._register(document, idempotency_key=f"{key}#{content_hash(spec)}#{_now_bucket()}")
        if started:
            return stored
        site = self._same_content_fields(stored, document, fields)
        if site is not stored:  # the same crawl with other metadata: its pages get it too
            for page in self._children(site):
                self._store_fields(page, _replaced_by(user_metadata(site.metadata)))
        return site

    def _add_inline(
        self,
        user: str,
        workspace_id: str,
        name: str,
        text: str,
        source: DocumentSource,
        system: dict[str, Any],
        metadata: Mapping[str, Any] | None,
    ) -> Document:
        self._access.readable(user, workspace_id)
        fields = None if metadata is None else validate_metadata(metadata)
        data = text.encode("utf-8")
        if len(data) > self._max_bytes:
            raise PayloadTooLarge(f"{name}: text is over the {self._max_bytes}-byte limit")
        doc_id = document_id_for(workspace_id, f"{source.value}:{name}")
        key = document_prefix(workspace_id, doc_id) + "content.md"
        self._blobs.put(key, data, content_type="text/markdown")
        digest = content_hash(data)
        document = Document(
            id=doc_id,
            workspace_id=workspace_id,
            name=name,
            source=source,
            blob_key=key,
            content_type="text/markdown",
            size_bytes=len(data),
            content_hash=digest,
            metadata=_with_fields(system, fields),
        )
        stored, started = self._register(document, idempotency_key=f"{key}#{digest}")
        return stored if started else self._same_content_fields(stored, document, fields)

    # ------------------------------------------------------------------ user metadata
    def set_metadata(self, user: str, workspace_id: str, document_id: str, changes: Mapping[str, Any]) -> Document:
        """Apply a JSON merge patch (a None value removes the key) to a document's user metadata: the catalog,
        then its chunks in place (``VectorIndex.set_document_fields``, no re-embedding). A website's pages get
        the same patch. 404 for another user's workspace or an unknown document; 422 naming the field; 409
        while the document is being processed (its chunks are being written from the metadata it had; one that
        starts while the edit is written gets it, see ``_store_fields``)."""
        document = self.get(user, workspace_id, document_id)
        patch = _checked_patch(changes)
        _check_settled(document)

        def patched(fields: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
            return merge_metadata(fields, patch)

        updated = self._store_fields(document, patched)
        for page in self._children(updated):
            self._store_fields(page, patched)
        return updated

    def _store_fields(self, document: Document, change: FieldsChange) -> Document:
        """Make ``change(its user metadata)`` the document's user metadata: the catalog, then every chunk of it
        in the index (in place).

        The catalog write is a compare-and-set on what was read, its upload version (sequencer) and its
        status, so nothing that changed either meanwhile is written over: not a new upload, not a retry,
        not a run's status step. The document is read again and ``change`` applied to what it is now. A
        run that started meanwhile keeps its status and gets the edit on its chunks: the pipeline reads
        the catalog's metadata again after writing them (``DocumentPipeline.match_catalog_fields``). A
        website's crawl is the exception (409): it gives each page it writes the site's metadata as it
        read it when it started, so the edit would miss those pages.
        """
        for _ in range(_STORE_ATTEMPTS):
            fields = change(user_metadata(document.metadata))
            updated = replace(document, metadata=_with_fields(document.metadata, fields), updated_at=utcnow())
            if self._catalog.put_document_if(
                updated, expected_sequencer=_sequencer_of(document), expected_status=document.status
            ):
                self._index.set_document_fields(document.workspace_id, document.id, fields)
                return updated
            fresh = self._catalog.get_document(document.workspace_id, document.id)
            if fresh is None:
                raise NotFound(f"document {document.id} not found")
            if fresh.source is DocumentSource.WEBSITE:
                _check_settled(fresh)
            document = fresh
        raise Conflict(f"“{document.name}” is being changed concurrently; try again")

    def _fields_changed(self, document: Document, fields: dict[str, MetadataValue] | None) -> Document:
        """``document`` with ``fields`` as its user metadata, stored when they differ (None: unchanged)."""
        if fields is None or (USER_METADATA_KEY in document.metadata and user_metadata(document.metadata) == fields):
            return document
        return self._store_fields(document, _replaced_by(fields))

    def _same_content_fields(
        self, stored: Document, requested: Document, fields: dict[str, MetadataValue] | None
    ) -> Document:
        """A request that registered nothing new: the same content again may still bring other metadata."""
        if stored.content_hash != requested.content_hash or stored.status in _UNSETTLED:
            return stored
        return self._fields_changed(stored, fields)

    def _children(self, document: Document) -> list[Document]:
        """A website's pages (other documents have none)."""
        if document.source is not DocumentSource.WEBSITE:
            return []
        return [d for d in self._all_documents(document.workspace_id) if d.parent_id == document.id]

    def _object_fields(self, key: str) -> dict[str, MetadataValue] | None:
        """The user metadata an uploaded object carries (None: it carries none, or none that is valid)."""
        info = self._blobs.head(key)
        raw = info.metadata.get(FIELDS_OBJECT_METADATA) if info is not None else None
        if raw is None:
            return None
        try:
            return validate_metadata(json.loads(raw))
        except (ValueError, InvalidInput) as exc:
            log.warning("upload %s carries metadata that is not valid (%s): ignored", key, exc)
            return None

    # ------------------------------------------------------------------ reading and deleting
    def list_documents(
        self,
        user: str,
        workspace_id: str,
        *,
        status: DocumentStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Document]:
        self._access.readable(user, workspace_id)
        return self._catalog.list_documents(workspace_id, status=status, limit=limit, cursor=cursor)

    def get(self, user: str, workspace_id: str, document_id: str) -> Document:
        self._access.readable(user, workspace_id)
        document = self._catalog.get_document(workspace_id, document_id)
        if document is None:
            raise NotFound(f"document {document_id} not found")
        return document

    def preview(self, user: str, workspace_id: str, document_id: str) -> DocumentPreview:
        """The start of a processed document's extracted text (stored by the pipeline; nothing is parsed here).

        404 for another user's workspace or an unknown document; 409 while it is not processed.
        """
        document = self.get(user, workspace_id, document_id)
        if document.status is DocumentStatus.ERROR:
            raise Conflict(f"“{document.name}” could not be processed, so it has no preview: see why, then retry it")
        if document.status is not DocumentStatus.PROCESSED:
            raise Conflict(f"“{document.name}” is not processed yet: a preview is shown once it is processed")
        try:
            stored = self._previews.get(preview_key(workspace_id, document_id)).decode("utf-8", errors="replace")
        except NotFound:
            return DocumentPreview(document, text="", truncated=False, available=False)
        return DocumentPreview(
            document, text=stored[:PREVIEW_CHARS], truncated=len(stored) > PREVIEW_CHARS, available=True
        )

    def source_link(self, user: str, workspace_id: str, document_id: str, *, page: int | None = None) -> SourceLink:
        """A link that opens the document itself: a presigned download of its file (at ``page`` for a PDF),
        or a web page's own address. 404 for another user's workspace, an unknown document, or one whose
        file is not stored (a website's crawl settings are not a source).
        """
        document = self.get(user, workspace_id, document_id)
        url = document.metadata.get("url")
        if document.source in (DocumentSource.WEBSITE, DocumentSource.WEBPAGE):
            if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
                return SourceLink(url=url, expires_at=None)
            raise NotFound(f"“{document.name}” has no web address to open")
        if document.blob_key is None:
            raise NotFound(f"“{document.name}” has no stored file to open")
        try:
            link = self._blobs.presigned_get(
                document.blob_key, expires_in=self._ttl, filename=source_filename(document)
            )
        except NotFound as exc:
            raise NotFound(f"the file of “{document.name}” is no longer stored") from exc
        is_pdf = (document.content_type or "").lower() == "application/pdf" or document.name.lower().endswith(".pdf")
        fragment = f"#page={page}" if page is not None and is_pdf else ""
        return SourceLink(url=link.url + fragment, expires_at=link.expires_at)

    def delete(self, user: str, workspace_id: str, document_id: str) -> None:
        self.get(user, workspace_id, document_id)
        self._workflow.start(
            WorkflowName.DELETE_DOCUMENT,
            {"workspace_id": workspace_id, "document_id": document_id},
            run_id=f"del-{document_id}-{_now_bucket()}",
        )

    # ------------------------------------------------------------------ after a failure or a crash
    def retry(self, user: str, workspace_id: str, document_id: str) -> Document:
        """Run the ingestion of a failed document again (or of one whose run never started).

        Allowed from ``error``, and from ``created`` once it has waited ``STUCK_CREATED_AFTER``; anything
        else is a 409. The document goes back to ``created`` and a new workflow run starts under a fresh
        run id (the upload's own run id, derived from key + etag, is spent: Step Functions keeps execution
        names for 90 days), so a retry is never swallowed as a duplicate start.
        """
        document = self.get(user, workspace_id, document_id)
        stuck = document.status is DocumentStatus.CREATED and document.updated_at <= utcnow() - STUCK_CREATED_AFTER
        if document.status is not DocumentStatus.ERROR and not stuck:
            raise Conflict(f"document {document.name!r} is {document.status.value}; only a failed document is retried")
        if document.parent_id is not None:
            raise Conflict(f"{document.name!r} is a page of a website crawl: retry the website instead")
        return self._restart(document)

    def resume_interrupted(self, *, before: datetime) -> list[Document]:
        """Re-run every document left ``created`` or ``processing`` before ``before`` (a process that died).

        Pages of a website crawl are not runs of their own: they end in ``error``, and the crawl, which is
        re-run, writes again every page it reaches.
        """
        stale = [
            d
            for status in (DocumentStatus.PROCESSING, DocumentStatus.CREATED)
            for d in self._catalog.stale_documents(status, before)
        ]
        for page in (d for d in stale if d.parent_id is not None):
            self._catalog.set_document_status(
                page.workspace_id, page.id, DocumentStatus.ERROR, reason="interrupted: the server stopped"
            )
        resumed = []
        for document in (d for d in stale if d.parent_id is None):
            try:
                resumed.append(self._restart(document))
            except NotFound:  # deleted meanwhile: nothing to resume
                continue
        return resumed

    def _restart(self, document: Document) -> Document:
        updated = self._catalog.set_document_status(document.workspace_id, document.id, DocumentStatus.CREATED)
        if updated is None:
            raise NotFound(f"document {document.id} not found")
        self._workflow.start(
            WorkflowName.INGEST,
            {"workspace_id": document.workspace_id, "document_id": document.id},
            run_id=f"retry-{document.id}-{new_id()}",
        )
        return updated

    def purge(self, workspace_id: str, document_id: str) -> None:
        """The deletion workflow's step for one document and its sub-documents. Safe to repeat.

        The catalog record goes first, then the sub-documents (listed only after the record is gone, so a
        crawl that is still running either sees its site gone or wrote pages this listing finds), then the
        chunks and the blobs. An ingestion still running re-checks the catalog after writing its chunks and
        deletes them again when the record is gone (``DocumentPipeline.discard_deleted`` has the
        interleavings); search drops chunks of documents the catalog does not hold in any case, so a purge
        that stops half-way (and is retried) never serves a deleted document.
        """
        self._catalog.delete_document(workspace_id, document_id)
        children = [d for d in self._all_documents(workspace_id) if d.parent_id == document_id]
        for child in children:
            self.purge(workspace_id, child.id)
        self._index.delete_document(workspace_id, document_id)
        self._blobs.delete_prefix(document_prefix(workspace_id, document_id))
        if self._previews is not self._blobs:
            self._previews.delete(preview_key(workspace_id, document_id))

    def _all_documents(self, workspace_id: str) -> list[Document]:
        out: list[Document] = []
        cursor: str | None = None
        while True:
            page = self._catalog.list_documents(workspace_id, limit=500, cursor=cursor)
            out.extend(page.items)
            if page.cursor is None:
                return out
            cursor = page.cursor


_UNSETTLED = (DocumentStatus.CREATED, DocumentStatus.PROCESSING)

#: How often an edit reads a document again after another write to it won (each needs a new upload or status
#: change landing between the edit's read and its write).
_STORE_ATTEMPTS = 3

#: What an edit does to a document's user metadata (applied again to a document read again).
FieldsChange = Callable[[dict[str, MetadataValue]], dict[str, MetadataValue]]


def _replaced_by(fields: dict[str, MetadataValue]) -> FieldsChange:
    """The change that makes ``fields`` the user metadata, whatever it was."""
    return lambda _current: dict(fields)


def _check_settled(document: Document) -> None:
    if document.status in _UNSETTLED:
        raise Conflict(f"“{document.name}” is {document.status.value}: its metadata can be edited once it is processed")


def _checked_patch(changes: Mapping[str, Any]) -> dict[str, MetadataValue | None]:
    """A merge patch: keys checked, values checked (None removes a key); 422 naming the field."""
    if not isinstance(changes, Mapping):
        raise InvalidInput("metadata: must be an object of key -> value (null removes a key)")
    for key in changes:
        validate_key(key)
    values = validate_metadata({k: v for k, v in changes.items() if v is not None})
    return {key: values.get(key) for key in changes}


def _fields_json(metadata: Mapping[str, Any]) -> str:
    """User metadata as it travels with an uploaded object: checked, ASCII JSON within S3's 2 KB."""
    text = json.dumps(validate_metadata(metadata), ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_UPLOAD_FIELDS_BYTES:
        raise InvalidInput(
            f"metadata: at most {MAX_UPLOAD_FIELDS_BYTES} bytes as JSON on an upload (it is kept with the file, "
            f"and S3 keeps 2 KB; got {len(text)}): set more with PATCH once it is uploaded"
        )
    return text


def _with_fields(metadata: Mapping[str, Any], fields: Mapping[str, MetadataValue] | None) -> dict[str, Any]:
    """``metadata`` (a document's) with ``fields`` as its user metadata; None leaves it as it is."""
    if fields is None:
        return dict(metadata)
    return {**metadata, USER_METADATA_KEY: dict(fields)}


def _keeping_fields(incoming: Document, stored: Document) -> Document:
    """A new version that brings no metadata of its own keeps the stored document's."""
    if USER_METADATA_KEY in incoming.metadata or USER_METADATA_KEY not in stored.metadata:
        return incoming
    return replace(incoming, metadata=_with_fields(incoming.metadata, user_metadata(stored.metadata)))


def _other_content(incoming: Document, stored: Document) -> bool:
    return incoming.content_hash != stored.content_hash


def _version_metadata(sequencer: str | None, event_time: datetime | None, version_id: str | None) -> dict[str, Any]:
    found = {
        SEQUENCER: sequencer.upper() if sequencer else None,
        EVENT_TIME: event_time.isoformat() if event_time else None,
        VERSION_ID: version_id,
    }
    return {name: value for name, value in found.items() if value}


def _now_bucket() -> int:
    """Seconds since the epoch: repeated explicit requests are new runs, a redelivered one within a second is not."""
    import time

    return int(time.time())
