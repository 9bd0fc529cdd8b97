"""`quarry` commands for config (registered by :func:`register`, called from :mod:`quarry.cli`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `quarry` CLI."""
