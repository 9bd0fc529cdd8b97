from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from quarry.models import DocumentStatus
from quarry.protocol import (
    DocumentOut,
    DocumentPatchIn,
    DocumentPreviewOut,
    ListOut,
    SourceLinkOut,
    TextDocumentIn,
    UploadUrlIn,
    UploadUrlOut,
    WebsiteIn,
)
from routes.common import caller, created, no_content, services

router = APIGatewayRouter()


@router.post("/workspaces/<workspace_id>/documents/upload-url")
def upload_url(workspace_id: str, body: UploadUrlIn) -> UploadUrlOut:
    doc_id, target = services().documents.upload_url(
        caller(router), workspace_id, body.filename, body.content_type, body.size_bytes, metadata=body.metadata
    )
    return UploadUrlOut(
        document_id=doc_id,
        url=target.url,
        fields=target.fields,
        key=target.key,
        expires_at=target.expires_at,
        max_bytes=target.max_bytes,
    )


@router.post("/workspaces/<workspace_id>/documents")
def add_document(workspace_id: str, body: TextDocumentIn) -> Response[Any]:
    docs = services().documents
    user = caller(router)
    if body.type == "qna":
        assert body.question is not None and body.answer is not None
        doc = docs.add_qna(
            user, workspace_id, question=body.question, answer=body.answer, title=body.title, metadata=body.metadata
        )
    else:
        doc = docs.add_text(user, workspace_id, title=body.title, text=body.text or "", metadata=body.metadata)
    return created(DocumentOut.of(doc))


@router.post("/workspaces/<workspace_id>/websites")
def add_website(workspace_id: str, body: WebsiteIn) -> Response[Any]:
    options = body.model_dump(exclude={"metadata"})
    doc = services().documents.add_website(caller(router), workspace_id, options, metadata=body.metadata)
    return created(DocumentOut.of(doc))


@router.get("/workspaces/<workspace_id>/documents")
def list_documents(
    workspace_id: str,
    status: Annotated[DocumentStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> ListOut[DocumentOut]:
    page = services().documents.list_documents(caller(router), workspace_id, status=status, limit=limit, cursor=cursor)
    return ListOut[DocumentOut](items=[DocumentOut.of(d) for d in page.items], cursor=page.cursor)


@router.get("/workspaces/<workspace_id>/documents/<document_id>")
def get_document(workspace_id: str, document_id: str) -> DocumentOut:
    return DocumentOut.of(services().documents.get(caller(router), workspace_id, document_id))


@router.patch("/workspaces/<workspace_id>/documents/<document_id>")
def patch_document(workspace_id: str, document_id: str, body: DocumentPatchIn) -> DocumentOut:
    """Edit the document's user metadata (a JSON merge patch: null removes a key); its chunks follow in place.
    404 for another user's workspace, 422 naming the field, 409 while it is being processed."""
    return DocumentOut.of(services().documents.set_metadata(caller(router), workspace_id, document_id, body.metadata))


@router.get("/workspaces/<workspace_id>/documents/<document_id>/preview")
def preview_document(workspace_id: str, document_id: str) -> DocumentPreviewOut:
    """The start of a processed document's extracted text: 404 for another user's workspace, 409 unless processed."""
    preview = services().documents.preview(caller(router), workspace_id, document_id)
    return DocumentPreviewOut(
        document=DocumentOut.of(preview.document),
        text=preview.text,
        truncated=preview.truncated,
        available=preview.available,
    )


@router.get("/workspaces/<workspace_id>/documents/<document_id>/source")
def document_source(
    workspace_id: str, document_id: str, page: Annotated[int | None, Query(ge=1, le=1_000_000)] = None
) -> SourceLinkOut:
    """Where the document itself opens (at ``page`` for a PDF): 404 for another user's workspace or no stored file."""
    link = services().documents.source_link(caller(router), workspace_id, document_id, page=page)
    return SourceLinkOut(url=link.url, expires_at=link.expires_at)


@router.delete("/workspaces/<workspace_id>/documents/<document_id>")
def delete_document(workspace_id: str, document_id: str) -> Response[Any]:
    services().documents.delete(caller(router), workspace_id, document_id)
    return no_content()


@router.post("/workspaces/<workspace_id>/documents/<document_id>/retry")
def retry_document(workspace_id: str, document_id: str) -> Response[Any]:
    """Run a failed document's ingestion again: 202 with the document back in ``created``; 409 unless it failed."""
    doc = services().documents.retry(caller(router), workspace_id, document_id)
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=DocumentOut.of(doc).model_dump_json()
    )
