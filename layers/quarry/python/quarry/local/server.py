"""`quarry serve`: the whole platform in one process on embedded defaults.

Start-up resumes what a previous process of the same data directory left unfinished (documents still
``created`` or ``processing``, summary runs not finished: it crashed, was killed, or stopped with runs
queued), and starts the timer that runs scheduled summary jobs. SIGTERM and SIGINT
stop it cleanly: uvicorn drains, then the services close (the workflow, the pools, and the embedded
PostgreSQL server, which would otherwise outlive the process).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

from quarry.auth import DevTokens, TokenVerifier
from quarry.local.asgi import INGEST_QUEUE, create_app
from quarry.local.guard import is_loopback
from quarry.local.handlers import LocalContext, load_handler
from quarry.models import utcnow
from quarry.paths import FRONTEND_DIST
from quarry.services.chat_stream import CHAT_FILTER, CHAT_TOPIC
from quarry.settings import Settings
from quarry.wiring import AdapterOverrides, Services, build_services, install_services

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
    settings: Settings, *, host: str, port: int, warm_up: bool = True, overrides: AdapterOverrides | None = None
) -> LocalPlatform:
    """Build services, wire the bus queues to the Lambda handlers, and return the ASGI app."""
    settings = settings.model_copy(
        update={"local_upload_url": f"http://{host}:{port}/uploads", "local_workflow_background": True}
    )
    started_at = utcnow()
    services = build_services(settings, overrides=overrides)
    try:
        return _start(services, settings, started_at=started_at, warm_up=warm_up)
    except BaseException:  # a failed (or interrupted) start must not leave the database server behind
        services.close()
        raise


def _start(services: Services, settings: Settings, *, started_at: datetime, warm_up: bool) -> LocalPlatform:
    install_services(services)
    bus: Any = services.adapters.bus
    bus.subscribe("chat", _sqs_consumer("chat_worker"), topics=(CHAT_TOPIC,), filter_policy=CHAT_FILTER, workers=2)
    bus.subscribe(INGEST_QUEUE, _sqs_consumer("ingest_trigger"), workers=1)
    secret = services.adapters.local_secret
    dev_tokens = DevTokens(secret, user=CLI_USER, ttl_seconds=settings.dev_token_ttl_seconds)
    dev_token, _ = dev_tokens.current()
    verifier = TokenVerifier(settings, dev_secret=secret)
    services.token_verifier = verifier  # the local gateway and the ws_authorizer handler it runs
    app = create_app(
        services, verifier=verifier, dev_tokens=dev_tokens, frontend_dir=settings.frontend_dir or FRONTEND_DIST
    )
    resumed = services.documents.resume_interrupted(before=started_at)
    if resumed:
        log.warning("resuming %d document(s) a previous run left unfinished", len(resumed))
    _start_summaries(services)
    stop = threading.Event()
    threading.Thread(target=_sweep_forever, args=(stop, 60.0), name="sweeper", daemon=True).start()
    if warm_up:
        threading.Thread(target=_warm_up, args=(services,), name="warm-up", daemon=True).start()
    return LocalPlatform(services=services, app=app, dev_token=dev_token, stop_event=stop)


def _start_summaries(services: Services) -> None:
    """Resume the summary runs a previous process left unfinished, and honour the jobs' schedules."""
    from quarry.adapters.local_schedules import LocalSchedules

    jobs = services.summaries.resume_interrupted()
    if jobs:
        log.warning("resuming %d summary job(s) a previous run left unfinished", len(jobs))
    schedules = services.adapters.summary_schedules
    if isinstance(schedules, LocalSchedules):
        schedules.start(services.adapters.summaries.scheduled_jobs(), services.summaries.run_scheduled)


def _warm_up(services: Services) -> None:
    """Load the models before the first request needs them."""
    try:
        for provider in (services.models.embedders, services.models.chat_models):
            model = provider.get()
            getattr(model, "warm_up", lambda: None)()
    except Exception:
        log.exception("model warm-up failed")


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the process like SIGINT does: by unwinding, so every ``finally`` and atexit hook runs."""
    raise SystemExit(128 + signum)


def _checked_bind(settings: Settings, host: str, *, allow_remote: bool) -> Settings:
    """Listening beyond loopback serves the dev identity to the network: only when asked, and said aloud.
    A specific address becomes the public host name the server answers for, unless one is configured."""
    if is_loopback(host):
        return settings
    if not allow_remote:
        raise SystemExit(
            f"Refusing to listen on {host}: anyone who can reach it could use this server as the dev user. "
            "Pass --allow-remote to do it anyway (and put it behind a firewall or TLS proxy)."
        )
    print(
        f"WARNING: listening on {host}, beyond this machine. Every client that reaches it gets the dev identity "
        "from /config.json; keep it on a trusted network.",
        file=sys.stderr,
        flush=True,
    )
    if not settings.local_public_host and host not in ("0.0.0.0", "::"):
        return settings.model_copy(update={"local_public_host": host})
    return settings


def run_server(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, allow_remote: bool = False) -> None:
    import uvicorn

    settings = _checked_bind(settings, host, allow_remote=allow_remote)
    # uvicorn handles both signals while it serves, then re-raises the one it caught once it has drained;
    # with the default SIGTERM disposition that would kill the process before `platform.close()` runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_on_signal)
    platform = start_platform(settings, host=host, port=port)
    print(f"Quarry is running at http://{host}:{port}  (data: {settings.data_dir})", flush=True)
    hours = settings.dev_token_ttl_seconds / 3600
    print(f"Dev token (user '{CLI_USER}', valid {hours:g} h; the UI renews its own): {platform.dev_token}", flush=True)
    try:
        uvicorn.run(platform.app, host=host, port=port, log_level="warning", ws_max_size=1 << 20)
    finally:
        platform.close()
        print("Quarry stopped.", flush=True)
