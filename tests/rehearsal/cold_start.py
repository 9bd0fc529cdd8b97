"""Measure what a Lambda cold start costs: the layer's size and each function's init (handler import) time,
run as the rehearsal runs functions (staged code + layer, runtime boto3, template environment).

    python -m tests.rehearsal.cold_start --json [--repeat 5]

Used by ``scripts/update_benchmarks.py`` (section "lambda"). Needs what the rehearsal tier needs: the pinned
CDK CLI, Python 3.12 and a built layer (built here when missing or stale).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["folder_bytes", "main", "measure", "zipped_bytes"]


def folder_bytes(folder: Path) -> int:
    """Unzipped size, as Lambda counts it against its 250 MB limit (function + layers)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def zipped_bytes(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.tell()


def measure(repeat: int) -> dict[str, Any]:
    from tests.rehearsal import conftest as fixtures
    from tests.rehearsal.cloud import Cloud, Postgres
    from tests.rehearsal.lambdas import LambdaProcess, python_for
    from tests.rehearsal.platform import Rehearsal, Servers
    from tests.rehearsal.wire import DataApi, ManagementApi, ModelApis

    layer = fixtures.build_layer_dir()
    runtime = fixtures.install_runtime_packages()
    with tempfile.TemporaryDirectory() as tmp, fixtures.moto_server() as moto:
        assembly = fixtures.synth_with_cli(Path(tmp) / "default", None)
        servers = Servers(moto, ManagementApi(), ModelApis(lambda texts: [[0.0] * 384 for _ in texts]), DataApi(None))
        cloud = Cloud(assembly.template, moto, Postgres("127.0.0.1", 5432, "quarry")).create()
        rehearsal = Rehearsal(assembly, cloud, servers, Path(tmp), runtime)
        functions: dict[str, Any] = {}
        for name, fn in sorted(rehearsal.functions.items()):
            times = []
            for attempt in range(repeat):
                process = LambdaProcess(
                    fn=fn,
                    python=python_for(fn.runtime),
                    environment=rehearsal.environment(fn),
                    routes=servers.routes(),
                    runtime_packages=runtime,
                    log_file=Path(tmp) / f"{name}-{attempt}.log",
                ).start()
                process.stop()
                if process.init_error:
                    raise SystemExit(f"{name} failed to initialise: {process.init_error}")
                times.append(float(process.init["init_ms"]))
            functions[name] = {
                "memory_mb": fn.memory_mb,
                "init_ms_median": round(statistics.median(times), 1),
                "init_ms_max": round(max(times), 1),
                "modules": len(process.init["modules"]),
            }
            print(f"{name}: {functions[name]['init_ms_median']} ms", file=sys.stderr, flush=True)
        for server in (servers.management, servers.models, servers.data_api):
            server.close()
    site = layer / "python"
    return {
        "layer": {
            "unzipped_bytes": folder_bytes(layer),
            "zipped_bytes": zipped_bytes(layer),
            "packages": sorted(p.name for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")),
        },
        "runtime": "python3.12 (the rehearsal's interpreter, -S -E: code asset, layer, runtime boto3)",
        "repeat": repeat,
        "functions": functions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="cold starts per function (median reported)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (the only output form)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
