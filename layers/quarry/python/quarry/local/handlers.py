"""Load the very handler modules that Lambda runs, from ``lambdas/<name>/handler.py``."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from quarry.paths import LAMBDAS_DIR

__all__ = ["LAMBDAS_DIR", "load_handler", "load_module", "one_at_a_time"]


@cache
def load_module(name: str, lambdas_dir: Path = LAMBDAS_DIR) -> ModuleType:
    folder = lambdas_dir / name
    path = folder / "handler.py"
    if not path.is_file():
        raise FileNotFoundError(f"no Lambda handler at {path}")
    # Lambda puts the function's folder on sys.path; do the same so its local modules import.
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(f"lambda_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def one_at_a_time(handler: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
    """``handler`` as one Lambda execution environment: one event at a time.

    Lambda never hands an environment a second event before the first returns, and the handlers rely on it
    (Powertools' resolver keeps the current event and route on the app), so the local gateway, which serves
    requests from a thread pool, calls each handler through this.
    """
    lock = threading.Lock()

    def call(event: dict[str, Any], context: Any) -> Any:
        with lock:
            return handler(event, context)

    return call


def load_handler(name: str) -> Callable[[dict[str, Any], Any], Any]:
    handler: Callable[[dict[str, Any], Any], Any] = load_module(name).handler
    return handler


class LocalContext:
    """Enough of LambdaContext for Powertools."""

    def __init__(self, name: str) -> None:
        self.function_name = f"quarry-{name}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:quarry-{name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = "local"
        self.log_group_name = f"/aws/lambda/quarry-{name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000
