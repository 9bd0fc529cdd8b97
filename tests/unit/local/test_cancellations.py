from __future__ import annotations

import pytest

from quarry.local.cancellations import InMemoryCancellations
from tests.contracts.cancellations_contract import CancellationsContract


class TestInMemoryCancellations(CancellationsContract):
    @pytest.fixture
    def cancellations(self) -> InMemoryCancellations:
        return InMemoryCancellations()
