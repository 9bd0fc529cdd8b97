"""Behavioural contracts of the storage ports, as mixins (Haystack's document-store test style).

A test module subclasses a mixin and supplies one fixture:

    class TestMyCatalog(CatalogContract):
        @pytest.fixture
        def catalog(self): return MyCatalog(...)

Every test isolates itself with fresh random ids, so adapters may share one backing store across
tests. Nothing here knows which technology is underneath.
"""

from tests.contracts.catalog_contract import CatalogContract
from tests.contracts.chat_history_contract import ChatHistoryContract
from tests.contracts.connections_contract import ConnectionsContract
from tests.contracts.vector_index_contract import VectorIndexContract

__all__ = ["CatalogContract", "ChatHistoryContract", "ConnectionsContract", "VectorIndexContract"]
