"""The local presigned POST: the same limits as the S3 policy, enforced before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from quarry.adapters.localfs import LocalBlobStore
from quarry.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge, UnsupportedDocument


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path, upload_url="http://127.0.0.1:8000/uploads", secret=b"k" * 32)


def test_a_signed_post_verifies_and_the_blob_round_trips(store: LocalBlobStore) -> None:
    target = store.presigned_post(
        "workspaces/w/documents/d/a.txt", max_bytes=10, content_type="text/plain", expires_in=60
    )
    assert target.url.endswith("/uploads") and target.fields["key"] == target.key
    assert store.verify_post(target.fields, size=5, content_type=None) == target.key
    info = store.put(target.key, b"hello", content_type="text/plain")
    assert store.get(target.key) == b"hello"
    assert store.head(target.key) == info
    assert store.delete_prefix("workspaces/w/") == 1
    with pytest.raises(NotFound):
        store.get(target.key)


@pytest.mark.parametrize(
    ("change", "size", "error"),
    [
        ({"signature": "0" * 64}, 5, Forbidden),
        ({"key": "workspaces/w/documents/d/other.txt"}, 5, Forbidden),
        ({"Content-Type": "application/pdf"}, 5, UnsupportedDocument),
        ({}, 11, PayloadTooLarge),
        ({}, 0, InvalidInput),
    ],
)
def test_violations_are_refused(store: LocalBlobStore, change: dict[str, str], size: int, error: type) -> None:
    target = store.presigned_post(
        "workspaces/w/documents/d/a.txt", max_bytes=10, content_type="text/plain", expires_in=60
    )
    with pytest.raises(error):
        store.verify_post({**target.fields, **change}, size=size, content_type=None)


def test_an_expired_policy_is_refused(store: LocalBlobStore) -> None:
    target = store.presigned_post("k/a.txt", max_bytes=10, content_type="text/plain", expires_in=-1)
    with pytest.raises(Forbidden, match="expired"):
        store.verify_post(target.fields, size=1, content_type=None)


def test_keys_cannot_escape_the_root(store: LocalBlobStore) -> None:
    for key in ["../etc/passwd", "/abs", "a/../../b", ""]:
        with pytest.raises(InvalidInput):
            store.put(key, b"x")
