"""The in-memory usage ledger (an injected chat history's counters) honours the UsageLedger contract."""

from __future__ import annotations

import pytest

from quarry.adapters.memory_usage import InMemoryUsageLedger
from tests.contracts.usage_contract import UsageLedgerContract


class TestInMemoryUsageLedger(UsageLedgerContract):
    @pytest.fixture
    def usage_ledger(self) -> InMemoryUsageLedger:
        return InMemoryUsageLedger()
