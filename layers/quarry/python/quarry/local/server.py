"""`quarry serve`: the whole platform in one process on embedded defaults."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from quarry.auth import TokenVerifier, issue_dev_token
from quarry.local.asgi import INGEST_QUEUE, create_app
from quarry.local.handlers import LocalContext, load_handler
from quarry.paths import FRONTEND_DIST
from quarry.services.chat_stream import CHAT_TOPIC
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services

__all__ = ["LocalPlatform", "run_server", "start_platform"]

log = logging.getLogger("quarry.serve")
CLI_USER = "local"


@dataclass
class LocalPlatform:
    services: Services
    app: Any
    dev_token: str
    stop_event: threading.Event

    def close(self) -> None:
        self.stop_event.set()
        self.services.close()


def _sqs_consumer(name: str) -> Any:
    handler = load_handler(name)
    return lambda event: handler(event, LocalContext(name))


def _sweep_forever(stop: threading.Event, interval: float) -> None:
    sweeper = load_handler("sweeper")
    while not stop.wait(interval):
        try:
            sweeper({}, LocalContext("sweeper"))
        except Exception:  # keep sweeping; a failed sweep is logged, not fatal
            log.exception("sweep failed")


def start_platform(
    settings: Settings, *, host: str, port: int, warm_up: bool = True, overrides: dict[str, Any] | None = None
) -> LocalPlatform:
    """Build services, wire the bus queues to the Lambda handlers, and return the ASGI app."""
    settings = settings.model_copy(
        update={"local_upload_url": f"http://{host}:{port}/uploads", "local_workflow_background": True}
    )
    services = build_services(settings, overrides=overrides)
    install_services(services)
    bus: Any = services.adapters.bus
    bus.subscribe("chat", _sqs_consumer("chat_worker"), topics=(CHAT_TOPIC,), workers=2)
    bus.subscribe(INGEST_QUEUE, _sqs_consumer("ingest_trigger"), workers=1)
    secret = services.adapters.local_secret
    dev_token = issue_dev_token(secret, user=CLI_USER)
    verifier = TokenVerifier(settings, dev_secret=secret)
    services.extras["token_verifier"] = verifier
    app = create_app(services, verifier=verifier, dev_token=dev_token, frontend_dir=FRONTEND_DIST)
    stop = threading.Event()
    threading.Thread(target=_sweep_forever, args=(stop, 60.0), name="sweeper", daemon=True).start()
    if warm_up:
        threading.Thread(target=_warm_up, args=(services,), name="warm-up", daemon=True).start()
    return LocalPlatform(services=services, app=app, dev_token=dev_token, stop_event=stop)


def _warm_up(services: Services) -> None:
    """Load the models before the first request needs them."""
    try:
        for provider in (services.models.embedders, services.models.chat_models):
            model = provider.get()
            getattr(model, "warm_up", lambda: None)()
    except Exception:
        log.exception("model warm-up failed")


def run_server(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    platform = start_platform(settings, host=host, port=port)
    print(f"Quarry is running at http://{host}:{port}  (data: {settings.data_dir})", flush=True)
    print(f"Dev token (user '{CLI_USER}'): {platform.dev_token}", flush=True)
    try:
        uvicorn.run(platform.app, host=host, port=port, log_level="warning", ws_max_size=1 << 20)
    finally:
        platform.close()
        print("Quarry stopped.", flush=True)
