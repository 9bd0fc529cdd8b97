"""Behavioural contracts of the ports, as mixins (Haystack's document-store test style).

A test module subclasses a mixin and supplies one fixture:

    class TestMyCatalog(CatalogContract):
        @pytest.fixture
        def catalog(self): return MyCatalog(...)

Every test isolates itself with fresh random ids, so adapters may share one backing store across
tests. Nothing here knows which technology is underneath. ``tests/unit/test_port_contracts.py`` fails
when a port has no suite here or an adapter of it never runs under its suite.
"""

from tests.contracts.blob_store_contract import BlobStoreContract
from tests.contracts.bus_contract import BusContract
from tests.contracts.cancellations_contract import CancellationsContract
from tests.contracts.catalog_contract import CatalogContract
from tests.contracts.chat_history_contract import ChatHistoryContract
from tests.contracts.chat_model_contract import ChatModelContract
from tests.contracts.connections_contract import ConnectionsContract
from tests.contracts.document_parser_contract import DocumentParserContract
from tests.contracts.embedder_contract import EmbedderContract
from tests.contracts.notifier_contract import NotifierContract
from tests.contracts.reranker_contract import RerankerContract
from tests.contracts.summary_schedules_contract import SummarySchedulesContract
from tests.contracts.summary_store_contract import SummaryStoreContract
from tests.contracts.tokenizer_contract import TokenizerContract
from tests.contracts.usage_contract import UsageLedgerContract
from tests.contracts.vector_index_contract import VectorIndexContract
from tests.contracts.workflow_contract import WorkflowContract

__all__ = [
    "BlobStoreContract",
    "BusContract",
    "CancellationsContract",
    "CatalogContract",
    "ChatHistoryContract",
    "ChatModelContract",
    "ConnectionsContract",
    "DocumentParserContract",
    "EmbedderContract",
    "NotifierContract",
    "RerankerContract",
    "SummarySchedulesContract",
    "SummaryStoreContract",
    "TokenizerContract",
    "UsageLedgerContract",
    "VectorIndexContract",
    "WorkflowContract",
]
