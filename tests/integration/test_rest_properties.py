"""Property-based tests of the REST API from its own OpenAPI document: no input yields a 5xx.

(schemathesis' pytest plugin does not run under pytest 9, so each operation's hypothesis strategy is
driven directly.)
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.platform_fixtures import LivePlatform

pytestmark = pytest.mark.integration


def test_no_input_yields_a_server_error(live: LivePlatform) -> None:
    document = httpx.get(f"{live.base_url}/api/openapi.json", timeout=30).json()
    # /chat runs the LLM for every generated case: its validation is covered in test_serve.
    schema = schemathesis.openapi.from_dict(document).exclude(path="/chat")
    headers = {"Authorization": f"Bearer {live.token}"}
    live.services.models.embedders.get().embed_query("warm up")  # model loading is not what is measured here
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def no_5xx(case: Any) -> None:
            case.call_and_validate(
                base_url=f"{live.base_url}/api", headers=headers, checks=[not_a_server_error], timeout=60
            )

        no_5xx()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert len(tested) >= 15, tested
