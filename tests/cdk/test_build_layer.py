"""scripts/build_layer.py: the pip command targets Lambda's platform without Docker; the package is copied."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.cdk.cdk_synth import ROOT

pytestmark = pytest.mark.cdk


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_layer", ROOT / "scripts" / "build_layer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_layer"] = module
    spec.loader.exec_module(module)
    return module


def test_requirements_are_the_lambda_dependencies() -> None:
    build = _script()
    reqs = build.requirements(ROOT / "pyproject.toml", ["aws"])
    names = " ".join(reqs)
    assert "pydantic" in names and "psycopg" in names and "opensearch-py" in names
    assert "torch" not in names and "llama" not in names


def test_local_extras_are_refused() -> None:
    with pytest.raises(SystemExit, match="refusing"):
        _script().requirements(ROOT / "pyproject.toml", ["local"])
    with pytest.raises(SystemExit, match="unknown extra"):
        _script().requirements(ROOT / "pyproject.toml", ["nope"])


def test_pip_command_is_binary_only_for_lambda(tmp_path: Path) -> None:
    cmd = _script().pip_command(tmp_path / "python", ["pydantic>=2"])
    joined = " ".join(cmd)
    assert "--only-binary=:all:" in cmd
    assert "--platform manylinux2014_x86_64" in joined
    assert "--python-version 3.12" in joined and "--implementation cp" in joined
    assert cmd[cmd.index("--target") + 1] == str(tmp_path / "python")


def test_copy_package(tmp_path: Path) -> None:
    dest = _script().copy_package(tmp_path)
    assert (dest / "__init__.py").is_file() and (dest / "settings.py").is_file()
    assert not list(dest.rglob("__pycache__"))


def test_dry_run_prints_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["--dry-run"]) == 0
    assert "--only-binary=:all:" in capsys.readouterr().out


def test_the_layer_ships_bytecode_the_runtime_uses_as_it_is(tmp_path: Path) -> None:
    """/opt is read-only in Lambda: without shipped bytecode every cold start compiles every module."""
    build = _script()
    python = build.runtime_python()
    if python is None:
        pytest.skip("no Python 3.12 here")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    assert build.precompile(tmp_path, python)
    [pyc] = (tmp_path / "pkg" / "__pycache__").glob("__init__.cpython-312.pyc")
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked: valid whatever the mtimes after unzipping


def test_without_the_runtime_python_the_layer_still_builds_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _script().precompile(tmp_path, None) is False
    assert "cold starts compile them" in capsys.readouterr().err
