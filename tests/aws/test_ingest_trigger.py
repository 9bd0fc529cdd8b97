"""Upload -> S3 event on SQS -> ingest_trigger -> DynamoDB document + Step Functions execution, all in moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from quarry.adapters.dynamodb import DynamoCatalog, create_tables
from quarry.adapters.s3 import S3BlobStore
from quarry.adapters.stepfunctions import StepFunctionsWorkflow
from quarry.local.handlers import LocalContext, load_handler
from quarry.metadata import USER_METADATA_KEY
from quarry.models import DocumentStatus, Workspace
from quarry.ports import WorkflowName
from quarry.services.documents import FIELDS_OBJECT_METADATA, UploadKey, document_id_for
from quarry.services.models_registry import ModelRegistry
from quarry.settings import Settings
from quarry.wiring import build_services, install_services, reset_services

pytestmark = pytest.mark.aws

BUCKET = "quarry-uploads-trigger"
PREFIX = "qtrig"
PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def aws(server_session: boto3.Session, moto_server: str) -> Iterator[dict[str, Any]]:
    s3 = server_session.client("s3", endpoint_url=moto_server, config=Config(signature_version="s3v4"))
    sqs = server_session.client("sqs", endpoint_url=moto_server)
    ddb = server_session.client("dynamodb", endpoint_url=moto_server)
    sfn = server_session.client("stepfunctions", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName="ingest-trigger")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    create_tables(ddb, PREFIX)
    machine = sfn.create_state_machine(
        name="quarry-ingest", definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    catalog = DynamoCatalog(PREFIX, client=ddb)
    services = build_services(
        Settings(data_dir=Path("/tmp/quarry-trigger-test")),
        overrides={
            "catalog": catalog,
            "blob_store": S3BlobStore(BUCKET, client=s3),
            "workflow": StepFunctionsWorkflow({WorkflowName.INGEST: machine}, client=sfn),
            "vector_index": object(),
            "models": ModelRegistry(),
        },
    )
    install_services(services)
    yield {
        "s3": s3,
        "sqs": sqs,
        "sfn": sfn,
        "queue_url": queue_url,
        "queue_arn": queue_arn,
        "machine": machine,
        "catalog": catalog,
        "services": services,
    }
    reset_services()


def lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Turn SQS ReceiveMessage output into the event Lambda's SQS poller delivers."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        messages += batch
        if messages and not batch:
            break
    return messages


def test_presigned_upload_event_registers_once_and_starts_one_execution(aws: dict[str, Any]) -> None:
    ws = Workspace(id="ws42", name="w", owner="alice", embedding_model="m", dimensions=4)
    aws["catalog"].put_workspace(ws)
    key = UploadKey(ws.id, document_id_for(ws.id, "leave policy.txt"), "leave policy.txt").key
    target = aws["services"].adapters.blob_store.presigned_post(
        key, max_bytes=1000, content_type="text/plain", expires_in=300
    )
    upload = httpx.post(target.url, data=target.fields, files={"file": ("x", b"27 days of leave", "text/plain")})
    assert upload.status_code == 204, upload.text

    messages = receive_all(aws["sqs"], aws["queue_url"])
    event = lambda_event(messages, aws["queue_arn"])
    event["Records"].append(event["Records"][0] | {"messageId": "garbage", "body": "not an S3 event"})
    handler = load_handler("ingest_trigger")

    result = handler(event, LocalContext("ingest_trigger"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "garbage"}]}
    doc_id = document_id_for(ws.id, "leave policy.txt")
    document = aws["catalog"].get_document(ws.id, doc_id)
    assert document is not None and document.name == "leave policy.txt"
    assert document.status is DocumentStatus.CREATED and document.size_bytes == len(b"27 days of leave")
    executions = aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]
    assert len(executions) == 1
    started = aws["sfn"].describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(started["input"]) == {"workspace_id": ws.id, "document_id": doc_id, "workflow": "ingest"}

    handler(lambda_event(messages, aws["queue_arn"]), LocalContext("ingest_trigger"))  # redelivery
    assert len(aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]) == 1


def test_the_metadata_of_a_presigned_upload_travels_with_the_object_to_the_document(aws: dict[str, Any]) -> None:
    """``upload_url`` signs the user metadata into the POST as ``x-amz-meta-quarry-fields``; S3 keeps it with the
    object, and the ObjectCreated event's registration reads it back onto the document."""
    ws = Workspace(id="ws43", name="w", owner="alice", embedding_model="m", dimensions=4)
    aws["catalog"].put_workspace(ws)
    documents = aws["services"].documents
    doc_id, target = documents.upload_url(
        "alice", ws.id, "review.txt", "text/plain", metadata={"product": "X", "rating": 4, "day": "2024-05-01"}
    )
    upload = httpx.post(
        target.url, data=target.fields, files={"file": ("x", b"Great kettle, boils fast.", "text/plain")}
    )
    assert upload.status_code == 204, upload.text
    head = aws["s3"].head_object(Bucket=BUCKET, Key=target.key)
    assert json.loads(head["Metadata"][FIELDS_OBJECT_METADATA]) == {"product": "X", "rating": 4, "day": "2024-05-01"}

    messages = receive_all(aws["sqs"], aws["queue_url"])
    load_handler("ingest_trigger")(lambda_event(messages, aws["queue_arn"]), LocalContext("ingest_trigger"))

    document = aws["catalog"].get_document(ws.id, doc_id)
    assert document is not None and document.status is DocumentStatus.CREATED
    assert document.metadata[USER_METADATA_KEY] == {"product": "X", "rating": 4, "day": "2024-05-01"}
