"""What every `quarry` command shares: options, settings, the services' lifetime, error exits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from quarry.errors import NotFound, QuarryError
from quarry.models import Workspace
from quarry.settings import Settings

__all__ = [
    "CLI_USER",
    "DataDir",
    "JsonOpt",
    "WorkspaceOpt",
    "fail",
    "find_workspace",
    "guarded",
    "services_for",
    "settings_for",
]

T = TypeVar("T")

CLI_USER = "local"  # the identity of the command line and of `quarry serve`'s dev token


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where Quarry keeps its data (default ~/.quarry).")]
WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def settings_for(data_dir: Path | None, **overrides: Any) -> Settings:
    settings = Settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        update["data_dir"] = data_dir.expanduser().resolve()
    return settings.model_copy(update=update) if update else settings


@contextmanager
def services_for(settings: Settings) -> Iterator[Any]:
    from quarry.wiring import build_services

    services = build_services(settings)
    try:
        yield services
    finally:
        services.close()


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Turn domain errors into a clear message and a non-zero exit, never a traceback."""
    try:
        return fn()
    except QuarryError as exc:
        fail(exc.message)
    except ValueError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def find_workspace(services: Any, name: str) -> Workspace:
    workspace: Workspace | None = services.workspaces.find_by_name(CLI_USER, name)
    if workspace is None:
        raise NotFound(f"unknown workspace {name!r} (create it with `quarry ingest PATH --workspace {name}`)")
    return workspace
