"""After a crash: what a dead `quarry serve` leaves behind is resumed at once, a failed document can be
retried (REST, CLI; the UI's button is in frontend/src/screens/documents), and SIGTERM / SIGINT stop the
server without leaving its embedded PostgreSQL running. The AWS side: the sweeper fails what timed out and
a retry starts a new Step Functions execution (moto).

The state a crashed process leaves is produced with the real adapters: documents registered by services
whose workflow never ran its steps (the process died first), or ran `SetProcessing` and nothing after.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quarry.auth import issue_dev_token
from quarry.cli_common import CLI_USER
from quarry.models import DocumentStatus
from quarry.ports import WorkflowName
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.services.workspaces import WorkspaceSpec
from quarry.settings import Settings
from quarry.wiring import Services, build_services

pytestmark = pytest.mark.integration

TEXT = "The Plimsk ferry crosses the river Vell every 20 minutes. A single ticket costs 4 zorbs."


class HashEmbedder:
    """Bag of hashed words: deterministic and instant (what is under test is the runs, not the model)."""

    name, dimensions = "hash-16", 16

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        v = [0.0] * self.dimensions
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norm = sum(x * x for x in v) ** 0.5 or 1.0
        return [x / norm for x in v]


class DiesBeforeRunning:
    """The workflow of a process that died right after registering: the run was never executed."""

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        return f"{name.value}:{run_id}"


@pytest.fixture(scope="module")
def models() -> ModelRegistry:
    registry = ModelRegistry()
    registry.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    return registry


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's tmp_path: as root, PostgreSQL runs as another user that must reach it."""
    path = Path(tempfile.mkdtemp(prefix="quarry-crash-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


# ============================================================================ quarry serve in this process


@dataclass
class Served:
    base_url: str
    services: Services
    token: str

    def api(self, method: str, path: str, *, user: str | None = None, **kw: Any) -> httpx.Response:
        token = self.token if user is None else issue_dev_token(self.services.adapters.local_secret, user=user)
        headers = {"Authorization": f"Bearer {token}"}
        if "json" in kw:
            headers["Content-Type"] = "application/json"
        return httpx.request(method, f"{self.base_url}/api{path}", headers=headers, timeout=60, **kw)

    def status(self, ws_id: str, doc_id: str) -> str:
        return str(self.api("GET", f"/workspaces/{ws_id}/documents/{doc_id}").json()["status"])


@contextlib.contextmanager
def serve(settings: Settings, models: ModelRegistry) -> Iterator[Served]:
    """`quarry serve` as `run_server` runs it, minus the signals: start_platform + uvicorn on a free port."""
    import uvicorn

    from quarry.local.server import start_platform
    from tests.platform_fixtures import free_port

    port = free_port()
    platform = start_platform(settings, host="127.0.0.1", port=port, warm_up=False, overrides={"models": models})
    server = uvicorn.Server(uvicorn.Config(platform.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, what="uvicorn")
    try:
        yield Served(f"http://127.0.0.1:{port}", platform.services, platform.dev_token)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        platform.close()


def test_a_restart_resumes_at_once_what_the_dead_process_left(
    data_dir: Path, pg_database: str, models: ModelRegistry
) -> None:
    settings = Settings(data_dir=data_dir, pg_dsn=pg_database)
    dead = build_services(settings, overrides={"models": models, "workflow": DiesBeforeRunning()})
    try:
        ws = dead.workspaces.create(CLI_USER, WorkspaceSpec(name="ferries", chunk_size=64, chunk_overlap=8))
        queued = dead.documents.add_text(CLI_USER, ws.id, title="queued", text=TEXT)
        running = dead.documents.add_text(CLI_USER, ws.id, title="running", text=TEXT + " It runs daily.")
        dead.ingestion_steps.set_processing(ws.id, running.id)  # the job had begun when the process died
        left = {d.id: d.status for d in dead.documents.list_documents(CLI_USER, ws.id).items}
        assert left == {queued.id: DocumentStatus.CREATED, running.id: DocumentStatus.PROCESSING}
    finally:
        dead.close()

    with serve(settings, models) as quarry:
        # Today's code leaves both where they are until the sweeper's 30 minutes have passed.
        wait_for(
            lambda: {quarry.status(ws.id, d.id) for d in (queued, running)} == {"processed"},
            timeout=60,
            what="both interrupted documents to be processed after the restart",
        )
        hits = quarry.api("POST", f"/workspaces/{ws.id}/search", json={"query": "ferry ticket", "mode": "keyword"})
        assert {h["document_id"] for h in hits.json()["hits"]} == {queued.id, running.id}


def test_a_failed_document_is_retried_over_rest(data_dir: Path, pg_database: str, models: ModelRegistry) -> None:
    settings = Settings(data_dir=data_dir, pg_dsn=pg_database)
    with serve(settings, models) as quarry:
        ws = quarry.api("POST", "/workspaces", json={"name": "retry", "chunk_size": 64, "chunk_overlap": 8}).json()
        doc = quarry.api("POST", f"/workspaces/{ws['id']}/documents", json={"type": "text", "title": "t", "text": TEXT})
        assert doc.status_code == 201, doc.text
        doc_id = doc.json()["id"]
        wait_for(lambda: quarry.status(ws["id"], doc_id) == "processed", timeout=60, what="first ingestion")
        retry_path = f"/workspaces/{ws['id']}/documents/{doc_id}/retry"

        processed = quarry.api("POST", retry_path)
        assert processed.status_code == 409 and processed.json()["error"]["code"] == "conflict"

        # A run interrupted without a restart: the sweeper ends it in `error: timed out`.
        quarry.services.ingestion_steps.set_processing(ws["id"], doc_id)
        swept = quarry.services.ingestion_steps.sweep_stale(timedelta(0))
        assert [d.id for d in swept] == [doc_id] and quarry.status(ws["id"], doc_id) == "error"

        assert quarry.api("POST", retry_path, user="mallory").status_code == 404
        retried = quarry.api("POST", retry_path)
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "created" and retried.json()["status_reason"] is None
        wait_for(lambda: quarry.status(ws["id"], doc_id) == "processed", timeout=60, what="the retried ingestion")
        described = quarry.api("GET", f"/workspaces/{ws['id']}").json()
        assert described["chunk_count"] >= 1


# ============================================================================ the command line


def test_the_cli_retries_a_failed_document(data_dir: Path, pg_database: str) -> None:
    """`quarry documents retry NAME -w WS` runs the ingestion again, here, with the real models."""
    settings = Settings(data_dir=data_dir, pg_dsn=pg_database)
    dead = build_services(settings, overrides={"workflow": DiesBeforeRunning()})
    try:
        ws = dead.workspaces.create(CLI_USER, WorkspaceSpec(name="cli-retry", chunk_size=64, chunk_overlap=8))
        doc = dead.documents.add_text(CLI_USER, ws.id, title="ferry", text=TEXT)
        dead.ingestion_steps.set_error(ws.id, doc.id, "timed out")
    finally:
        dead.close()
    env = {**os.environ, "QUARRY_DATA_DIR": str(data_dir), "QUARRY_PG_DSN": pg_database, "HF_HUB_OFFLINE": "1"}

    def quarry(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "quarry.cli", *args], env=env, capture_output=True, text=True, timeout=600
        )

    listed = quarry("documents", "list", "--workspace", "cli-retry", "--status", "error")
    assert listed.returncode == 0 and "ferry" in listed.stdout and "timed out" in listed.stdout, listed.stderr
    retried = quarry("documents", "retry", "ferry", "--workspace", "cli-retry", "--json")
    assert retried.returncode == 0, retried.stderr
    after = json.loads(retried.stdout)
    assert after["status"] == "processed" and after["chunk_count"] >= 1
    refused = quarry("documents", "retry", "ferry", "--workspace", "cli-retry")
    assert refused.returncode == 1 and "only a failed document is retried" in refused.stderr


# ============================================================================ signals


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap the daemonised postmaster)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_quarry_serve_and_its_embedded_postgres(data_dir: Path, sig: signal.Signals) -> None:
    from tests.platform_fixtures import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUARRY_")}
    env |= {"QUARRY_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    pgdata = data_dir / "postgres" / "pgdata"
    proc = subprocess.Popen(
        [sys.executable, "-m", "quarry.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    postmaster: int | None = None
    try:

        def answering() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"quarry serve exited with {proc.returncode}:\n{''.join(lines.queue)}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/config.json", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answering, timeout=180, what="quarry serve to answer")
        postmaster = _postmaster_pid(pgdata)
        assert postmaster is not None and _running(postmaster)

        proc.send_signal(sig)
        proc.wait(timeout=120)

        output = "".join(lines.queue)
        assert not (pgdata / "postmaster.pid").exists(), f"PostgreSQL was left running\n{output}"
        assert not _running(postmaster)
        assert "Quarry stopped." in output, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if postmaster is not None and _running(postmaster):  # what today's code leaves behind
            from quarry.adapters.embedded_pg import EmbeddedPostgres

            EmbeddedPostgres(data_dir / "postgres").stop(force=True)


# ============================================================================ AWS: the sweeper, then a retry


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in-process, with credentials that can reach nothing else."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAQUARRYTESTING000",
        "AWS_SECRET_ACCESS_KEY": "quarry-moto-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3

        yield boto3.Session(region_name="us-east-1")


@pytest.mark.aws
def test_in_aws_the_sweeper_fails_timed_out_work_and_a_retry_is_a_new_execution(
    aws: Any, tmp_path: Path, models: ModelRegistry
) -> None:
    """DynamoDB catalog and Step Functions in moto; the handlers are the Lambdas' own files."""
    from quarry.adapters.dynamodb import DynamoCatalog, create_tables
    from quarry.adapters.stepfunctions import StepFunctionsWorkflow
    from quarry.local.handlers import LocalContext, load_handler
    from quarry.wiring import install_services, reset_services
    from tests.fakes import FakeBlobStore, FakeConnections, FakeVectorIndex

    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="quarry-ingest",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    dynamodb = aws.client("dynamodb")
    create_tables(dynamodb, "crash")
    events = Path(__file__).resolve().parents[1] / "events"
    rest_event = json.loads((events / "apigw_rest_post_workspaces.json").read_text())
    alice = rest_event["requestContext"]["authorizer"]["claims"]["sub"]

    class Silent:
        def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
            return True

    services = build_services(
        Settings(
            data_dir=tmp_path,
            processing_timeout_seconds=0,  # every `processing` document has outlived its Batch job
            cognito_user_pool_id="us-east-1_Example",
            cognito_client_id="5lnc4lb1q1example",
        ),
        overrides={
            "catalog": DynamoCatalog("crash", client=dynamodb),
            "workflow": StepFunctionsWorkflow({WorkflowName.INGEST: machine}, client=sfn),
            "blob_store": FakeBlobStore(),
            "vector_index": FakeVectorIndex(),
            "connections": FakeConnections(),
            "notifier": Silent(),
            "models": models,
        },
    )
    install_services(services)
    try:

        def invoke(name: str, payload: dict[str, Any]) -> Any:
            return load_handler(name)(payload, LocalContext(name))

        ws = services.workspaces.create(alice, WorkspaceSpec(name="handbook"))
        upload = (events / "sqs_s3_object_created.json").read_text().replace("WS_ID", ws.id).replace("DOC_ID", "d1")
        invoke("ingest_trigger", json.loads(upload))
        invoke("ingest_status", {"action": "set_processing", "workspace_id": ws.id, "document_id": "d1"})
        # ... and the Batch job never reports back (the task was lost, the job outlived its timeout).

        swept = invoke("sweeper", {})
        assert swept == {"swept": ["d1"]}
        failed = services.adapters.catalog.get_document(ws.id, "d1")
        assert failed is not None and failed.status is DocumentStatus.ERROR
        assert (failed.status_reason or "").startswith("Processing took too long and was stopped.")

        def retry() -> dict[str, Any]:
            request = copy_event(rest_event, f"/workspaces/{ws.id}/documents/d1/retry")
            return invoke("rest_api", request)

        accepted = retry()
        assert accepted["statusCode"] == 202, accepted["body"]
        assert json.loads(accepted["body"])["status"] == "created"
        refused = retry()  # a second click while the first retry is queued
        assert refused["statusCode"] == 409 and json.loads(refused["body"])["error"]["code"] == "conflict"
        invoke("ingest_trigger", json.loads(upload))  # the upload's event redelivered: still no third run

        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert len(executions) == 2 and len({e["name"] for e in executions}) == 2
        inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in executions]
        assert all(i == {"workspace_id": ws.id, "document_id": "d1", "workflow": "ingest"} for i in inputs)
    finally:
        reset_services()
        services.close()


def copy_event(base: dict[str, Any], path: str) -> dict[str, Any]:
    """The REST fixture event as a bodiless POST to ``path`` (API Gateway's greedy proxy resource)."""
    event = json.loads(json.dumps(base))
    event |= {"path": path, "resource": "/{proxy+}", "body": None, "httpMethod": "POST"}
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["requestContext"] |= {"path": f"/prod{path}", "resourcePath": "/{proxy+}", "httpMethod": "POST"}
    return event
