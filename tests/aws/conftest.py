"""Fixtures for the AWS adapters: fake credentials, moto in-process, moto as a real HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import httpx
import pytest
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from quarry.adapters.aws_errors import RetryPolicy
from quarry.adapters.dynamodb import create_tables
from tests.aws_env import isolate_from_real_aws

from .post_policy import PolicyGate

REGION = "us-east-1"
ACCESS_KEY = "AKIAQUARRYTESTING000"
SECRET_KEY = "quarry-moto-secret-key"
TABLE_PREFIX = "qtest"


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach real AWS, whatever the developer's shell has set."""
    isolate_from_real_aws(monkeypatch, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY)


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    """A boto3 Session whose every client talks to in-process moto."""
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def dynamodb(session: boto3.Session) -> object:
    client = session.client("dynamodb")
    create_tables(client, TABLE_PREFIX)
    return client


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto over real HTTP on a free loopback port, behind S3's POST-policy checks (see post_policy.py)."""
    app = PolicyGate(DomainDispatcherApplication(create_backend_app), secret_key=SECRET_KEY)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def server_session(moto_server: str) -> Iterator[boto3.Session]:
    """A fresh moto server state per test; clients need ``endpoint_url=moto_server``."""
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    yield boto3.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION)


class Sleeps(list[float]):
    """Records the back-off delays a RetryPolicy asked for, instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> RetryPolicy:
    """Three attempts, 0.25 s doubling to 2 s, no jitter: the delays are exact."""
    return RetryPolicy(attempts=3, base_delay=0.25, max_delay=2.0, sleep=sleeps, jitter=lambda: 1.0)
