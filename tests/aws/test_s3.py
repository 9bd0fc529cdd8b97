"""S3BlobStore on moto: objects, encryption, prefix deletes, and a real browser-style presigned POST."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from quarry.adapters.s3 import S3BlobStore, parse_object_created
from quarry.errors import InvalidInput, NotFound, QuarryError
from quarry.ports import BlobStore

from .conftest import SECRET_KEY
from .post_policy import check_post

pytestmark = pytest.mark.aws

BUCKET = "quarry-uploads"
SIGV4 = Config(signature_version="s3v4")  # what S3BlobStore gives the clients it makes


@pytest.fixture
def s3(session: boto3.Session) -> Any:
    client = session.client("s3", config=SIGV4)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def store(s3: Any) -> S3BlobStore:
    return S3BlobStore(BUCKET, client=s3)


def test_is_a_blob_store(store: S3BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_put_get_head_delete_round_trip(store: S3BlobStore, s3: Any) -> None:
    info = store.put("ws1/documents/d1/a.txt", b"hello world", content_type="text/plain")

    assert (info.key, info.size, info.content_type) == ("ws1/documents/d1/a.txt", 11, "text/plain")
    assert info.etag and '"' not in info.etag
    assert store.get("ws1/documents/d1/a.txt") == b"hello world"
    head = store.head("ws1/documents/d1/a.txt")
    assert head == info
    assert s3.head_object(Bucket=BUCKET, Key="ws1/documents/d1/a.txt")["ServerSideEncryption"] == "AES256"

    store.delete("ws1/documents/d1/a.txt")
    store.delete("ws1/documents/d1/a.txt")  # idempotent
    assert store.head("ws1/documents/d1/a.txt") is None
    with pytest.raises(NotFound):
        store.get("ws1/documents/d1/a.txt")


def test_kms_key_is_used_when_configured(session: boto3.Session, s3: Any) -> None:
    key_id = session.client("kms").create_key()["KeyMetadata"]["KeyId"]
    store = S3BlobStore(BUCKET, kms_key_id=key_id, client=s3)

    store.put("secret.bin", b"\x00\x01")

    head = s3.head_object(Bucket=BUCKET, Key="secret.bin")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)
    assert store.get("secret.bin") == b"\x00\x01"


def test_client_is_made_lazily_from_an_injected_session(session: boto3.Session, s3: Any) -> None:
    store = S3BlobStore(BUCKET, session=session)
    store.put("k", b"v")
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"v"


@pytest.mark.slow
def test_delete_prefix_pages_and_batches(store: S3BlobStore, s3: Any) -> None:
    for i in range(1003):
        s3.put_object(Bucket=BUCKET, Key=f"ws1/documents/d1/page-{i:04d}", Body=b"x")
    store.put("ws1/documents/d2/keep.txt", b"keep")
    store.put("ws1/documents/d10/keep.txt", b"keep too")
    batches: list[int] = []

    def count_batch(params: dict[str, Any], **_: Any) -> None:
        batches.append(len(params["Delete"]["Objects"]))

    s3.meta.events.register("provide-client-params.s3.DeleteObjects", count_batch)

    assert store.delete_prefix("ws1/documents/d1/") == 1003

    assert batches == [1000, 3]
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="ws1/")["Contents"]]
    assert remaining == ["ws1/documents/d10/keep.txt", "ws1/documents/d2/keep.txt"]
    assert store.delete_prefix("ws1/documents/d1/") == 0


def test_a_sigv2_client_cannot_presign(session: boto3.Session, s3: Any) -> None:
    legacy = session.client("s3", config=Config(signature_version="s3"))
    with pytest.raises(QuarryError, match="SigV2"):
        S3BlobStore(BUCKET, client=legacy).presigned_post("k", max_bytes=1, content_type="text/plain", expires_in=60)


def test_bad_keys_and_prefixes_are_refused(store: S3BlobStore) -> None:
    with pytest.raises(InvalidInput):
        store.delete_prefix("")
    with pytest.raises(InvalidInput):
        store.put("", b"x")
    with pytest.raises(InvalidInput):
        store.get("k" * 1025)


def test_presigned_post_policy_conditions(store: S3BlobStore) -> None:
    target = store.presigned_post("ws1/u/d1/report.pdf", max_bytes=1000, content_type="application/pdf", expires_in=60)

    policy = json.loads(base64.b64decode(target.fields["policy"]))
    conditions = policy["conditions"]
    assert {"bucket": BUCKET} in conditions
    assert {"key": "ws1/u/d1/report.pdf"} in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    assert ["content-length-range", 1, 1000] in conditions
    assert {"x-amz-server-side-encryption": "AES256"} in conditions
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert abs((expiration - target.expires_at).total_seconds()) < 5
    assert target.expires_at - datetime.now(UTC) <= timedelta(seconds=60)
    assert (target.key, target.max_bytes, target.fields["key"]) == ("ws1/u/d1/report.pdf", 1000, "ws1/u/d1/report.pdf")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"max_bytes": 0, "content_type": "text/plain", "expires_in": 60}, "max_bytes"),
        ({"max_bytes": 10, "content_type": " ", "expires_in": 60}, "content_type"),
        ({"max_bytes": 10, "content_type": "text/plain", "expires_in": 0}, "expires_in"),
        ({"max_bytes": 10, "content_type": "text/plain", "expires_in": 8 * 24 * 3600}, "expires_in"),
    ],
)
def test_presigned_post_rejects_bad_limits(store: S3BlobStore, kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        store.presigned_post("k", **kwargs)


# --------------------------------------------------------------------------- over real HTTP


@pytest.fixture
def http_store(server_session: boto3.Session, moto_server: str) -> tuple[S3BlobStore, Any]:
    client = server_session.client("s3", endpoint_url=moto_server, config=SIGV4)
    client.create_bucket(Bucket=BUCKET)
    return S3BlobStore(BUCKET, client=client), client


def _upload(url: str, fields: dict[str, str], data: bytes, *, filename: str = "f") -> httpx.Response:
    return httpx.post(url, data=fields, files={"file": (filename, data, "application/octet-stream")}, timeout=30)


def test_browser_upload_with_presigned_post(http_store: tuple[S3BlobStore, Any]) -> None:
    store, client = http_store
    target = store.presigned_post("ws1/u/d1/notes.txt", max_bytes=64, content_type="text/plain", expires_in=300)

    response = _upload(target.url, target.fields, b"twelve bytes")

    assert response.status_code == 204, response.text
    head = client.head_object(Bucket=BUCKET, Key="ws1/u/d1/notes.txt")
    assert head["ContentType"] == "text/plain"
    assert store.get("ws1/u/d1/notes.txt") == b"twelve bytes"


def test_presigned_post_refuses_oversized_empty_mistyped_and_tampered_uploads(
    http_store: tuple[S3BlobStore, Any],
) -> None:
    store, client = http_store
    target = store.presigned_post("ws1/u/d1/notes.txt", max_bytes=64, content_type="text/plain", expires_in=300)

    too_big = _upload(target.url, target.fields, b"x" * 65)
    empty = _upload(target.url, target.fields, b"")
    wrong_type = _upload(target.url, {**target.fields, "Content-Type": "text/html"}, b"<script>")
    other_key = _upload(target.url, {**target.fields, "key": "ws2/u/d9/evil.txt"}, b"x")
    bigger_policy = {**target.fields, "policy": target.fields["policy"].replace("A", "B", 1)}
    tampered = _upload(target.url, bigger_policy, b"x")

    assert (too_big.status_code, "EntityTooLarge") == (400, _code(too_big))
    assert (empty.status_code, "EntityTooSmall") == (400, _code(empty))
    assert (wrong_type.status_code, _code(wrong_type)) == (403, "AccessDenied")
    assert (other_key.status_code, _code(other_key)) == (403, "AccessDenied")
    assert (tampered.status_code, _code(tampered)) == (403, "SignatureDoesNotMatch")
    assert client.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_expired_presigned_post_is_refused(http_store: tuple[S3BlobStore, Any]) -> None:
    store, _ = http_store
    target = store.presigned_post("k", max_bytes=10, content_type="text/plain", expires_in=1)
    form = dict(target.fields)

    assert check_post(form, 5, bucket=BUCKET, secret_key=SECRET_KEY) is None
    later = datetime.now(UTC) + timedelta(seconds=2)
    assert check_post(form, 5, bucket=BUCKET, secret_key=SECRET_KEY, now=later) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )


def _code(response: httpx.Response) -> str:
    text = response.text
    return text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else text


def test_upload_notifies_sqs_with_an_object_created_record(
    http_store: tuple[S3BlobStore, Any], server_session: boto3.Session, moto_server: str
) -> None:
    store, client = http_store
    sqs = server_session.client("sqs", endpoint_url=moto_server)
    queue_url = sqs.create_queue(QueueName="ingest-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    target = store.presigned_post("ws1/u/d1/my notes.txt", max_bytes=64, content_type="text/plain", expires_in=300)
    assert _upload(target.url, target.fields, b"hello").status_code == 204

    records = _drain_object_created(sqs, queue_url)

    assert len(records) == 1
    record = records[0]
    assert (record.bucket, record.key, record.size) == (BUCKET, "ws1/u/d1/my notes.txt", 5)
    assert record.etag == store.head("ws1/u/d1/my notes.txt").etag  # type: ignore[union-attr]
    assert record.event_name.startswith("ObjectCreated:")


def _drain_object_created(sqs: Any, queue_url: str) -> list[Any]:
    records: list[Any] = []
    deadline = time.monotonic() + 10
    while not records and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            records += parse_object_created(message["Body"])  # the s3:TestEvent parses to nothing
    return records


def test_object_created_parser_refuses_garbage() -> None:
    assert parse_object_created({"Event": "s3:TestEvent", "Service": "Amazon S3"}) == []
    with pytest.raises(InvalidInput):
        parse_object_created("not json")
    with pytest.raises(InvalidInput):
        parse_object_created({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]})
    assert parse_object_created({"Records": [{"eventName": "ObjectRemoved:Delete"}]}) == []
