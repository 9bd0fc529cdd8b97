"""Amazon S3 behind ``ports.BlobStore``, plus the parser for S3 ``ObjectCreated`` notifications.

Every write asks for server-side encryption: SSE-S3 (AES256) by default, SSE-KMS
when a key is given; presigned POSTs carry the same choice as signed fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import error_code
from quarry.adapters.blob_keys import OBJECT_METADATA_PREFIX, check_key, check_object_metadata, check_prefix
from quarry.adapters.downloads import check_download, inline_disposition
from quarry.errors import InvalidInput, NotFound, QuarryError, UpstreamError
from quarry.ports import BlobInfo, DownloadLink, UploadTarget

__all__ = ["ObjectCreated", "S3BlobStore", "parse_object_created"]

_DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit
_MISSING = {"NoSuchKey", "404", "NotFound"}
_S3_CONFIG = Config(signature_version="s3v4")


class S3BlobStore:
    """One bucket. Keys are used as given; callers namespace them (``{workspace}/{document}/...``)."""

    def __init__(
        self,
        bucket: str,
        *,
        kms_key_id: str | None = None,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3BlobStore needs a bucket name")
        self.bucket = bucket
        self.kms_key_id = kms_key_id or None
        # SigV4 explicitly: botocore otherwise still presigns POSTs with SigV2 in us-east-1.
        self._client = LazyClient("s3", client=client, session=session, region=region, config=_S3_CONFIG)

    # ------------------------------------------------------------------ encryption

    def _sse_params(self) -> dict[str, str]:
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def _sse_fields(self) -> dict[str, str]:
        """The same choice as POST form fields (each must also be a policy condition)."""
        if self.kms_key_id:
            return {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": self.kms_key_id,
            }
        return {"x-amz-server-side-encryption": "AES256"}

    # ------------------------------------------------------------------ BlobStore

    def put(
        self, key: str, data: bytes, *, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> BlobInfo:
        check_key(key)
        kept = check_object_metadata(metadata)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, **self._sse_params()}
        if content_type:
            params["ContentType"] = content_type
        if kept:
            params["Metadata"] = kept
        try:
            response = self._client().put_object(**params)
        except ClientError as exc:
            raise _upstream("put", key, exc) from exc
        return BlobInfo(
            key=key, size=len(data), content_type=content_type, etag=_etag(response.get("ETag")), metadata=kept
        )

    def get(self, key: str) -> bytes:
        check_key(key)
        try:
            response = self._client().get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise NotFound(f"blob {key!r} not found") from exc
            raise _upstream("get", key, exc) from exc
        body: bytes = response["Body"].read()
        return body

    def head(self, key: str) -> BlobInfo | None:
        check_key(key)
        try:
            response = self._client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise _upstream("head", key, exc) from exc
        return BlobInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            content_type=response.get("ContentType"),
            etag=_etag(response.get("ETag")),
            metadata={str(name).lower(): str(value) for name, value in (response.get("Metadata") or {}).items()},
        )

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self._client().delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise _upstream("delete", key, exc) from exc

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; an empty prefix is refused (it would empty the bucket)."""
        check_prefix(prefix)
        deleted = 0
        batch: list[str] = []
        for key in self._keys(prefix):
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                deleted += self._delete_batch(batch)
                batch = []
        if batch:
            deleted += self._delete_batch(batch)
        return deleted

    def presigned_post(
        self,
        key: str,
        *,
        max_bytes: int,
        content_type: str,
        expires_in: int,
        metadata: Mapping[str, str] | None = None,
    ) -> UploadTarget:
        """A browser upload limited to exactly ``key``, 1..``max_bytes`` bytes and ``content_type``; ``metadata``
        becomes ``x-amz-meta-<name>`` fields, each an exact policy condition, so S3 stores it with the object."""
        check_key(key)
        kept = check_object_metadata(metadata)
        if max_bytes < 1:
            raise InvalidInput("max_bytes must be at least 1")
        if not content_type.strip():
            raise InvalidInput("content_type must not be empty")
        if not 1 <= expires_in <= _MAX_PRESIGN_SECONDS:
            raise InvalidInput(f"expires_in must be between 1 and {_MAX_PRESIGN_SECONDS} seconds")
        meta_fields = {OBJECT_METADATA_PREFIX + name: value for name, value in kept.items()}
        fields = {"Content-Type": content_type, **self._sse_fields(), **meta_fields}
        conditions: list[Any] = [
            {"Content-Type": content_type},
            ["content-length-range", 1, max_bytes],
            *({name: value} for name, value in self._sse_fields().items()),
            *({name: value} for name, value in meta_fields.items()),
        ]
        # boto3 adds the {"bucket": ...} and exact {"key": ...} conditions itself.
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        try:
            post = self._client().generate_presigned_post(
                Bucket=self.bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            )
        except ClientError as exc:  # pragma: no cover - signing is local; kept for credential errors
            raise _upstream("presign", key, exc) from exc
        if "x-amz-signature" not in post["fields"]:
            raise QuarryError("the injected S3 client presigns with SigV2: give it Config(signature_version='s3v4')")
        return UploadTarget(
            url=post["url"],
            fields={name: str(value) for name, value in post["fields"].items()},
            key=key,
            expires_at=expires_at,
            max_bytes=max_bytes,
        )

    def presigned_get(self, key: str, *, expires_in: int, filename: str) -> DownloadLink:
        """A GET URL for ``key`` that S3 answers with ``filename`` in its Content-Disposition."""
        check_key(key)
        check_download(expires_in, filename)
        if self.head(key) is None:  # a URL for nothing would answer the browser with S3's XML error
            raise NotFound(f"blob {key!r} not found")
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        params = {"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": inline_disposition(filename)}
        try:
            url = self._client().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        except ClientError as exc:  # pragma: no cover - signing is local; kept for credential errors
            raise _upstream("presign", key, exc) from exc
        return DownloadLink(url=str(url), expires_at=expires_at)

    # ------------------------------------------------------------------ helpers

    def _keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client().get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]
        except ClientError as exc:
            raise _upstream("list", prefix, exc) from exc

    def _delete_batch(self, keys: list[str]) -> int:
        try:
            response = self._client().delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
            )
        except ClientError as exc:
            raise _upstream("delete", keys[0], exc) from exc
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise UpstreamError(
                f"S3 could not delete {len(errors)} of {len(keys)} objects "
                f"(first: {first.get('Key')!r}: {first.get('Code')} {first.get('Message')})"
            )
        return len(keys)


def _etag(raw: str | None) -> str:
    return (raw or "").strip('"')


def _upstream(action: str, key: str, exc: ClientError) -> UpstreamError:
    return UpstreamError(f"S3 {action} of {key!r} failed: {error_code(exc)}")


# --------------------------------------------------------------------------- notifications


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    """One ``s3:ObjectCreated:*`` record: what ``ingest_trigger`` needs to register a document."""

    bucket: str
    key: str
    size: int
    etag: str
    event_name: str
    event_time: datetime
    sequencer: str | None = None  # orders the events of one key: see ``quarry.services.documents.sequencer_after``
    version_id: str | None = None


def parse_object_created(body: str | Mapping[str, Any]) -> list[ObjectCreated]:
    """Records of an S3 notification (an SQS message body, or its parsed JSON).

    The ``s3:TestEvent`` S3 sends when a notification is configured, and non-create
    records, give an empty list; anything that is not an S3 notification raises
    ``InvalidInput``. Keys arrive URL-encoded (spaces as ``+``) and are decoded here.
    """
    event = _load(body)
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidInput("not an S3 event notification: no Records")
    return [
        _object_created(record) for record in records if str(record.get("eventName", "")).startswith("ObjectCreated:")
    ]


def _load(body: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(body, str):
        return body
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"S3 event body is not JSON: {exc.msg}") from exc
    if not isinstance(event, dict):
        raise InvalidInput("S3 event body is not a JSON object")
    return event


def _object_created(record: Mapping[str, Any]) -> ObjectCreated:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        return ObjectCreated(
            bucket=str(s3["bucket"]["name"]),
            key=unquote_plus(str(obj["key"])),
            size=int(obj.get("size", 0)),
            etag=str(obj.get("eTag", "")),
            event_name=str(record["eventName"]),
            event_time=datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00")),
            sequencer=str(obj["sequencer"]) if obj.get("sequencer") else None,
            version_id=str(obj["versionId"]) if obj.get("versionId") else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed S3 event record: {exc!r}") from exc
