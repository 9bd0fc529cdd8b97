"""Blobs as files under a directory, with S3-style presigned POST uploads and presigned GETs.

``presigned_post`` returns form fields carrying a base64 JSON policy (key,
content type, maximum size, expiry) and its HMAC-SHA256 signature; the local
runtime's upload endpoint calls ``verify_post`` before it stores anything, so
the same limits hold locally as in the S3 policy. ``presigned_get`` signs
(key, file name, expiry) into a URL of the local runtime's download endpoint,
which calls ``verify_get`` before it serves anything.

Object metadata (S3's ``x-amz-meta-*``) is kept in the blob's sidecar file; an upload's is signed into its
policy and must come back unchanged in the form, as S3 requires a condition for every form field.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urljoin

from quarry.adapters.blob_keys import (
    OBJECT_METADATA_PREFIX,
    check_key,
    check_object_metadata,
    check_prefix,
    object_metadata_fields,
)
from quarry.adapters.downloads import check_download
from quarry.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge, UnsupportedDocument
from quarry.ports import BlobInfo, DownloadLink, UploadTarget

__all__ = ["LocalBlobStore"]

_META_SUFFIX = ".meta.json"
_MAX_NAME_BYTES = 255  # one path segment is one file name on disk


def _download_claim(key: str, filename: str, expires: str) -> str:
    """What a download URL signs (prefixed, so an upload policy's signature never passes as one)."""
    return "\x00".join(("get", key, filename, expires))


def _is_sidecar(path: Path) -> bool:
    """The metadata file next to a blob, or a write in progress (see ``put``)."""
    return path.name.endswith(_META_SUFFIX) or (path.name.startswith(".") and path.name.endswith(".tmp"))


class LocalBlobStore:
    def __init__(self, root: Path, *, upload_url: str, secret: bytes, download_url: str | None = None) -> None:
        """``download_url``: the runtime's download endpoint (default: ``/downloads`` next to ``upload_url``)."""
        self._root = root
        self._upload_url = upload_url
        self._download_url = download_url or urljoin(upload_url, "/downloads")
        self._secret = secret

    # ------------------------------------------------------------------ paths
    def _path(self, key: str) -> Path:
        check_key(key)
        if any(len(segment.encode("utf-8")) > _MAX_NAME_BYTES for segment in key.split("/")):
            raise InvalidInput(f"blob key {key!r} has a segment longer than {_MAX_NAME_BYTES} bytes (a file name)")
        return self._root / key

    # ------------------------------------------------------------------ BlobStore
    def put(
        self, key: str, data: bytes, *, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> BlobInfo:
        path = self._path(key)
        kept = check_object_metadata(metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        meta = {"content_type": content_type, "etag": etag, "metadata": kept}
        path.with_name(path.name + _META_SUFFIX).write_text(json.dumps(meta))
        return BlobInfo(key=key, size=len(data), content_type=content_type, etag=etag, metadata=kept)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"blob not found: {key}")
        return path.read_bytes()

    def head(self, key: str) -> BlobInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        meta_path = path.with_name(path.name + _META_SUFFIX)
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return BlobInfo(
            key=key,
            size=path.stat().st_size,
            content_type=meta.get("content_type"),
            etag=meta.get("etag", ""),
            metadata=dict(meta.get("metadata") or {}),
        )

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + _META_SUFFIX).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix`` (a string prefix, as on S3)."""
        check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        base = self._root / folder if folder else self._root
        if not base.is_dir():
            return 0
        deleted = 0
        for path in sorted(base.rglob("*")):
            key = path.relative_to(self._root).as_posix()
            if path.is_file() and not _is_sidecar(path) and key.startswith(prefix):
                self.delete(key)
                deleted += 1
        folders = [p for p in base.rglob("*") if p.is_dir()] + ([base] if base != self._root else [])
        for directory in sorted(folders, reverse=True):  # deepest first
            if f"{directory.relative_to(self._root).as_posix()}/".startswith(prefix):
                with contextlib.suppress(OSError):  # not empty: it holds another prefix's blobs
                    directory.rmdir()
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
        self._path(key)  # validates
        kept = check_object_metadata(metadata)
        if max_bytes < 1:
            raise InvalidInput("max_bytes must be at least 1")
        if not content_type.strip():
            raise InvalidInput("content_type must not be empty")
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        policy = {
            "key": key,
            "content_type": content_type,
            "max_bytes": max_bytes,
            "expires": int(expires_at.timestamp()),
            "metadata": kept,
        }
        encoded = base64.b64encode(json.dumps(policy, sort_keys=True).encode()).decode()
        fields = {
            "key": key,
            "Content-Type": content_type,
            **{OBJECT_METADATA_PREFIX + name: value for name, value in kept.items()},
            "policy": encoded,
            "signature": self._sign(encoded),
        }
        return UploadTarget(url=self._upload_url, fields=fields, key=key, expires_at=expires_at, max_bytes=max_bytes)

    def presigned_get(self, key: str, *, expires_in: int, filename: str) -> DownloadLink:
        check_download(expires_in, filename)
        if not self._path(key).is_file():
            raise NotFound(f"blob not found: {key}")
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        expires = str(int(expires_at.timestamp()))
        query = {"key": key, "filename": filename, "expires": expires}
        signature = self._sign(_download_claim(key, filename, expires))
        return DownloadLink(
            url=f"{self._download_url}?{urlencode({**query, 'signature': signature})}", expires_at=expires_at
        )

    # ------------------------------------------------------------------ upload and download endpoint support
    def _sign(self, encoded_policy: str) -> str:
        return hmac.new(self._secret, encoded_policy.encode(), hashlib.sha256).hexdigest()

    def verify_get(self, params: dict[str, str]) -> tuple[str, str]:
        """Check a download URL's signature and expiry; returns (key, file name) to serve."""
        key, filename, expires = params.get("key", ""), params.get("filename", ""), params.get("expires", "")
        expected = self._sign(_download_claim(key, filename, expires))
        if not hmac.compare_digest(expected, params.get("signature", "")):
            raise Forbidden("download signature does not match")
        if not expires.isdigit() or time.time() > int(expires):
            raise Forbidden("download URL has expired")
        return key, filename

    def verify_post(self, fields: dict[str, str], *, size: int, content_type: str | None) -> str:
        """Check a form upload against its signed policy; returns the key to store under."""
        encoded, signature = fields.get("policy", ""), fields.get("signature", "")
        if not encoded or not hmac.compare_digest(self._sign(encoded), signature):
            raise Forbidden("upload policy signature does not match")
        policy = json.loads(base64.b64decode(encoded))
        if time.time() > policy["expires"]:
            raise Forbidden("upload URL has expired")
        if fields.get("key") != policy["key"]:
            raise Forbidden("key does not match the upload policy")
        if size > policy["max_bytes"]:
            raise PayloadTooLarge(f"file is {size} bytes; this upload allows at most {policy['max_bytes']}")
        if size == 0:
            raise InvalidInput("file is empty")
        declared = fields.get("Content-Type")
        if declared != policy["content_type"] or (content_type and content_type != policy["content_type"]):
            raise UnsupportedDocument(f"content type must be {policy['content_type']}")
        if object_metadata_fields(fields) != policy.get("metadata", {}):  # as S3: every field a signed condition
            raise Forbidden("the x-amz-meta-* fields do not match the upload policy")
        return str(policy["key"])
