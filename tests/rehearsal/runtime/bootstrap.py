"""The rehearsal's Lambda runtime: what ``/var/runtime/bootstrap`` does in AWS, for one function.

Run as ``python3.12 -S -E -B bootstrap.py`` (no site-packages, no PYTHON* variables) with the environment
Lambda would give the function. It:

1. builds ``sys.path`` as the Python 3.12 Lambda runtime does: ``/var/task`` (the code asset), the layers'
   ``/opt/python/lib/python3.12/site-packages`` and ``/opt/python``, then the runtime's own packages
   (``REHEARSAL_RUNTIME_PACKAGES``: the boto3 Lambda ships) and the standard library. Nothing else;
2. stands in for the network and records every botocore API call (``network.py``);
3. imports the handler (the init phase, timed) and answers invocations: one JSON line on stdin each, one
   JSON line on the result pipe (``REHEARSAL_RESULT_FD``) each.

Only the standard library is used here, before the handler is imported.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any

import network


def _sys_path() -> None:
    stdlib = [p for p in sys.path if "site-packages" not in p and p != os.path.dirname(os.path.abspath(__file__))]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    task = os.environ["LAMBDA_TASK_ROOT"]
    opt = os.environ["REHEARSAL_OPT"]
    runtime = os.environ.get("REHEARSAL_RUNTIME_PACKAGES", "")
    sys.path[:] = [
        task,
        os.path.join(opt, "python", "lib", version, "site-packages"),
        os.path.join(opt, "python"),
        *([runtime] if runtime else []),
        *[p for p in stdlib if p],
    ]


class Context:
    """The ``context`` object Lambda passes (the attributes Powertools reads)."""

    def __init__(self, deadline: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.invoked_function_arn = os.environ["REHEARSAL_FUNCTION_ARN"]
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    _sys_path()
    out = os.fdopen(int(os.environ["REHEARSAL_RESULT_FD"]), "w", buffering=1)
    started = time.perf_counter()
    try:
        network.install()
        module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
    except BaseException as exc:
        out.write(json.dumps({"ok": False, "phase": "init", "error": _error(exc), "calls": network.CALLS}) + "\n")
        return
    init_ms = (time.perf_counter() - started) * 1000
    modules = sorted({name.split(".")[0] for name in sys.modules})
    out.write(
        json.dumps({"ok": True, "phase": "init", "init_ms": init_ms, "modules": modules, "calls": network.CALLS}) + "\n"
    )
    timeout = float(os.environ["REHEARSAL_TIMEOUT_S"])
    for line in sys.stdin:
        request = json.loads(line)
        network.CALLS.clear()
        os.environ["_X_AMZN_TRACE_ID"] = (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        )
        began = time.perf_counter()
        try:
            result = handler(request["event"], Context(time.monotonic() + timeout))
            reply = {"ok": True, "result": _jsonable(result)}
        except BaseException as exc:  # Lambda reports the error and keeps the environment
            reply = {"ok": False, "error": _error(exc)}
        reply |= {"phase": "invoke", "duration_ms": (time.perf_counter() - began) * 1000, "calls": list(network.CALLS)}
        out.write(json.dumps(reply) + "\n")


def _jsonable(result: Any) -> Any:
    """The result as Lambda returns it: JSON, or ``Runtime.MarshalError`` when it is not serializable."""
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        raise MarshalError(f"Unable to marshal response: {exc}") from exc


class MarshalError(Exception):
    """What the Lambda runtime reports as ``Runtime.MarshalError``."""


def _error(exc: BaseException) -> dict[str, str]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": "".join(traceback.format_exception(exc))[-6000:],
    }


if __name__ == "__main__":
    main()
