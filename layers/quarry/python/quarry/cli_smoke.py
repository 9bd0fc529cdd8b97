"""`quarry smoke`: check a running Quarry end to end as a user would (registered by :func:`register`).

This module only turns options into a target and prints; the checks are `quarry.deployment.smoke`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from quarry.cli_common import JsonOpt, fail

__all__ = ["register"]

_AWS_OUTPUTS = ("--api-url", "--ws-url", "--user-pool-id", "--client-id")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `quarry` CLI."""
    app.command(name="smoke")(smoke)


def smoke(
    url: Annotated[
        str | None, typer.Option("--url", help="A local `quarry serve`, e.g. http://127.0.0.1:8000.")
    ] = None,
    stack: Annotated[
        str | None, typer.Option("--stack", help="A deployed stack's name (its outputs are read).")
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="The stack's AWS region (default: your profile's).")
    ] = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help="Stack output RestApiUrl.")] = None,
    ws_url: Annotated[str | None, typer.Option("--ws-url", help="Stack output WebSocketUrl.")] = None,
    user_pool_id: Annotated[str | None, typer.Option("--user-pool-id", help="Stack output UserPoolId.")] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", help="Stack output UserPoolClientId.")] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Use this ID token instead of a temporary user (or the local dev token)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Longest wait of one step: processing, the answer, deletion (s).")
    ] = 900.0,
    as_json: JsonOpt = False,
) -> None:
    """Upload, wait for processing, chat and search as a throwaway user, then remove everything it made."""
    from quarry.deployment.smoke import SmokeOptions, StepResult, run_smoke

    target = _target(url, stack, region, api_url, ws_url, user_pool_id, client_id, token)

    def show(step: StepResult) -> None:
        if not as_json:
            mark, colour = ("✓", typer.colors.GREEN) if step.ok else ("✗", typer.colors.RED)
            typer.secho(f"  {mark} {step.name:<17} {step.seconds:8.2f} s  ", fg=colour, nl=False)
            typer.echo(step.detail)

    if not as_json:
        typer.echo(f"smoke: {target.description}")
    report = run_smoke(target, SmokeOptions(timeout_seconds=timeout), on_step=show)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    elif report.ok:
        typer.secho(f"smoke passed: {len(report.steps)} steps in {report.total_seconds:.1f} s", fg=typer.colors.GREEN)
    else:
        failure = report.failure
        assert failure is not None
        typer.secho(f"smoke FAILED at {failure.name!r}: {failure.detail}", fg=typer.colors.RED, err=True)
    if not report.ok:
        raise typer.Exit(1)


def _target(
    url: str | None,
    stack: str | None,
    region: str | None,
    api_url: str | None,
    ws_url: str | None,
    user_pool_id: str | None,
    client_id: str | None,
    token: str | None,
) -> Any:
    """The one target the options name; anything ambiguous or incomplete exits 2 with what to pass."""
    from quarry.deployment.smoke_target import CognitoTarget, LocalTarget, StackOutputs, StackTarget, StaticTarget

    outputs = {"--api-url": api_url, "--ws-url": ws_url, "--user-pool-id": user_pool_id, "--client-id": client_id}
    chosen = [name for name, given in (("--url", url), ("--stack", stack), ("--api-url ...", api_url)) if given]
    if len(chosen) != 1:
        fail(
            "say where to smoke, once: --url URL (quarry serve), --stack NAME [--region R], "
            f"or {' '.join(_AWS_OUTPUTS)}" + (f" (got {', '.join(chosen)})" if chosen else ""),
            code=2,
        )
    if url:
        return LocalTarget(url, token=token)
    if stack:
        session = _session(region)
        return StackTarget(
            stack,
            cloudformation=session.client("cloudformation"),
            cognito=session.client("cognito-idp"),
            token=token,
        )
    assert api_url is not None
    if not ws_url:
        fail("--ws-url is needed with --api-url (stack output WebSocketUrl)", code=2)
    assert ws_url is not None
    if token is not None:
        return StaticTarget(api_url, ws_url, token)
    missing = [name for name, given in outputs.items() if not given]
    if missing:
        fail(f"missing {', '.join(missing)} (stack outputs), or pass --token to sign in as yourself", code=2)
    assert user_pool_id is not None and client_id is not None
    from quarry.deployment.smoke_client import SmokeFailure
    from quarry.deployment.smoke_target import region_of_pool

    try:
        pool_region = region or region_of_pool(user_pool_id)
    except SmokeFailure as exc:
        fail(str(exc), code=2)
    session = _session(pool_region)
    return CognitoTarget(StackOutputs(api_url, ws_url, user_pool_id, client_id), session.client("cognito-idp"))


def _session(region: str | None) -> Any:
    import boto3

    session = boto3.Session(region_name=region) if region else boto3.Session()
    if not session.region_name:
        fail("no AWS region: pass --region, or set AWS_REGION / a profile's region", code=2)
    return session
