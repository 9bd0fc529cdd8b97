"""REST: summary jobs through the Lambda handler, as API Gateway calls it, on the fake platform.

The workflow is the recorder (it keeps the runs started); a test runs a recorded run with the service's own
``run`` step, as the local workflow or the state machine would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarry.models import Document, DocumentSource, DocumentStatus
from quarry.ports import WorkflowName
from quarry.services.documents import preview_key
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import FakeSummaryStore, HashEmbedder, fake_overrides
from tests.unit.lambdas.rest_calls import header, rest, rest_response
from tests.unit.lambdas.test_handlers import ALICE, Recorder
from tests.unit.services.summary_fixtures import PRICED, RecordingSchedules, ReviewerChat, review

MALLORY = "mallory"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def schedules() -> RecordingSchedules:
    return RecordingSchedules()


@pytest.fixture
def daily_token_budget() -> int | None:
    """The deployment's per-user allowance (a test parametrizes it to set one)."""
    return None


@pytest.fixture
def services(
    tmp_path: Path, recorder: Recorder, schedules: RecordingSchedules, daily_token_budget: int | None
) -> Iterator[Services]:
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    chat = ReviewerChat()
    models.chat_models.register(ModelInfo(PRICED, "reviewer", "test"), lambda: chat)
    overrides = fake_overrides(recorder, models, summaries=FakeSummaryStore(), summary_schedules=schedules)
    built = build_services(Settings(data_dir=tmp_path, daily_token_budget=daily_token_budget), overrides=overrides)
    install_services(built)
    yield built
    reset_services()


@pytest.fixture
def workspace(services: Services) -> str:
    status, ws = rest("POST", "/workspaces", {"name": "reviews", "embedding_model": "hash-16"})
    assert status == 201, ws
    catalog = services.adapters.catalog
    for n, (product, aspects) in enumerate(
        [("X", ("battery",)), ("X", ("battery", "dim")), ("X", ("cheap",)), ("Y", ("price",))]
    ):
        document = Document(
            id=f"doc{n}",
            workspace_id=ws["id"],
            name=f"review-{n}.txt",
            source=DocumentSource.TEXT,
            status=DocumentStatus.PROCESSED,
            metadata={"fields": {"product": product}},
        )
        catalog.put_document(document)
        services.adapters.blob_store.put(preview_key(ws["id"], document.id), review(*aspects).encode())
    return str(ws["id"])


def run_started(services: Services, recorder: Recorder) -> None:
    """What the workflow does with the runs the API started."""
    for name, payload, _ in recorder.started:
        if name is WorkflowName.SUMMARIZE:
            services.summaries.run(payload)


def test_post_starts_a_job_and_get_shows_its_cited_result(
    services: Services, recorder: Recorder, workspace: str
) -> None:
    status, job = rest("POST", f"/workspaces/{workspace}/summaries", {"filter": {"product": "X"}, "kind": "pros_cons"})
    assert status == 202, job
    assert job["status"] == "queued" and job["kind"] == "pros_cons" and job["language"] == "English"
    assert job["filter"] == {"product": "X"} and job["filter_description"] == "product = X"
    assert job["max_points"] == 5 and job["schedule"] is None and job["next_run_at"] is None
    assert job["progress"] == {
        "documents_total": 0,
        "documents_read": 0,
        "batches_total": 0,
        "batches_done": 0,
        "batches_failed": 0,
    }
    assert job["result"] is None and job["runs"] == 1
    assert [(n, p["job_id"]) for n, p, _ in recorder.started] == [(WorkflowName.SUMMARIZE, job["id"])]

    run_started(services, recorder)
    status, done = rest("GET", f"/workspaces/{workspace}/summaries/{job['id']}")
    assert status == 200 and done["status"] == "succeeded", done
    assert done["progress"]["documents_total"] == 3 and done["progress"]["documents_read"] == 3
    points = {p["text"]: p for p in done["result"]["points"]}
    assert set(points) == {"Long battery life", "Screen too dim", "Feels cheap"}
    battery = points["Long battery life"]
    assert battery["kind"] == "pro" and battery["count"] == 2
    assert sorted(battery["citations"], key=lambda c: c["document_id"]) == [
        {"document_id": "doc0", "document_name": "review-0.txt"},
        {"document_id": "doc1", "document_name": "review-1.txt"},
    ]
    assert done["result"]["documents_read"] == 3 and done["result"]["evaluation"] == {}
    assert done["prompt_tokens"] > 0 and done["cost_usd"] > 0
    assert done["finished_at"] is not None

    status, listed = rest("GET", f"/workspaces/{workspace}/summaries")
    assert status == 200 and listed["cursor"] is None and [j["id"] for j in listed["items"]] == [job["id"]]


def test_delete_cancels_a_running_job_then_removes_it(services: Services, workspace: str) -> None:
    body = {"filters": {"product": "X"}, "kind": "themes", "schedule": "rate(1 day)"}  # the alias "filters" too
    status, job = rest("POST", f"/workspaces/{workspace}/summaries", body)
    assert status == 202 and job["schedule"] == "rate(1 day)" and job["next_run_at"] is not None

    status, cancelled = rest("DELETE", f"/workspaces/{workspace}/summaries/{job['id']}")
    assert status == 202 and cancelled["status"] == "cancelled"
    status, _ = rest("DELETE", f"/workspaces/{workspace}/summaries/{job['id']}")
    assert status == 204
    status, body = rest("GET", f"/workspaces/{workspace}/summaries/{job['id']}")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_runs_starts_a_finished_job_again_and_refuses_a_running_one(
    services: Services, recorder: Recorder, workspace: str
) -> None:
    _, job = rest("POST", f"/workspaces/{workspace}/summaries", {"filter": {"product": "X"}, "kind": "pros_cons"})
    status, body = rest("POST", f"/workspaces/{workspace}/summaries/{job['id']}/runs")
    assert status == 409 and body["error"]["code"] == "conflict"
    run_started(services, recorder)
    recorder.started.clear()
    status, again = rest("POST", f"/workspaces/{workspace}/summaries/{job['id']}/runs")
    assert status == 202 and again["status"] == "queued" and again["runs"] == 2
    run_started(services, recorder)
    _, after = rest("GET", f"/workspaces/{workspace}/summaries/{job['id']}")
    assert after["status"] == "succeeded" and after["progress"]["documents_total"] == 0  # nothing new
    assert len(after["result"]["points"]) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "summary"}, "kind"),
        ({"kind": "custom"}, "instructions"),
        ({"kind": "themes", "language": "English!"}, "language"),
        ({"kind": "themes", "max_points": 21}, "max_points"),
        ({"kind": "themes", "schedule": "cron(0 6 * * *)"}, "schedule"),
        ({"kind": "themes", "schedule": "rate(10 minutes)"}, "schedule"),
        ({"kind": "themes", "filter": {"rating": {"near": 4}}}, "filter.rating.near"),
        ({"kind": "themes", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(workspace: str, body: dict[str, Any], field: str) -> None:
    status, answer = rest("POST", f"/workspaces/{workspace}/summaries", body)
    assert status == 422 and answer["error"]["code"] == "invalid_input"
    assert field in answer["error"]["message"]


def test_a_filter_that_selects_nothing_is_a_clear_422(workspace: str) -> None:
    status, answer = rest("POST", f"/workspaces/{workspace}/summaries", {"filter": {"product": "Z"}, "kind": "themes"})
    assert status == 422
    assert answer["error"]["message"] == "no documents match the filter (product = Z)"


def test_someone_elses_workspace_is_a_404(workspace: str) -> None:
    _, job = rest("POST", f"/workspaces/{workspace}/summaries", {"kind": "themes"})
    for method, path in [
        ("POST", f"/workspaces/{workspace}/summaries"),
        ("GET", f"/workspaces/{workspace}/summaries"),
        ("GET", f"/workspaces/{workspace}/summaries/{job['id']}"),
        ("DELETE", f"/workspaces/{workspace}/summaries/{job['id']}"),
        ("POST", f"/workspaces/{workspace}/summaries/{job['id']}/runs"),
    ]:
        body = {"kind": "themes"} if method == "POST" and path.endswith("summaries") else None
        status, answer = rest(method, path, body, user=MALLORY)
        assert status == 404 and answer["error"]["code"] == "not_found", (method, path)
    assert rest("GET", f"/workspaces/{workspace}/summaries", user=ALICE)[0] == 200


def test_a_runs_tokens_show_in_get_usage_as_the_owners(services: Services, recorder: Recorder, workspace: str) -> None:
    _, job = rest("POST", f"/workspaces/{workspace}/summaries", {"filter": {"product": "X"}, "kind": "pros_cons"})
    run_started(services, recorder)
    _, done = rest("GET", f"/workspaces/{workspace}/summaries/{job['id']}")
    assert done["status"] == "succeeded" and done["prompt_tokens"] > 0

    status, mine = rest("GET", "/usage")
    assert status == 200
    assert mine["total"]["prompt_tokens"] == done["prompt_tokens"]
    assert mine["total"]["completion_tokens"] == done["completion_tokens"]
    assert mine["total"]["cost_usd"] == pytest.approx(done["cost_usd"])
    assert [(r["model"], r["requests"]) for r in mine["by_model"]] == [(PRICED, done["progress"]["batches_done"])]
    status, theirs = rest("GET", f"/workspaces/{workspace}/usage")
    assert status == 200 and theirs["total"]["prompt_tokens"] == done["prompt_tokens"]


@pytest.mark.parametrize("daily_token_budget", [50])
def test_a_spent_allowance_is_the_429_chat_answers(services: Services, recorder: Recorder, workspace: str) -> None:
    body = {"filter": {"product": "X"}, "kind": "pros_cons"}
    status, job = rest("POST", f"/workspaces/{workspace}/summaries", body)
    assert status == 202  # nothing spent yet today
    run_started(services, recorder)  # one batch: it starts under the allowance and finishes over it
    _, done = rest("GET", f"/workspaces/{workspace}/summaries/{job['id']}")
    assert done["status"] == "succeeded" and done["prompt_tokens"] + done["completion_tokens"] > 50

    for path in (f"/workspaces/{workspace}/summaries", f"/workspaces/{workspace}/summaries/{job['id']}/runs"):
        response = rest_response("POST", path, body if path.endswith("summaries") else None, user=ALICE)
        assert response["statusCode"] == 429, (path, response)
        error = json.loads(response["body"])["error"]
        assert error["code"] == "budget_exhausted" and "daily allowance of 50 tokens" in error["message"]
        retry_after = header(response, "Retry-After")
        assert retry_after is not None and int(retry_after) > 0
    _, listed = rest("GET", f"/workspaces/{workspace}/summaries")
    assert [j["id"] for j in listed["items"]] == [job["id"]] and listed["items"][0]["runs"] == 1
