#!/usr/bin/env python3
"""Build the shared Lambda layer without Docker: ``<out>/python/`` holds the quarry package and its
Lambda dependencies as manylinux x86_64 CPython 3.12 wheels (pip ``--platform ... --only-binary=:all:``).

    python scripts/build_layer.py [--out build/layer] [--extras lambda] [--dry-run]

The CDK app reads the folder named by ``DeployConfig.layer_asset_dir`` (default ``build/layer``).
Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 wheels are accepted
beside manylinux2014 ones.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layers" / "quarry" / "python" / "quarry"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
PYTHON_VERSION = "3.12"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Never in the Lambda path (heavy, local-only): refuse them if an extra pulls them in.
FORBIDDEN = ("torch", "llama-cpp-python", "unstructured", "sentence-transformers")


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


def copy_package(target: Path, source: Path = PACKAGE) -> Path:
    dest = target / "quarry"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "layer")
    parser.add_argument("--extras", nargs="*", default=["lambda"])
    parser.add_argument("--dry-run", action="store_true", help="print the pip command and stop")
    args = parser.parse_args(argv)
    target = args.out / "python"
    cmd = pip_command(target, requirements(ROOT / "pyproject.toml", args.extras))
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    if args.out.exists():
        shutil.rmtree(args.out)
    target.mkdir(parents=True)
    subprocess.run(cmd, check=True)
    copy_package(target)
    prune(target)
    precompile(target, runtime_python())
    total = size(args.out)
    print(f"layer at {args.out}: {total / 1e6:.1f} MB unzipped")
    if total > LAMBDA_UNZIPPED_LIMIT:
        print("warning: over Lambda's 250 MB unzipped limit (function + layers)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
