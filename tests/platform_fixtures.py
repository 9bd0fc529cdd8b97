"""Fixtures on the real local adapters: embedded Postgres (one database per module), MiniLM and llama.cpp
(loaded once per session), and `quarry serve` running in-process. Imported by the conftests that need them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from quarry.auth import issue_dev_token
from quarry.services.models_registry import ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Adapters, Services, build_services


@pytest.fixture(scope="session")
def model_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """The real local models (MiniLM, the packaged Qwen GGUF), built lazily and shared by every test."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("models"))
    return Adapters(settings).models


def local_settings(data_dir: Path, pg_dsn: str, **extra: Any) -> Settings:
    return Settings(data_dir=data_dir, pg_dsn=pg_dsn, **extra)


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, model_registry: ModelRegistry
) -> Iterator[Services]:
    """Services on embedded Postgres with the workflow inline, as `quarry ingest` runs it."""
    settings = local_settings(tmp_path_factory.mktemp("data"), pg_database, local_workflow_background=False)
    built = build_services(settings, overrides={"models": model_registry})
    try:
        yield built
    finally:
        built.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LivePlatform:
    base_url: str
    ws_url: str
    token: str
    services: Services
    secret: bytes

    def token_for(self, user: str) -> str:
        return issue_dev_token(self.secret, user=user)

    def headers(self, user: str | None = None) -> dict[str, str]:
        token = self.token if user is None else self.token_for(user)
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, model_registry: ModelRegistry
) -> Iterator[LivePlatform]:
    """`quarry serve` in this process: uvicorn on a free port, the real handlers, bus and workflow."""
    with serve_live(
        tmp_path_factory.mktemp("serve"),
        pg_database,
        model_registry,
        max_upload_bytes=200_000,
        crawler_allowed_hosts=["127.0.0.1"],
    ) as platform:
        yield platform


@contextmanager
def serve_live(data_dir: Path, pg_dsn: str, models: ModelRegistry, **settings: Any) -> Iterator[LivePlatform]:
    """`quarry serve` with the given ``settings`` (e.g. ``daily_token_budget``): for a module whose own ``live``
    fixture needs a deployment setting the shared one does not have."""
    import uvicorn

    from quarry.local.server import start_platform

    port = free_port()
    platform = start_platform(
        local_settings(data_dir, pg_dsn, **settings),
        host="127.0.0.1",
        port=port,
        warm_up=False,
        overrides={"models": models},
    )
    server = uvicorn.Server(uvicorn.Config(platform.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield LivePlatform(
            base_url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}/ws",
            token=platform.dev_token,
            services=platform.services,
            secret=platform.services.adapters.local_secret,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        platform.close()
