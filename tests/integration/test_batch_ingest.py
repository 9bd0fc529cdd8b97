"""The Batch ingestion job against S3 (moto) and the real embedded Postgres, run as the state machine runs it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from quarry.models import Document, DocumentSource, DocumentStatus, SearchRequest
from quarry.services.documents import UploadKey, document_id_for
from quarry.services.models_registry import ModelRegistry
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import Services, build_services
from tests.sample_files import make_docx, make_pdf

pytestmark = pytest.mark.integration

UPLOADS, PROCESSING = "quarry-uploads", "quarry-processing"
HTML = (
    b"<html><head><title>Harbour rules</title></head><body><h1>Harbour rules</h1>"
    b"<p>Boats must keep below five knots inside the harbour wall.</p></body></html>"
)


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory, pg_database: str) -> Iterator[Settings]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=UPLOADS)
        s3.create_bucket(Bucket=PROCESSING)
        yield Settings(
            data_dir=tmp_path_factory.mktemp("batch"),
            pg_dsn=pg_database,
            blob_store="s3",
            upload_bucket=UPLOADS,
            processing_bucket=PROCESSING,
            aws_region="us-east-1",
            workflow="local",
            local_workflow_background=False,
        )


@pytest.fixture(scope="module")
def services(aws_env: Settings, model_registry: ModelRegistry) -> Iterator[Services]:
    built = build_services(aws_env, overrides={"models": model_registry})
    yield built
    built.close()


def put_upload(services: Services, ws_id: str, name: str, data: bytes) -> str:
    """The object lands in the upload bucket and is registered as ingest_trigger does (without the workflow)."""
    key = UploadKey(ws_id, document_id_for(ws_id, name), name).key
    info = services.adapters.blob_store.put(key, data)
    doc, _ = services.adapters.catalog.register_document(
        Document(
            id=document_id_for(ws_id, name),
            workspace_id=ws_id,
            name=name,
            source=DocumentSource.FILE,
            blob_key=key,
            size_bytes=info.size,
            content_hash=info.etag,
        ),
        idempotency_key=f"{key}#{info.etag}",
    )
    return doc.id


def run_job(services: Services, aws_env: Settings, ws_id: str, doc_id: str) -> int:
    """SetProcessing -> the container's entry point -> SetProcessed, like the state machine."""
    main = importlib.import_module("batch_ingest.main")
    services.ingestion_steps.set_processing(ws_id, doc_id)
    code = main.run({"QUARRY_JOB_WORKSPACE_ID": ws_id, "QUARRY_JOB_DOCUMENT_ID": doc_id}, aws_env)
    if code == 0:
        services.ingestion_steps.set_processed(ws_id, doc_id)
    else:
        services.ingestion_steps.set_error(ws_id, doc_id, "Essential container in task exited", keep_recorded=True)
    return code


def test_pdf_docx_and_html_become_chunks_and_audit_files(services: Services, aws_env: Settings) -> None:
    ws = services.workspaces.create("ops", WorkspaceSpec(name="harbour", chunk_size=64, chunk_overlap=8))
    files = {
        "tides.pdf": make_pdf([["Spring tides reach 4.2 metres at the harbour mouth."]]),
        "birds.docx": make_docx(),
        "rules.html": HTML,
    }
    for name, data in files.items():
        doc_id = put_upload(services, ws.id, name, data)
        assert run_job(services, aws_env, ws.id, doc_id) == 0
        doc = services.adapters.catalog.get_document(ws.id, doc_id)
        assert doc is not None and doc.status is DocumentStatus.PROCESSED, doc
        assert doc.chunk_count == services.adapters.vector_index.count(ws.id, document_id=doc_id) > 0
        audit = boto3.client("s3", region_name="us-east-1").get_object(
            Bucket=PROCESSING, Key=f"workspaces/{ws.id}/documents/{doc_id}/chunks.jsonl"
        )
        assert audit["Body"].read().count(b"\n") + 1 == doc.chunk_count
    request = SearchRequest(workspace_id=ws.id, query="how high are spring tides", top_k=1)
    hit = services.search.search_workspace(ws, request).hits[0]
    assert "4.2 metres" in hit.chunk.text


def test_a_retried_job_leaves_one_set_of_chunks(services: Services, aws_env: Settings) -> None:
    ws = services.workspaces.create("ops", WorkspaceSpec(name="retry", chunk_size=32, chunk_overlap=0))
    text = "\n\n".join(f"Rule {i}: moor only at the posts numbered {i} on the east quay." for i in range(10))
    doc_id = put_upload(services, ws.id, "rules.txt", text.encode())
    assert run_job(services, aws_env, ws.id, doc_id) == 0
    once = services.adapters.vector_index.count(ws.id, document_id=doc_id)
    assert run_job(services, aws_env, ws.id, doc_id) == 0
    assert services.adapters.vector_index.count(ws.id, document_id=doc_id) == once > 1


def test_a_corrupt_file_ends_in_error_with_its_reason(services: Services, aws_env: Settings) -> None:
    ws = services.workspaces.create("ops", WorkspaceSpec(name="corrupt"))
    doc_id = put_upload(services, ws.id, "broken.docx", b"PK\x03\x04 not really a zip archive")
    assert run_job(services, aws_env, ws.id, doc_id) == 1
    doc = services.adapters.catalog.get_document(ws.id, doc_id)
    assert doc is not None and doc.status is DocumentStatus.ERROR
    assert doc.status_reason and doc.status_reason.startswith("This file is damaged")  # the job's sentence
    assert "Essential container" not in doc.status_reason  # the job's own reason survives SetError
    assert services.adapters.vector_index.count(ws.id, document_id=doc_id) == 0


def test_missing_job_ids_exit_with_a_usage_error(aws_env: Settings) -> None:
    main = importlib.import_module("batch_ingest.main")
    assert main.run({}, aws_env) == 2
