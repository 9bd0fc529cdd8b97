"""``Settings.crawler_enabled`` (in AWS the deployment's ``ingestion.crawler``) really turns website sources off.

The REST handler runs with the composition root's services over the in-memory fakes; what is under test is
that a deployment without the crawler refuses ``POST /workspaces/{id}/websites`` with a 403 and a clear
message before anything is stored or a workflow started, while one with it accepts the same request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from quarry.errors import Forbidden
from quarry.local.handlers import LocalContext, load_handler
from quarry.ports import WorkflowName
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import FakeBlobStore, FakeCatalog, FakeChatHistory, FakeConnections, FakeVectorIndex

EVENTS = Path(__file__).resolve().parents[1] / "events"
ALICE = "7d8ca528-4931-4254-9273-ea5ee853f271"  # the Cognito sub in the recorded event
MESSAGE = "website crawling is not enabled in this deployment"


class _Embedder:
    name, dimensions = "flat-4", 4

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[0.5] * 4 for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [0.5] * 4


class _Workflow:
    def __init__(self) -> None:
        self.started: list[tuple[WorkflowName, dict[str, Any]]] = []

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        self.started.append((name, dict(payload)))
        return f"exec-{run_id}"


def _services(tmp_path: Path, workflow: _Workflow, *, crawler_enabled: bool) -> Services:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("flat-4", "flat", "test", dimensions=4), _Embedder)
    overrides = {
        "catalog": FakeCatalog(),
        "chat_history": FakeChatHistory(),
        "connections": FakeConnections(),
        "vector_index": FakeVectorIndex(),
        "blob_store": FakeBlobStore(),
        "workflow": workflow,
        "models": models,
    }
    return build_services(Settings(data_dir=tmp_path, crawler_enabled=crawler_enabled), overrides=overrides)


@pytest.fixture
def workflow() -> _Workflow:
    return _Workflow()


@pytest.fixture(params=[False, True], ids=["crawler-off", "crawler-on"])
def services(request: pytest.FixtureRequest, tmp_path: Path, workflow: _Workflow) -> Iterator[Services]:
    built = _services(tmp_path, workflow, crawler_enabled=request.param)
    install_services(built)
    yield built
    reset_services()


def _post_website(workspace_id: str, url: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "apigw_rest_post_workspaces.json").read_text())
    path = f"/workspaces/{workspace_id}/websites"
    event |= {"path": path, "resource": "/workspaces/{workspace_id}/websites", "body": json.dumps({"url": url})}
    event["pathParameters"] = {"workspace_id": workspace_id}
    event["requestContext"] = event["requestContext"] | {"resourcePath": path, "path": f"/prod{path}"}
    response: dict[str, Any] = load_handler("rest_api")(event, LocalContext("rest_api"))
    return response


def test_post_websites_follows_the_switch(services: Services, workflow: _Workflow) -> None:
    ws = services.workspaces.create(ALICE, WorkspaceSpec(name="site"))
    blobs: FakeBlobStore = services.adapters.blob_store  # type: ignore[assignment]
    before = set(blobs.blobs)
    response = _post_website(ws.id, "https://docs.example.com/")
    body = json.loads(response["body"])
    documents = services.documents.list_documents(ALICE, ws.id).items
    if services.settings.crawler_enabled:
        assert response["statusCode"] == 201, body
        assert [d.name for d in documents] == ["https://docs.example.com/"]
        assert [name for name, _ in workflow.started] == [WorkflowName.INGEST]
    else:
        assert response["statusCode"] == 403
        assert body == {"error": {"code": "forbidden", "message": MESSAGE}}
        assert documents == [] and workflow.started == [] and set(blobs.blobs) == before  # nothing was kept


def test_the_service_refuses_and_the_crawler_is_not_built(tmp_path: Path, workflow: _Workflow) -> None:
    services = _services(tmp_path, workflow, crawler_enabled=False)
    try:
        ws = services.workspaces.create(ALICE, WorkspaceSpec(name="site"))
        with pytest.raises(Forbidden, match=MESSAGE):
            services.documents.add_website(ALICE, ws.id, {"url": "https://docs.example.com/"})
        assert services.adapters.crawler is None  # a crawl already queued fails with the same reason
    finally:
        services.close()
