"""What every ``BlobStore`` must do. Supply two fixtures:

- ``blob_store``: the store, empty or holding only other tests' keys;
- ``post_upload``: ``(url, fields, data) -> HTTP status``, a browser's multipart POST of ``fields`` plus
  ``data`` as the ``file`` part to ``url`` (an ``UploadTarget``), through whatever checks the upload
  policy in that runtime (the local gateway's ``/uploads``; S3's POST-policy rules);
- ``fetch``: ``url -> (HTTP status, headers, body)``, a browser's GET of a presigned download URL
  through whatever serves it (the local gateway's ``/downloads``; S3).

Keys follow one rule on every store (``quarry.adapters.blob_keys``); a refused upload answers 4xx and
stores nothing; ``delete_prefix`` is a plain string prefix, as on S3. Metadata kept with an object (S3's
``x-amz-meta-*``) comes back from ``head``, from a ``put`` and from a presigned upload alike; an upload form whose
metadata differs from what was signed is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import unquote

import pytest

from quarry.adapters.blob_keys import OBJECT_METADATA_PREFIX
from quarry.errors import InvalidInput, NotFound
from quarry.models import new_id, utcnow
from quarry.ports import BlobStore, UploadTarget

PostUpload = Callable[[str, Mapping[str, str], bytes], int]
Fetch = Callable[[str], tuple[int, Mapping[str, str], bytes]]

BAD_KEYS = ["", "/absolute/key", "a/../b", "../escape", "a/./b", "a//b", "trailing/", "k" * 1025, "nul\x00byte"]


def _accepted(status: int) -> bool:
    return 200 <= status < 300


def _refused(status: int) -> bool:
    return 400 <= status < 500


class BlobStoreContract:
    @pytest.fixture
    def base(self) -> str:
        """A fresh key prefix per test: stores may be shared."""
        return f"contract-{new_id()[:12]}/"

    def _target(self, store: BlobStore, key: str, *, max_bytes: int = 64) -> UploadTarget:
        return store.presigned_post(key, max_bytes=max_bytes, content_type="text/plain", expires_in=300)

    # ------------------------------------------------------------------ objects

    def test_is_a_blob_store(self, blob_store: BlobStore) -> None:
        assert isinstance(blob_store, BlobStore)

    def test_put_get_head_round_trip(self, blob_store: BlobStore, base: str) -> None:
        key = f"{base}documents/d1/notes.txt"
        info = blob_store.put(key, b"hello world", content_type="text/plain")

        assert (info.key, info.size, info.content_type) == (key, 11, "text/plain")
        assert info.etag
        assert blob_store.get(key) == b"hello world"
        assert blob_store.head(key) == info

    def test_binary_and_untyped_blobs_round_trip(self, blob_store: BlobStore, base: str) -> None:
        data = bytes(range(256)) * 4
        info = blob_store.put(f"{base}raw.bin", data)
        head = blob_store.head(f"{base}raw.bin")

        assert blob_store.get(f"{base}raw.bin") == data
        assert head is not None and (head.size, head.etag) == (1024, info.etag)

    def test_put_replaces_the_blob(self, blob_store: BlobStore, base: str) -> None:
        key = f"{base}doc.txt"
        first = blob_store.put(key, b"first version", content_type="text/plain")
        second = blob_store.put(key, b"second", content_type="text/markdown")

        assert blob_store.get(key) == b"second"
        assert blob_store.head(key) == second
        assert (second.size, second.content_type) == (6, "text/markdown")
        assert second.etag != first.etag

    def test_missing_blobs(self, blob_store: BlobStore, base: str) -> None:
        with pytest.raises(NotFound):
            blob_store.get(f"{base}missing.txt")
        assert blob_store.head(f"{base}missing.txt") is None
        blob_store.delete(f"{base}missing.txt")  # idempotent

    def test_delete_is_idempotent_and_leaves_the_neighbours(self, blob_store: BlobStore, base: str) -> None:
        blob_store.put(f"{base}gone.txt", b"x")
        blob_store.put(f"{base}kept.txt", b"y")

        blob_store.delete(f"{base}gone.txt")
        blob_store.delete(f"{base}gone.txt")

        assert blob_store.head(f"{base}gone.txt") is None
        with pytest.raises(NotFound):
            blob_store.get(f"{base}gone.txt")
        assert blob_store.get(f"{base}kept.txt") == b"y"

    def test_delete_prefix_removes_everything_under_it(self, blob_store: BlobStore, base: str) -> None:
        for key in ("d1/a.txt", "d1/nested/b.txt", "d1/nested/deeper/c.txt", "d10/kept.txt", "d2/kept.txt"):
            blob_store.put(f"{base}{key}", key.encode())

        assert blob_store.delete_prefix(f"{base}d1/") == 3

        assert blob_store.head(f"{base}d1/nested/b.txt") is None
        assert blob_store.get(f"{base}d10/kept.txt") == b"d10/kept.txt"
        assert blob_store.get(f"{base}d2/kept.txt") == b"d2/kept.txt"
        assert blob_store.delete_prefix(f"{base}d1/") == 0
        assert blob_store.delete_prefix(f"{base}nothing-here/") == 0

    def test_delete_prefix_is_a_string_prefix(self, blob_store: BlobStore, base: str) -> None:
        """As on S3: without the trailing slash, ``d1`` also matches ``d10/...`` and ``d1.txt``."""
        for key in ("d1/a.txt", "d10/b.txt", "d1.txt", "d2/c.txt"):
            blob_store.put(f"{base}{key}", b"x")

        assert blob_store.delete_prefix(f"{base}d1") == 3

        assert [key for key in ("d1/a.txt", "d10/b.txt", "d1.txt", "d2/c.txt") if blob_store.head(f"{base}{key}")] == [
            "d2/c.txt"
        ]

    def test_bad_keys_are_refused_everywhere(self, blob_store: BlobStore, base: str) -> None:
        for key in BAD_KEYS:
            with pytest.raises(InvalidInput):
                blob_store.put(key, b"x")
            with pytest.raises(InvalidInput):
                blob_store.get(key)
            with pytest.raises(InvalidInput):
                blob_store.head(key)
            with pytest.raises(InvalidInput):
                blob_store.delete(key)
            with pytest.raises(InvalidInput):
                self._target(blob_store, key)
        for prefix in ("", "/", "/absolute/", "a/../", "a//"):
            with pytest.raises(InvalidInput):
                blob_store.delete_prefix(prefix)

    def test_keys_at_the_limits_are_taken(self, blob_store: BlobStore, base: str) -> None:
        long_key = base + "/".join(["s" * 200] * 5)
        long_key = long_key[:1024].rstrip("/")
        odd_key = f"{base}ünïcode name (1) + [x]&y=z.txt"

        for key in (long_key, odd_key):
            blob_store.put(key, b"ok")
            assert blob_store.get(key) == b"ok"
        assert blob_store.delete_prefix(base) == 2

    # ------------------------------------------------------------------ metadata kept with the object

    def test_metadata_put_with_an_object_comes_back_from_head(self, blob_store: BlobStore, base: str) -> None:
        key = f"{base}documents/d1/a.txt"
        meta = {"quarry-fields": '{"product":"X","tags":["a b"]}', "origin": "cli"}

        info = blob_store.put(key, b"with metadata", content_type="text/plain", metadata=meta)

        assert info.metadata == meta
        assert blob_store.head(key) == info
        replaced = blob_store.put(key, b"without")  # a new object has only its own metadata
        head = blob_store.head(key)
        assert head is not None and head.metadata == {} == replaced.metadata

    @pytest.mark.parametrize(
        "metadata",
        [{"Upper": "x"}, {"under_score": "x"}, {"": "x"}, {"fields": "caf\u00e9 é"}, {"fields": "line\nbreak"}],
        ids=["upper case name", "underscore", "empty name", "non-ASCII value", "control character"],
    )
    def test_metadata_every_store_cannot_keep_is_refused(
        self, blob_store: BlobStore, base: str, metadata: dict[str, str]
    ) -> None:
        with pytest.raises(InvalidInput):
            blob_store.put(f"{base}m.txt", b"x", metadata=metadata)
        with pytest.raises(InvalidInput):
            blob_store.presigned_post(
                f"{base}m.txt", max_bytes=10, content_type="text/plain", expires_in=60, metadata=metadata
            )
        with pytest.raises(InvalidInput):
            blob_store.put(f"{base}m.txt", b"x", metadata={"big": "x" * 2100})
        assert blob_store.head(f"{base}m.txt") is None

    # ------------------------------------------------------------------ presigned POST

    def test_presigned_post_describes_the_upload(self, blob_store: BlobStore, base: str) -> None:
        key = f"{base}documents/d1/report.pdf"
        target = blob_store.presigned_post(key, max_bytes=1000, content_type="application/pdf", expires_in=60)

        assert (target.key, target.max_bytes) == (key, 1000)
        assert target.url.startswith(("http://", "https://"))
        assert target.fields["key"] == key
        assert target.fields["Content-Type"] == "application/pdf"

    def test_a_presigned_post_is_honoured(self, blob_store: BlobStore, post_upload: PostUpload, base: str) -> None:
        key = f"{base}documents/d1/notes.txt"
        target = self._target(blob_store, key)

        status = post_upload(target.url, target.fields, b"twelve bytes")

        assert _accepted(status), status
        assert blob_store.get(key) == b"twelve bytes"
        head = blob_store.head(key)
        assert head is not None and (head.size, head.content_type) == (12, "text/plain")

    def test_an_upload_of_exactly_max_bytes_is_stored(
        self, blob_store: BlobStore, post_upload: PostUpload, base: str
    ) -> None:
        key = f"{base}exact.txt"
        target = self._target(blob_store, key, max_bytes=16)

        assert _accepted(post_upload(target.url, target.fields, b"x" * 16))
        assert blob_store.get(key) == b"x" * 16

    def test_an_oversized_or_empty_upload_is_refused(
        self, blob_store: BlobStore, post_upload: PostUpload, base: str
    ) -> None:
        key = f"{base}limited.txt"
        target = self._target(blob_store, key, max_bytes=16)

        assert _refused(post_upload(target.url, target.fields, b"x" * 17))
        assert _refused(post_upload(target.url, target.fields, b""))
        assert blob_store.head(key) is None

    def test_a_tampered_upload_is_refused(self, blob_store: BlobStore, post_upload: PostUpload, base: str) -> None:
        key, elsewhere = f"{base}mine.txt", f"{base}someone-elses.txt"
        target = self._target(blob_store, key)
        policy = target.fields["policy"]
        tampered_policy = policy[:-8] + ("A" if policy[-8] != "A" else "B") + policy[-7:]

        attempts = {
            "another key": {**target.fields, "key": elsewhere},
            "another content type": {**target.fields, "Content-Type": "text/html"},
            "a changed policy": {**target.fields, "policy": tampered_policy},
        }
        for what, fields in attempts.items():
            assert _refused(post_upload(target.url, fields, b"<script>")), what

        assert blob_store.head(key) is None
        assert blob_store.head(elsewhere) is None

    def test_an_upload_keeps_the_signed_metadata_with_the_object(
        self, blob_store: BlobStore, post_upload: PostUpload, base: str
    ) -> None:
        key = f"{base}documents/d1/review.txt"
        meta = {"quarry-fields": '{"product":"X","rating":4}'}
        target = blob_store.presigned_post(key, max_bytes=64, content_type="text/plain", expires_in=300, metadata=meta)

        assert target.fields[OBJECT_METADATA_PREFIX + "quarry-fields"] == meta["quarry-fields"]
        assert _accepted(post_upload(target.url, target.fields, b"great product"))
        head = blob_store.head(key)
        assert head is not None and head.metadata == meta

    def test_an_upload_whose_metadata_is_not_the_signed_one_is_refused(
        self, blob_store: BlobStore, post_upload: PostUpload, base: str
    ) -> None:
        key = f"{base}documents/d1/review.txt"
        name = OBJECT_METADATA_PREFIX + "quarry-fields"
        target = blob_store.presigned_post(
            key, max_bytes=64, content_type="text/plain", expires_in=300, metadata={"quarry-fields": '{"a":1}'}
        )
        plain = self._target(blob_store, f"{base}documents/d2/plain.txt")

        attempts = {
            "changed": (target, {**target.fields, name: '{"a":2}'}),
            "dropped": (target, {k: v for k, v in target.fields.items() if k != name}),
            "added": (target, {**target.fields, OBJECT_METADATA_PREFIX + "other": "x"}),
            "added where none was signed": (plain, {**plain.fields, name: '{"a":1}'}),
        }
        for what, (signed, fields) in attempts.items():
            assert _refused(post_upload(signed.url, fields, b"data")), what

        assert blob_store.head(key) is None
        assert blob_store.head(plain.key) is None

    @pytest.mark.parametrize(
        ("max_bytes", "content_type"),
        [(0, "text/plain"), (-5, "text/plain"), (10, ""), (10, "   ")],
    )
    def test_presigned_post_refuses_bad_limits(
        self, blob_store: BlobStore, base: str, max_bytes: int, content_type: str
    ) -> None:
        with pytest.raises(InvalidInput):
            blob_store.presigned_post(f"{base}k.txt", max_bytes=max_bytes, content_type=content_type, expires_in=60)

    # ------------------------------------------------------------------ presigned GET

    def test_a_presigned_get_serves_the_blob_under_its_file_name(
        self, blob_store: BlobStore, fetch: Fetch, base: str
    ) -> None:
        key = f"{base}documents/d1/a.pdf"
        blob_store.put(key, b"%PDF-1.4 bytes", content_type="application/pdf")

        link = blob_store.presigned_get(key, expires_in=120, filename="Rapport août.pdf")
        status, headers, body = fetch(link.url)

        assert (status, body) == (200, b"%PDF-1.4 bytes")
        disposition = {k.lower(): v for k, v in headers.items()}["content-disposition"]
        assert disposition.startswith("inline")
        assert "Rapport août.pdf" in unquote(disposition)
        assert link.url.startswith(("http://", "https://"))
        assert 60 < (link.expires_at - utcnow()).total_seconds() <= 120

    def test_presigned_get_of_a_missing_blob_is_not_found(self, blob_store: BlobStore, base: str) -> None:
        with pytest.raises(NotFound):
            blob_store.presigned_get(f"{base}never-written.txt", expires_in=60, filename="x.txt")

    @pytest.mark.parametrize(
        ("expires_in", "filename"), [(0, "a.txt"), (8 * 24 * 3600, "a.txt"), (60, "  "), (60, "a\nb")]
    )
    def test_presigned_get_refuses_bad_limits(
        self, blob_store: BlobStore, base: str, expires_in: int, filename: str
    ) -> None:
        blob_store.put(f"{base}k.txt", b"x")
        with pytest.raises(InvalidInput):
            blob_store.presigned_get(f"{base}k.txt", expires_in=expires_in, filename=filename)
