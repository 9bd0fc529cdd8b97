"""Document use cases: upload URLs, registering uploads, text / Q&A / website sources, listing, deletion."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from quarry.errors import InvalidInput, NotFound, PayloadTooLarge
from quarry.filetypes import content_type_for
from quarry.models import Document, DocumentSource, DocumentStatus, content_hash
from quarry.ports import BlobStore, Catalog, Page, UploadTarget, VectorIndex, Workflow, WorkflowName
from quarry.services.access import WorkspaceAccess
from quarry.services.workspaces import workspace_prefix

__all__ = ["DocumentService", "UploadKey", "document_id_for", "document_prefix"]


def document_id_for(workspace_id: str, name: str) -> str:
    """A document's identity is its name within the workspace: the same name again replaces it."""
    return hashlib.sha256(f"{workspace_id}\x00{name}".encode()).hexdigest()[:32]


def document_prefix(workspace_id: str, document_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}documents/{document_id}/"


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
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._index = index
        self._workflow = workflow
        self._access = access
        self._max_bytes = max_upload_bytes
        self._ttl = upload_ttl_seconds

    # ------------------------------------------------------------------ files
    def upload_url(
        self, user: str, workspace_id: str, filename: str, content_type: str, size_bytes: int | None = None
    ) -> tuple[str, UploadTarget]:
        self._access.readable(user, workspace_id)
        canonical = content_type_for(filename, content_type)
        if size_bytes is not None and size_bytes > self._max_bytes:
            raise PayloadTooLarge(f"{filename}: {size_bytes} bytes is over the {self._max_bytes}-byte limit")
        key = UploadKey(workspace_id, document_id_for(workspace_id, filename), filename)
        target = self._blobs.presigned_post(
            key.key, max_bytes=self._max_bytes, content_type=canonical, expires_in=self._ttl
        )
        return key.document_id, target

    def register_upload(self, key: str, *, etag: str, size: int, content_type: str | None) -> tuple[Document, bool]:
        """An object landed in the upload store: register it (idempotent on key+etag) and start ingestion."""
        parsed = UploadKey.parse(key)
        if self._catalog.get_workspace(parsed.workspace_id) is None:
            raise NotFound(f"workspace {parsed.workspace_id} not found for upload {key}")
        document = Document(
            id=parsed.document_id,
            workspace_id=parsed.workspace_id,
            name=parsed.filename,
            source=DocumentSource.FILE,
            blob_key=key,
            content_type=content_type,
            size_bytes=size,
            content_hash=etag,
        )
        return self._register(document, idempotency_key=f"{key}#{etag}")

    def _register(self, document: Document, *, idempotency_key: str) -> tuple[Document, bool]:
        stored, created = self._catalog.register_document(document, idempotency_key=idempotency_key)
        if not created and stored.content_hash != document.content_hash:
            # Same name, new content: a new version replaces the document (and, once indexed, its chunks).
            self._catalog.put_document(document)
            stored, created = document, True
        if created:
            self._workflow.start(
                WorkflowName.INGEST,
                {"workspace_id": document.workspace_id, "document_id": document.id},
                run_id=hashlib.sha256(idempotency_key.encode()).hexdigest()[:40],
            )
        return stored, created

    def add_file(self, user: str, workspace_id: str, filename: str, data: bytes) -> tuple[Document, bool]:
        """Direct ingestion of a local file (CLI): stored, then registered like an upload."""
        self._access.readable(user, workspace_id)
        content_type = content_type_for(filename)
        if len(data) > self._max_bytes:
            raise PayloadTooLarge(f"{filename}: {len(data)} bytes is over the {self._max_bytes}-byte limit")
        key = UploadKey(workspace_id, document_id_for(workspace_id, filename), filename).key
        existing = self._catalog.get_document(workspace_id, document_id_for(workspace_id, filename))
        digest = content_hash(data)
        if existing and existing.content_hash == digest and existing.status is DocumentStatus.PROCESSED:
            return existing, False
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
        )
        return self._register(document, idempotency_key=f"{key}#{digest}")

    # ------------------------------------------------------------------ text, Q&A, website
    def add_text(self, user: str, workspace_id: str, *, title: str, text: str) -> Document:
        name = title.strip() or f"text-{content_hash(text)[:12]}"
        return self._add_inline(user, workspace_id, name, text, DocumentSource.TEXT, {})

    def add_qna(self, user: str, workspace_id: str, *, question: str, answer: str, title: str = "") -> Document:
        name = title.strip() or f"qna-{content_hash(question)[:12]}"
        body = f"Question: {question.strip()}\n\nAnswer: {answer.strip()}"
        return self._add_inline(user, workspace_id, name, body, DocumentSource.QNA, {"question": question.strip()})

    def add_website(self, user: str, workspace_id: str, options: dict[str, Any]) -> Document:
        self._access.readable(user, workspace_id)
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
            metadata={"url": url},
        )
        stored, _ = self._register(document, idempotency_key=f"{key}#{content_hash(spec)}#{_now_bucket()}")
        return stored

    def _add_inline(
        self, user: str, workspace_id: str, name: str, text: str, source: DocumentSource, metadata: dict[str, Any]
    ) -> Document:
        self._access.readable(user, workspace_id)
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
            metadata=metadata,
        )
        stored, _ = self._register(document, idempotency_key=f"{key}#{digest}")
        return stored

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

    def delete(self, user: str, workspace_id: str, document_id: str) -> None:
        self.get(user, workspace_id, document_id)
        self._workflow.start(
            WorkflowName.DELETE_DOCUMENT,
            {"workspace_id": workspace_id, "document_id": document_id},
            run_id=f"del-{document_id}-{_now_bucket()}",
        )

    def purge(self, workspace_id: str, document_id: str) -> None:
        """The deletion workflow's step for one document and its sub-documents. Safe to repeat."""
        children = [d for d in self._all_documents(workspace_id) if d.parent_id == document_id]
        for child in children:
            self.purge(workspace_id, child.id)
        self._index.delete_document(workspace_id, document_id)
        self._blobs.delete_prefix(document_prefix(workspace_id, document_id))
        self._catalog.delete_document(workspace_id, document_id)

    def _all_documents(self, workspace_id: str) -> list[Document]:
        out: list[Document] = []
        cursor: str | None = None
        while True:
            page = self._catalog.list_documents(workspace_id, limit=500, cursor=cursor)
            out.extend(page.items)
            if page.cursor is None:
                return out
            cursor = page.cursor


def _now_bucket() -> int:
    """Seconds since the epoch: repeated explicit requests are new runs, a redelivered one within a second is not."""
    import time

    return int(time.time())
