"""REST: POST /rerank and POST /embeddings through the Lambda handler (the wire <-> ModelCallService)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quarry.services.model_calls import NO_RERANKER
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import (
    HashEmbedder,
    WordOverlapReranker,
    fake_overrides,
)
from tests.unit.lambdas.test_handlers import Recorder
from tests.unit.lambdas.test_usage_routes import rest

PASSAGES = ["the harbour fees", "leave is 27 days", "nothing relevant"]


def _install(tmp_path: Path, *, with_reranker: bool) -> Services:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    if with_reranker:
        models.rerankers.register(ModelInfo("overlap", "overlap", "test"), WordOverlapReranker)
    recorder = Recorder()
    built = build_services(
        Settings(data_dir=tmp_path),
        overrides=fake_overrides(recorder, models),
    )
    install_services(built)
    return built


@pytest.fixture
def with_reranker(tmp_path: Path) -> Iterator[Services]:
    yield _install(tmp_path, with_reranker=True)
    reset_services()


@pytest.fixture
def without_reranker(tmp_path: Path) -> Iterator[Services]:
    yield _install(tmp_path, with_reranker=False)
    reset_services()


def test_rerank_answers_scores_ranking_and_model(with_reranker: Services) -> None:
    status, body = rest("POST", "/rerank", {"query": "how many leave days", "passages": PASSAGES})
    assert status == 200
    assert body == {"scores": [0.0, 0.5, 0.0], "ranking": [1, 0, 2], "model": "overlap"}


def test_rerank_without_a_reranker_is_refused(without_reranker: Services) -> None:
    status, body = rest("POST", "/rerank", {"query": "leave", "passages": PASSAGES})
    assert status == 422
    assert body["error"] == {"code": "invalid_input", "message": NO_RERANKER}


def test_rerank_body_limits_answer_422(with_reranker: Services) -> None:
    status, body = rest("POST", "/rerank", {"query": "leave", "passages": []})
    assert status == 422 and body["error"]["code"] == "invalid_input" and "passages" in body["error"]["message"]


def test_embeddings_answer_vectors_dimensions_and_model(without_reranker: Services) -> None:
    texts = ["leave is 27 days", "the harbour fees"]
    status, body = rest("POST", "/embeddings", {"texts": texts})
    assert status == 200
    assert body == {
        "model": "hash-16",
        "dimensions": 16,
        "embeddings": [HashEmbedder().embed_query(t) for t in texts],
    }
    status, body = rest("POST", "/embeddings", {"texts": ["a"], "model": "nope"})
    assert status == 422 and "unknown embedding model 'nope'" in body["error"]["message"]
