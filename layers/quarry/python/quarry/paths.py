"""Where the project's non-package folders are, for a checkout installed in editable mode."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FRONTEND_DIST", "LAMBDAS_DIR", "PROJECT_ROOT"]

# layers/quarry/python/quarry/paths.py -> the repository root is four folders up from the package.
PROJECT_ROOT = Path(__file__).resolve().parents[4]
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"
FRONTEND_DIST = PROJECT_ROOT / "frontend" / "dist"
