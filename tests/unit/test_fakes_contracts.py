"""The in-memory fakes keep the same contracts as the real adapters."""

from __future__ import annotations

from typing import ClassVar

import pytest

from quarry.errors import InvalidInput, NotFound
from tests.contracts import (
    CatalogContract,
    ChatHistoryContract,
    ConnectionsContract,
    SummaryStoreContract,
    VectorIndexContract,
)
from tests.fakes import (
    FakeBlobStore,
    FakeCatalog,
    FakeChatHistory,
    FakeConnections,
    FakeSummaryStore,
    FakeVectorIndex,
    analyse,
)


class TestFakeCatalog(CatalogContract):
    @pytest.fixture
    def catalog(self) -> FakeCatalog:
        return FakeCatalog()


class TestFakeChatHistory(ChatHistoryContract):
    @pytest.fixture
    def chat_history(self) -> FakeChatHistory:
        return FakeChatHistory()


class TestFakeConnections(ConnectionsContract):
    @pytest.fixture
    def connections(self) -> FakeConnections:
        return FakeConnections()


class TestFakeSummaryStore(SummaryStoreContract):
    @pytest.fixture
    def summary_store(self) -> FakeSummaryStore:
        return FakeSummaryStore()


class TestFakeVectorIndex(VectorIndexContract):
    exact_bm25: ClassVar[bool] = True

    @pytest.fixture
    def index(self) -> FakeVectorIndex:
        return FakeVectorIndex()


def test_fake_analyser_drops_stop_words_and_case() -> None:
    assert analyse("The Kinase, and THE kinase!") == ["kinase", "kinase"]


def test_fake_blob_store_round_trip() -> None:
    blobs = FakeBlobStore()
    info = blobs.put("ws/a.txt", b"hello", content_type="text/plain")
    assert (info.size, info.content_type) == (5, "text/plain")
    assert blobs.get("ws/a.txt") == b"hello"
    assert blobs.head("ws/a.txt") == info
    assert blobs.head("ws/missing") is None
    blobs.put("ws/b.txt", b"x")
    blobs.put("other/c.txt", b"y")
    assert blobs.delete_prefix("ws/") == 2
    assert blobs.get("other/c.txt") == b"y"
    blobs.delete("other/c.txt")
    blobs.delete("other/c.txt")
    with pytest.raises(NotFound):
        blobs.get("other/c.txt")
    with pytest.raises(InvalidInput):
        blobs.put("", b"")
    target = blobs.presigned_post("ws/up.pdf", max_bytes=10, content_type="application/pdf", expires_in=60)
    assert target.key == "ws/up.pdf" and target.max_bytes == 10 and target.fields["key"] == "ws/up.pdf"
