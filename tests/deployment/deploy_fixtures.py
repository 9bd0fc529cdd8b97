"""What the deploy tests share: a fake account in moto, a Quarry checkout in a temporary folder, executables
on a controlled ``PATH``, and a runner that intercepts the external CLIs (pip, npm, cdk) and runs the rest."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from quarry.deployment.preflight import AwsClients

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
INTERCEPTED = ("pip", "npm", "cdk")
_run = subprocess.run  # the real one, also when a test puts a Runner in its place


def executable(folder: Path, name: str, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def answering_engine(folder: Path, name: str = "docker") -> Path:
    """A container engine whose daemon answers: ``<name> info`` exits 0."""
    return executable(folder, name, 'if [ "$1" = info ]; then echo "Server Version: 27.0"; exit 0; fi\nexit 2\n')


def clean_env(path: str) -> dict[str, str]:
    """No AWS settings and only the given PATH: what the deploy command may see of the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env["PATH"] = path
    return env


@dataclass
class Call:
    argv: list[str]
    cwd: Path | None
    env: dict[str, str] | None


@dataclass
class Runner:
    """subprocess.run with the external CLIs intercepted: pip "installs" one fake package, npm and cdk succeed.

    Everything else (the fake container engine, compileall) runs for real.
    """

    calls: list[Call] = field(default_factory=list)

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        program = Path(argv[0]).name
        is_pip = argv[1:4] == ["-m", "pip", "install"]
        if not (is_pip or program in INTERCEPTED):
            return _run(argv, **kwargs)
        cwd = kwargs.get("cwd")
        self.calls.append(Call(list(argv), Path(cwd) if cwd else None, kwargs.get("env")))
        if is_pip:
            target = Path(argv[argv.index("--target") + 1])
            (target / "fake_dependency").mkdir(parents=True)
            (target / "fake_dependency" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def programs(self) -> list[str]:
        return ["pip" if c.argv[1:3] == ["-m", "pip"] else Path(c.argv[0]).name + " " + c.argv[1] for c in self.calls]


def project(base: Path) -> Path:
    """A Quarry checkout as deploy reads it: cdk.json, pyproject, the package (linked), the pinned CLI, a
    built UI newer than its sources."""
    root = base / "quarry"
    root.mkdir()
    for name in ("cdk.json", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    (root / "layers" / "quarry" / "python").mkdir(parents=True)
    (root / "layers" / "quarry" / "python" / "quarry").symlink_to(ROOT / "layers" / "quarry" / "python" / "quarry")
    executable(root / "node_modules" / ".bin", "cdk", "exit 0\n")
    frontend = root / "frontend"
    (frontend / "src").mkdir(parents=True)
    (frontend / "src" / "main.tsx").write_text("export {};\n")
    (frontend / "index.html").write_text("<div id=root></div>\n")
    (frontend / "package.json").write_text('{"name": "ui"}\n')
    (frontend / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    (frontend / "node_modules").mkdir()
    lock = hashlib.sha256((frontend / "package-lock.json").read_bytes()).hexdigest()[:16]
    (frontend / "node_modules" / ".quarry-lock").write_text(lock + "\n")
    (frontend / "dist").mkdir()
    index = frontend / "dist" / "index.html"
    index.write_text("<html></html>\n")
    newest = max(p.stat().st_mtime for p in ROOT.joinpath("layers/quarry/python/quarry").rglob("protocol.py"))
    later = max(newest, (frontend / "src" / "main.tsx").stat().st_mtime) + 60
    os.utime(index, (later, later))
    return root


@pytest.fixture(name="aws")
def aws_fixture() -> Iterator[boto3.Session]:
    """A fake account (moto): a session with static test keys, nothing read from the machine."""
    with mock_aws():
        yield boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


def bootstrap(session: boto3.Session, region: str, version: str = "30") -> None:
    session.client("ssm", region_name=region).put_parameter(Name=BOOTSTRAP_PARAMETER, Value=version, Type="String")


def availability(model_id: str, *, authorized: bool = True, region_available: bool = True) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "agreementAvailability": {"status": "AVAILABLE"},
        "authorizationStatus": "AUTHORIZED" if authorized else "NOT_AUTHORIZED",
        "entitlementAvailability": "AVAILABLE",
        "regionAvailability": "AVAILABLE" if region_available else "NOT_AVAILABLE",
    }


def stub_bedrock(clients: AwsClients, answers: list[dict[str, Any]]) -> Stubber:
    """Bedrock's control plane (moto has no GetFoundationModelAvailability): one answer per model, in order."""
    stubber = Stubber(clients("bedrock"))
    for answer in answers:
        stubber.add_response("get_foundation_model_availability", answer, {"modelId": answer["modelId"]})
    stubber.activate()
    return stubber


def python_bin() -> str:
    return str(Path(sys.executable).parent)
