"""`quarry config`: write the deploy configuration file, guided or from flags (registered by :func:`register`).

Only prompting and printing live here; settings, validation, the minimal file and the estimate are
:mod:`quarry.deployment.wizard`'s, the questions :mod:`quarry.deployment.wizard_questions`'.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from quarry.deployment.config import DeployConfig
from quarry.deployment.cost import estimate
from quarry.deployment.cost import render as render_estimate
from quarry.deployment.wizard import (
    Setting,
    Totals,
    cdk_context,
    changes,
    configure,
    describe_totals,
    parse_setting,
    render,
    starting_point,
    totals,
    write,
)
from quarry.deployment.wizard_questions import QUESTIONS, Question
from quarry.errors import InvalidInput

__all__ = ["register"]

_EPILOG = (
    "Examples: `quarry config` (guided); `quarry config --from deploy.toml` (change a file); "
    "`quarry config --set opensearch.enabled=true --set bedrock.chat_model_ids='[\"amazon.nova-lite-v1:0\"]' "
    "--out deploy.toml --yes` (from flags). Then: quarry deploy --config deploy.toml."
)


def register(app: typer.Typer) -> None:
    """Add `quarry config` to the `quarry` CLI."""
    app.command("config", epilog=_EPILOG)(config_command)


def config_command(
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A DeployConfig field by dotted key; VALUE is parsed as JSON when it parses, else taken as a string.",
        ),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="Start from this deploy config file (its values become the defaults).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="File to write: .toml, .json or .yaml (default: the --from file, or deploy.toml)."),
    ] = None,
    cdk_json: Annotated[
        Path, typer.Option(help="cdk.json whose context.quarry the file is overlaid on when deploying.")
    ] = Path("cdk.json"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Write (or overwrite) the file without asking.")] = False,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--non-interactive",
            help="Ask each choice (default when stdin is a terminal), or take --set and keep everything else.",
        ),
    ] = None,
) -> None:
    """Write the deploy configuration file, validated by DeployConfig, showing the monthly estimate of each choice."""
    target = out or from_file or Path("deploy.toml")
    ask = sys.stdin.isatty() if interactive is None else interactive
    try:
        context = cdk_context(cdk_json)
        baseline, start = starting_point(context, from_file)
        chosen = configure(start, [parse_setting(text) for text in sets or []])
        render(changes(chosen, baseline), target)  # a value the format cannot hold fails before any question
        if ask:
            chosen = _interview(chosen, baseline, target)
        text = render(changes(chosen, baseline), target)
        _print_estimate(chosen)
        if ask:
            typer.echo(f"\n--- {target} ---\n{text}---")
        if not _may_write(target, ask=ask, yes=yes):
            typer.echo(f"{target} not written")
            return
        write(target, text, chosen, context)
    except InvalidInput as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {target}; deploy with: quarry deploy --config {target}")


# ---------------------------------------------------------------------------------------------- interactive


def _interview(config: DeployConfig, baseline: DeployConfig, target: Path) -> DeployConfig:
    """Ask every question that applies, re-asking an answer DeployConfig (or the file format) rejects."""
    before = _totals(config)
    typer.echo(f"Quarry deploy configuration ({target}); Enter keeps the value in brackets.")
    if before:
        typer.echo(describe_totals(before))
    for question in QUESTIONS:
        if not question.applies(config):
            continue
        config = _ask(question, config, baseline, target)
        now = _totals(config)
        if now:
            typer.secho(f"  {describe_totals(now, before)}", fg=typer.colors.CYAN)
        before = now
    return config


def _ask(question: Question, config: DeployConfig, baseline: DeployConfig, target: Path) -> DeployConfig:
    typer.secho(f"\n{question.help}", dim=True)
    while True:
        answer = typer.prompt(question.label, default=question.default(config))
        try:
            return _apply(config, baseline, target, question.parse(answer))
        except InvalidInput as exc:
            typer.secho(f"  {exc.message}", fg=typer.colors.RED, err=True)


def _apply(config: DeployConfig, baseline: DeployConfig, target: Path, settings: Sequence[Setting]) -> DeployConfig:
    chosen = configure(config, settings)
    render(changes(chosen, baseline), target)
    return chosen


# ---------------------------------------------------------------------------------------------- output


def _totals(config: DeployConfig) -> Totals | None:
    try:
        return totals(estimate(config))
    except InvalidInput as exc:  # a model with no list price: the file is still valid
        typer.secho(f"  estimate unavailable: {exc.message}", fg=typer.colors.YELLOW, err=True)
        return None


def _print_estimate(config: DeployConfig) -> None:
    try:
        typer.echo(render_estimate(estimate(config)))
    except InvalidInput as exc:
        typer.secho(f"estimate unavailable: {exc.message}", fg=typer.colors.YELLOW, err=True)


def _may_write(target: Path, *, ask: bool, yes: bool) -> bool:
    if yes:
        return True
    if ask:
        verb = "Overwrite" if target.exists() else "Write"
        return typer.confirm(f"{verb} {target}?", default=True)
    if target.exists():
        raise InvalidInput(f"{target} exists; pass --yes to overwrite it, or --out another file")
    return True
