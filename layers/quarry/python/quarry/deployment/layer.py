"""The shared Lambda layer: built without Docker, and rebuilt only as much as what changed needs.

``<out>/python/`` holds the quarry package and its Lambda dependencies as manylinux x86_64 CPython 3.12
wheels (pip ``--platform ... --only-binary=:all:``). Lambda's python3.12 runtime is Amazon Linux 2023
(glibc 2.34), so manylinux_2_28 wheels are accepted beside manylinux2014 ones.

Two stamps in ``<out>`` say what a built layer was built from, so ``app.py`` (every ``cdk synth`` and
``cdk deploy``), ``quarry deploy`` and the rehearsal tests share one build and redo only what is stale:

* ``.requirements-stamp``: a digest of ``pyproject.toml`` and of the pip command this module builds. It
  changes only when a dependency or the target platform does; then pip runs again (it needs the package
  index, never Docker).
* ``.package-stamp``: a digest of the quarry package's sources. When only it differs, the package is copied
  in again and precompiled: offline, a few seconds.

Used by ``scripts/build_layer.py`` (the command) and :func:`ensure_layer` (the automatic path).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from quarry.errors import InvalidInput

__all__ = [
    "DEFAULT_EXTRAS",
    "FORBIDDEN",
    "LAMBDA_UNZIPPED_LIMIT",
    "PLATFORMS",
    "PYTHON_VERSION",
    "LayerState",
    "build_layer",
    "copy_package",
    "ensure_layer",
    "ensure_project_layer",
    "layer_state",
    "package_digest",
    "pip_command",
    "precompile",
    "prune",
    "requirements",
    "requirements_digest",
    "runtime_python",
    "size",
]

PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
PYTHON_VERSION = "3.12"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Never in the Lambda path (heavy, local-only): refuse them if an extra pulls them in.
FORBIDDEN = ("torch", "llama-cpp-python", "unstructured", "sentence-transformers")
DEFAULT_EXTRAS = ("lambda",)
PROJECT_LAYER_DIR = "build/layer"  # DeployConfig.layer_asset_dir's default: the folder this module manages
REQUIREMENTS_STAMP = ".requirements-stamp"
PACKAGE_STAMP = ".package-stamp"
_IGNORED = ("__pycache__", "*.pyc")

Runner = Callable[..., Any]  # subprocess.run's shape: tests intercept pip here


def requirements(pyproject: Path, extras: Sequence[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"unknown extra {extra!r}; pyproject has {', '.join(sorted(optional))}")
        reqs += optional[extra]
    bad = [r for r in reqs if r.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() in FORBIDDEN]
    if bad:
        raise SystemExit(f"refusing Lambda-incompatible dependencies: {', '.join(bad)}")
    return reqs


def pip_command(target: Path, reqs: Sequence[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--target", str(target), "--only-binary=:all:"]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cmd += ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--upgrade", "--no-compile", *reqs]
    return cmd


def copy_package(target: Path, source: Path) -> Path:
    dest = target / "quarry"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*_IGNORED))
    return dest


def prune(target: Path) -> None:
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def runtime_python(version: str = PYTHON_VERSION) -> Path | None:
    """An interpreter of the Lambda runtime's version that runs, to precompile the layer for it."""
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True) if pyenv.is_dir() else []
    found = shutil.which(f"python{version}")  # may be a pyenv shim that runs nothing: tried last
    for python in [*candidates, *([Path(found)] if found else [])]:
        if subprocess.run([str(python), "-c", "pass"], capture_output=True).returncode == 0:
            return python
    return None


def precompile(target: Path, python: Path | None) -> bool:
    """Ship bytecode for the runtime's Python: ``/opt`` is read-only in Lambda, so without it every cold
    start compiles each module from source again (about half the import time of the handlers). The
    unchecked-hash mode makes the interpreter use it whatever the timestamps after unzipping."""
    if python is None:
        print(
            f"warning: no python{PYTHON_VERSION} found: the layer ships sources only and cold starts compile them",
            file=sys.stderr,
        )
        return False
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(target)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return True


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------ what is stale


def _digest(parts: Sequence[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


def requirements_digest(pyproject: Path, extras: Sequence[str] = DEFAULT_EXTRAS) -> str:
    """What the dependencies were installed from: the requirements and the platform pip targeted."""
    command = pip_command(Path("python"), requirements(pyproject, extras))[1:]  # not the interpreter's path
    return _digest([" ".join(command).encode()])


def package_digest(package: Path) -> str:
    """The quarry package's sources (names and bytes; caches ignored)."""
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return _digest([part for p in files for part in (p.relative_to(package).as_posix().encode(), p.read_bytes())])


class LayerState(Enum):
    FRESH = "fresh"
    PACKAGE_STALE = "package_stale"  # the dependencies are current; the quarry sources changed
    MISSING = "missing"  # never built, or built from other requirements


@dataclass(frozen=True)
class _Stamps:
    requirements: str
    package: str


def _wanted(root: Path, extras: Sequence[str]) -> _Stamps:
    return _Stamps(
        requirements=requirements_digest(root / "pyproject.toml", extras),
        package=package_digest(_package(root)),
    )


def _package(root: Path) -> Path:
    return root / "layers" / "quarry" / "python" / "quarry"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def layer_state(root: Path, out: Path, extras: Sequence[str] = DEFAULT_EXTRAS) -> LayerState:
    wanted = _wanted(root, extras)
    if _read(out / REQUIREMENTS_STAMP) != wanted.requirements or not (out / "python").is_dir():
        return LayerState.MISSING
    if _read(out / PACKAGE_STAMP) != wanted.package or not (out / "python" / "quarry" / "__init__.py").is_file():
        return LayerState.PACKAGE_STALE
    return LayerState.FRESH


def _refresh_package(root: Path, out: Path) -> None:
    package = copy_package(out / "python", _package(root))
    precompile(package, runtime_python())
    (out / PACKAGE_STAMP).write_text(package_digest(_package(root)) + "\n", encoding="utf-8")


def build_layer(root: Path, out: Path, extras: Sequence[str] = DEFAULT_EXTRAS, *, run: Runner | None = None) -> int:
    """Build the whole layer from scratch: pip for the dependencies, then the package. Returns its size."""
    reqs = requirements(root / "pyproject.toml", extras)
    if out.exists():
        shutil.rmtree(out)
    target = out / "python"
    target.mkdir(parents=True)
    # pip's output to stderr: stdout stays the caller's (the rehearsal's JSON reports)
    (run or subprocess.run)(pip_command(target, reqs), check=True, stdout=sys.stderr)
    prune(target)
    _refresh_package(root, out)
    (out / REQUIREMENTS_STAMP).write_text(requirements_digest(root / "pyproject.toml", extras) + "\n", encoding="utf-8")
    return size(out)


def ensure_layer(
    root: Path,
    out: Path,
    extras: Sequence[str] = DEFAULT_EXTRAS,
    *,
    run: Runner | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> LayerState:
    """Make ``out`` a current layer, doing no more than what changed needs; returns the state it was in.

    This is why a fresh clone's ``cdk synth`` works without a manual build step, and why a synth after
    editing the package ships the edit instead of the last build.
    """
    state = layer_state(root, out, extras)
    if state is LayerState.MISSING:
        log(f"building the Lambda layer at {out} (pip, manylinux wheels for Python {PYTHON_VERSION}; no Docker)")
        total = build_layer(root, out, extras, run=run)
        log(f"layer at {out}: {total / 1e6:.1f} MB unzipped")
        if total > LAMBDA_UNZIPPED_LIMIT:
            log("warning: over Lambda's 250 MB unzipped limit (function + layers)")
    elif state is LayerState.PACKAGE_STALE:
        log(f"the quarry package changed: copying it into the layer at {out} (offline)")
        _refresh_package(root, out)
    return state


def ensure_project_layer(
    root: Path,
    layer_dir: Path,
    *,
    run: Runner | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> LayerState | None:
    """:func:`ensure_layer` for the project's own ``build/layer``; ``None`` for any other folder.

    A ``layer_asset_dir`` set in the deploy configuration is the owner's (a CI artefact, the tests' source-only
    layer): it is used as it is, never overwritten.
    """
    if layer_dir.resolve() != (root / PROJECT_LAYER_DIR).resolve():
        return None
    try:
        return ensure_layer(root, layer_dir, run=run, log=log)
    except subprocess.CalledProcessError as exc:
        raise InvalidInput(
            f"building the Lambda layer at {layer_dir} failed: pip exited with {exc.returncode} (its output is above). "
            "pip fetches manylinux wheels from the package index: check the network or the pip index settings, "
            "then run `python scripts/build_layer.py`"
        ) from exc
