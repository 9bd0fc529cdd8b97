"""A REST call that meets a paused Aurora: the handler answers 503 ``database_waking`` with ``Retry-After``
inside the function's wait budget, well before API Gateway's 29 s integration timeout would cut it off.

Everything is real but the network: the REST handler as Lambda loads it, the services, ``PgVectorIndex``
over ``DataApiDatabase``, a boto3 ``rds-data`` client, and the Data API emulator answering every call
with ``DatabaseResumingException`` as a cluster at 0 ACU does (no statement runs, so no Postgres is needed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from quarry.adapters.aws_errors import RetryPolicy
from quarry.adapters.pgvector import PgVectorIndex
from quarry.adapters.rds_data import DataApiDatabase
from quarry.models import ChunkingConfig, Workspace
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.aws.rds_data_emulator import DataApiEmulator
from tests.fakes import FakeBlobStore, FakeCatalog, FakeChatHistory, FakeConnections
from tests.unit.lambdas.rest_calls import UI_ORIGIN, header, rest_response

EVENTS = Path(__file__).resolve().parents[2] / "events"
ALICE = "7d8ca528-4931-4254-9273-ea5ee853f271"
BUDGET = 4.0


class Clock:
    """Seconds that pass only when the driver sleeps (a paused cluster answers at once)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class HashEmbedder:
    name, dimensions = "hash-16", 16

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        v = [0.0] * self.dimensions
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        return v


@pytest.fixture
def emulator() -> Iterator[DataApiEmulator]:
    with DataApiEmulator("postgresql://nobody@127.0.0.1:1/unused") as emulator:
        emulator.pause(calls=10_000)  # the cluster is at 0 ACU for the whole test
        yield emulator


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def services(tmp_path: Path, emulator: DataApiEmulator, clock: Clock, catalog: FakeCatalog) -> Iterator[Services]:
    database = DataApiDatabase(
        resource_arn="arn:aws:rds:us-east-1:123456789012:cluster:quarry-aurora",
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:quarry-aurora-AbCdEf",
        database="quarry",
        client=emulator.client(),
        retry=RetryPolicy(attempts=8, base_delay=1.0, max_delay=8.0, sleep=clock.sleep, jitter=lambda: 1.0),
        resume_wait_seconds=BUDGET,
        clock=clock,
    )
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    overrides = {
        "catalog": catalog,
        "chat_history": FakeChatHistory(),
        "connections": FakeConnections(),
        "vector_index": PgVectorIndex(database),
        "blob_store": FakeBlobStore(),
        "models": models,
    }
    built = build_services(Settings(data_dir=tmp_path), overrides=overrides)
    install_services(built)
    yield built
    reset_services()


def rest(method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
    return rest_response(method, path, body, origin=UI_ORIGIN)


def assert_waking(response: dict[str, Any]) -> int:
    assert response["statusCode"] == 503, response
    retry_after = header(response, "Retry-After")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1
    exposed = (header(response, "Access-Control-Expose-Headers") or "").lower().split(",")
    assert "retry-after" in exposed  # else a browser on the UI's origin cannot read it
    assert json.loads(response["body"]) == {
        "error": {"code": "database_waking", "message": f"the database is waking up; retry in {retry_after} s"}
    }
    return int(retry_after)


def test_creating_a_workspace_on_a_paused_cluster_answers_503_with_retry_after(
    services: Services, catalog: FakeCatalog, emulator: DataApiEmulator, clock: Clock
) -> None:
    response = rest("POST", "/workspaces", {"name": "Policies", "chunk_size": 128, "chunk_overlap": 16})

    retry_after = assert_waking(response)
    assert clock.now == BUDGET  # waited out the whole budget, not a second more
    assert retry_after == 30 - BUDGET  # what is left of a typical 30 s resume
    assert {call.error for call in emulator.calls} == {"DatabaseResumingException"}
    assert len(emulator.calls) > 1  # it did wait and ask again
    assert catalog.list_workspaces(ALICE) == []  # nothing was half-done: retrying is safe


def test_a_search_on_a_paused_cluster_answers_503_with_retry_after(
    services: Services, catalog: FakeCatalog, clock: Clock
) -> None:
    workspace = Workspace(
        id="w1", name="Policies", owner=ALICE, embedding_model="hash-16", dimensions=16, chunking=ChunkingConfig()
    )
    catalog.put_workspace(workspace)

    response = rest("POST", "/workspaces/w1/search", {"query": "leave policy", "top_k": 5})

    assert_waking(response)
    assert clock.now <= 2 * BUDGET  # the keyword and dense rankings wait side by side, each within the budget
