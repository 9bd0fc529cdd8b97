"""`quarry deploy` and `quarry destroy` (registered by :func:`register`, called from :mod:`quarry.cli`).

Argument parsing only; the steps are :mod:`quarry.deployment.deploy`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Deploy config file (JSON, TOML or YAML) over cdk.json; passed as -c config=FILE."
    ),
]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="AWS profile (default: the usual AWS lookup).")]
ProjectOpt = Annotated[
    Path, typer.Option("--project-dir", help="The Quarry checkout holding cdk.json (default: the current folder).")
]
SkipOpt = Annotated[
    list[str] | None,
    typer.Option("--skip", help="Skip a preflight check: credentials, bootstrap, container, bedrock, cost."),
]
AllOpt = Annotated[
    bool, typer.Option("--all", help="Run every preflight check and report each, not only up to the first failure.")
]


def _project(path: Path) -> Path:
    root = path.expanduser().resolve()
    if not (root / "cdk.json").is_file():
        typer.secho(
            f"error: {root} holds no cdk.json: run from the Quarry checkout or pass --project-dir",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    return root


def deploy(
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Deploy without asking (cdk --require-approval never).")
    ] = False,
    max_monthly: Annotated[
        float | None, typer.Option("--max-monthly", help="Fail the preflight when the idle estimate exceeds USD.")
    ] = None,
    preflight_only: Annotated[bool, typer.Option("--preflight-only", help="Check, then stop.")] = False,
    report_all: AllOpt = False,
    skip: SkipOpt = None,
    project_dir: ProjectOpt = Path("."),
) -> None:
    """Check the account (credentials, CDK bootstrap, container engine, Bedrock access, cost), build, cdk deploy."""
    from quarry.deployment.deploy import DeployOptions
    from quarry.deployment.deploy import deploy as run_deploy

    options = DeployOptions(
        root=_project(project_dir),
        config_file=config,
        profile=profile,
        yes=yes,
        max_monthly=max_monthly,
        skip=tuple(skip or ()),
        report_all=report_all,
        preflight_only=preflight_only,
    )
    raise typer.Exit(run_deploy(options))


def destroy(
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    project_dir: ProjectOpt = Path("."),
) -> None:
    """Delete the stack (cdk destroy) after a confirmation; data kept by `removal = "retain"` stays."""
    from quarry.deployment.deploy import DeployOptions
    from quarry.deployment.deploy import destroy as run_destroy

    options = DeployOptions(root=_project(project_dir), config_file=config, profile=profile, yes=yes)
    raise typer.Exit(run_destroy(options, confirm=lambda question: typer.confirm(question, default=False)))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `quarry` CLI."""
    app.command()(deploy)
    app.command()(destroy)
