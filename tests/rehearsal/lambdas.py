"""Run a synthesized function as Lambda runs it: a fresh Python 3.12 whose import path is only the staged code
asset, the staged layers and the runtime's own packages, with the template's environment (resolved against
the rehearsal's resources) plus the variables Lambda itself sets. See ``runtime/bootstrap.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.rehearsal.iam_check import ApiCall
from tests.rehearsal.template import ACCOUNT, REGION, FunctionDef

__all__ = ["Invocation", "LambdaProcess", "lambda_environment", "python_for"]

BOOTSTRAP = Path(__file__).with_name("runtime") / "bootstrap.py"
PYENV = Path("/root/.pyenv/versions")


def python_for(runtime: str) -> Path:
    """The interpreter of a Lambda runtime id (``python3.12``): the same minor version, or a clear failure."""
    version = runtime.removeprefix("python")
    candidates = sorted(PYENV.glob(f"{version}.*/bin/python{version}")) if PYENV.is_dir() else []
    for path in (*candidates, Path(f"/usr/bin/python{version}"), Path(f"/usr/local/bin/python{version}")):
        if path.is_file():
            return path
    raise RuntimeError(f"the rehearsal needs Python {version} (the Lambda runtime {runtime}); none found")


class FunctionFailed(AssertionError):
    pass


@dataclass
class Invocation:
    ok: bool
    result: Any
    error: Mapping[str, str] | None
    calls: list[ApiCall]
    duration_ms: float

    def raise_for_error(self, function: str) -> Invocation:
        if not self.ok:
            assert self.error is not None
            raise FunctionFailed(
                f"{function} failed: {self.error['errorType']}: {self.error['errorMessage']}\n"
                f"{self.error['stackTrace']}"
            )
        return self


def lambda_environment(fn: FunctionDef, variables: Mapping[str, str], credentials: Mapping[str, str]) -> dict[str, str]:
    """What Lambda puts in a function's environment: its configured variables and the reserved ones."""
    reserved = {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/04/[$LATEST]rehearsal",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",  # Lambda's is link-local; the rehearsal keeps to loopback
        "_AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1",
        "_AWS_XRAY_DAEMON_PORT": "2000",
        "_HANDLER": fn.handler,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **credentials,
    }
    clash = set(variables) & set(reserved)
    if clash:  # Lambda refuses to create a function that sets a reserved variable
        raise FunctionFailed(f"{fn.name} sets reserved environment variables: {sorted(clash)}")
    return {**variables, **reserved}


@dataclass
class LambdaProcess:
    """One warm execution environment of a function (init once, then invocations)."""

    fn: FunctionDef
    python: Path
    environment: Mapping[str, str]
    routes: list[tuple[str, str]]
    runtime_packages: Path | None
    log_file: Path
    init: dict[str, Any] = field(default_factory=dict)

    def start(self) -> LambdaProcess:
        opt = self.log_file.parent / f"opt-{self.fn.name}"
        _merge_layers(self.fn.layer_dirs, opt)
        read_end, write_end = os.pipe()
        env = {
            **self.environment,
            "LAMBDA_TASK_ROOT": str(self.fn.code_dir),
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "REHEARSAL_OPT": str(opt),
            "REHEARSAL_RUNTIME_PACKAGES": str(self.runtime_packages or ""),
            "REHEARSAL_ROUTES": json.dumps(self.routes),
            "REHEARSAL_RESULT_FD": str(write_end),
            "REHEARSAL_TIMEOUT_S": str(self.fn.timeout_s),
            "REHEARSAL_FUNCTION_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.fn.name}",
        }
        self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [str(self.python), "-S", "-E", "-B", str(BOOTSTRAP)],
            cwd=str(self.fn.code_dir),
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
        )
        os.close(write_end)
        self._results = os.fdopen(read_end, "r")
        self.init = self._read()
        return self

    def _read(self) -> dict[str, Any]:
        line = self._results.readline()
        if not line:
            raise FunctionFailed(f"{self.fn.name}: the runtime exited; log:\n{self.log_tail()}")
        return dict(json.loads(line))

    def log_tail(self, chars: int = 6000) -> str:
        self._log.flush()
        return self.log_file.read_text(errors="replace")[-chars:]

    @property
    def init_error(self) -> str | None:
        if self.init.get("ok"):
            return None
        error = self.init.get("error", {})
        return f"{error.get('errorType')}: {error.get('errorMessage')}\n{error.get('stackTrace', '')}"

    def invoke(self, event: Mapping[str, Any]) -> Invocation:
        if self.init_error:
            raise FunctionFailed(f"{self.fn.name} failed to initialise: {self.init_error}")
        assert self._process.stdin is not None
        self._process.stdin.write((json.dumps({"event": event}) + "\n").encode())
        self._process.stdin.flush()
        reply = self._read()
        calls = [ApiCall(**call, account=ACCOUNT) for call in reply["calls"]]
        return Invocation(reply["ok"], reply.get("result"), reply.get("error"), calls, reply["duration_ms"])

    def stop(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._results.close()
        self._log.close()


def _merge_layers(layers: tuple[Path, ...], opt: Path) -> None:
    """Lambda extracts each layer into /opt in order; here /opt is a folder of symlinks to the staged layers."""
    opt.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        for entry in layer.iterdir():
            target = opt / entry.name
            if not target.exists():
                target.symlink_to(entry)
