#!/usr/bin/env python3
"""Build the shared Lambda layer without Docker: ``<out>/python/`` holds the quarry package and its
Lambda dependencies as manylinux x86_64 CPython 3.12 wheels (pip ``--platform ... --only-binary=:all:``).

    python scripts/build_layer.py [--out build/layer] [--extras lambda] [--dry-run]

The CDK app reads the folder named by ``DeployConfig.layer_asset_dir`` (default ``build/layer``) and builds
it itself when it is missing or stale (``quarry.deployment.layer.ensure_layer``); this command always
builds from scratch. The code lives in ``quarry.deployment.layer``, shared with ``app.py`` and ``quarry deploy``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layers" / "quarry" / "python" / "quarry"
if str(PACKAGE.parent) not in sys.path:  # runnable with any python3, installed package or not
    sys.path.insert(0, str(PACKAGE.parent))

from quarry.deployment import layer  # noqa: E402
from quarry.deployment.layer import (  # noqa: E402,F401  (the script's historical API)
    FORBIDDEN,
    LAMBDA_UNZIPPED_LIMIT,
    PLATFORMS,
    PYTHON_VERSION,
    pip_command,
    precompile,
    prune,
    requirements,
    runtime_python,
    size,
)


def copy_package(target: Path, source: Path = PACKAGE) -> Path:
    return layer.copy_package(target, source)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "layer")
    parser.add_argument("--extras", nargs="*", default=list(layer.DEFAULT_EXTRAS))
    parser.add_argument("--dry-run", action="store_true", help="print the pip command and stop")
    args = parser.parse_args(argv)
    if args.dry_run:
        print(" ".join(pip_command(args.out / "python", requirements(ROOT / "pyproject.toml", args.extras))))
        return 0
    total = layer.build_layer(ROOT, args.out, args.extras)
    print(f"layer at {args.out}: {total / 1e6:.1f} MB unzipped")
    if total > LAMBDA_UNZIPPED_LIMIT:
        print("warning: over Lambda's 250 MB unzipped limit (function + layers)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
