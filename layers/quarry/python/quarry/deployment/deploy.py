"""``quarry deploy`` / ``quarry destroy``: the five manual steps of a deployment as one checked command.

Deploy: preflight (:mod:`quarry.deployment.preflight`, stops at the first failure with its fix), then the
build (the pinned CDK CLI if missing, the Lambda layer if stale, the UI if its sources are newer than
``frontend/dist``), then the pinned ``cdk deploy``. Destroy: the credentials check, a confirmation, what
``removal = "retain"`` keeps, then ``cdk destroy --force``.

The CDK CLI is the one pinned in ``package.json`` (``node_modules/.bin/cdk``), run from the project root with
the same ``cdk.json`` and ``-c config=FILE`` as ``cdk synth``, so the cloud assembly is the one the tests
synthesize and rehearse. Its environment puts this interpreter's folder first on ``PATH`` (``cdk.json`` runs
``python3 app.py``: the project's venv, as if activated), pins the region to the configuration's, and names
the container engine the preflight found (``CDK_DOCKER``) when it is not ``docker``. Every subprocess goes
through one injectable runner, so tests intercept the exact ``cdk deploy`` invocation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quarry.deployment.config import DeployConfig, load_config
from quarry.deployment.layer import ensure_project_layer
from quarry.deployment.preflight import AwsClients, CheckResult, Preflight, Status, run_preflight
from quarry.deployment.waf import edge_stack_name
from quarry.errors import InvalidInput

__all__ = [
    "DeployOptions",
    "Output",
    "build_ui",
    "cdk_argv",
    "cdk_env",
    "deploy",
    "destroy",
    "read_deploy_config",
    "retained_on_destroy",
]

Runner = Callable[..., subprocess.CompletedProcess[Any]]
PINNED_CLI = Path("node_modules") / ".bin" / "cdk"
OUTPUTS_FILE = Path("build") / "stack-outputs.json"  # the stack outputs `quarry smoke` can read
UI_SOURCES = ("frontend/src", "frontend/index.html", "layers/quarry/python/quarry/protocol.py")
EXIT_PREFLIGHT = 1
EXIT_CONFIG = 2


class StepFailed(Exception):
    """A build step failed; the message says which and what to do."""


@dataclass(frozen=True)
class DeployOptions:
    root: Path
    config_file: Path | None = None
    profile: str | None = None
    yes: bool = False
    max_monthly: float | None = None
    skip: tuple[str, ...] = ()
    report_all: bool = False
    preflight_only: bool = False


class Output:
    """Progress on stdout, failures on stderr (so a pipeline sees only what went wrong on stderr)."""

    def info(self, line: str) -> None:
        print(line, flush=True)

    def error(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def result(self, result: CheckResult) -> None:
        if result.status is Status.FAILED:
            self.error(f"[FAILED] {result.name}: {result.message}")
            if result.fix:
                self.error(f"         fix: {result.fix}")
        else:
            self.info(f"[{'ok' if result.status is Status.OK else 'skip'}] {result.name}: {result.message}")


# ------------------------------------------------------------------------------------ configuration


def read_deploy_config(root: Path, config_file: Path | None) -> DeployConfig:
    """``cdk.json``'s ``context.quarry`` overlaid by the file, exactly as ``app.py`` reads them."""
    cdk_json = root / "cdk.json"
    context: Any = {}
    if cdk_json.is_file():
        try:
            context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {}).get("quarry", {})
        except (ValueError, AttributeError) as exc:
            raise InvalidInput(f"{cdk_json} is not valid JSON: {exc}") from exc
    return load_config(context if isinstance(context, dict) else {}, config_file)


# ------------------------------------------------------------------------------------ build


def _newest(paths: Sequence[Path]) -> float:
    newest = 0.0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def build_ui(root: Path, config: DeployConfig, run: Runner, log: Callable[[str], None]) -> None:
    """``npm ci`` when the lock file changed, ``npm run build`` when a source is newer than the build.

    Uses the lock stamp ``scripts/bootstrap.sh`` writes, so the two never install twice.
    """
    frontend = root / "frontend"
    dist = config.resolve(config.frontend.dist_dir, root)
    if not (frontend / "package.json").is_file() or dist.resolve() != (frontend / "dist").resolve():
        log(f"UI: using {dist} as it is (not the project's frontend/dist build)")
        return
    lock = frontend / "package-lock.json"
    stamp = frontend / "node_modules" / ".quarry-lock"
    want = hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.is_file() else ""
    if not stamp.is_file() or stamp.read_text().strip() != want:
        log("UI: installing its npm packages (npm ci)")
        _step(run, ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], frontend, "npm ci in frontend/")
        stamp.write_text(want + "\n")
    index = dist / "index.html"
    if index.is_file() and index.stat().st_mtime >= _newest([root / s for s in UI_SOURCES]):
        log("UI: frontend/dist is newer than its sources: not rebuilt")
        return
    log("UI: building frontend/dist (npm run build)")
    _step(run, ["npm", "run", "--silent", "build"], frontend, "npm run build in frontend/")


def _step(run: Runner, argv: list[str], cwd: Path, what: str) -> None:
    try:
        run(argv, cwd=cwd, check=True)
    except FileNotFoundError as exc:
        raise StepFailed(f"{what}: {argv[0]} not found; install Node.js 20 or later (https://nodejs.org)") from exc
    except subprocess.CalledProcessError as exc:
        raise StepFailed(f"{what} failed (exit {exc.returncode}); its output is above") from exc


def _ensure_cli(root: Path, run: Runner, log: Callable[[str], None]) -> None:
    if (root / PINNED_CLI).is_file():
        return
    log("installing the pinned CDK CLI (npm ci at the project root)")
    _step(run, ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], root, "npm ci (the pinned CDK CLI)")


def _build(root: Path, config: DeployConfig, run: Runner, log: Callable[[str], None]) -> None:
    _ensure_cli(root, run, log)
    layer_dir = config.resolve(config.layer_asset_dir, root)
    state = ensure_project_layer(root, layer_dir, run=run, log=log)
    log(f"layer: {layer_dir} ({'as configured' if state is None else state.value})")
    build_ui(root, config, run, log)


# ------------------------------------------------------------------------------------ the CDK CLI


def cdk_argv(
    root: Path, verb: str, config: DeployConfig, *, config_file: Path | None, profile: str | None, yes: bool
) -> list[str]:
    """The pinned CLI's command line for ``deploy`` or ``destroy`` of this configuration's stack."""
    argv = [str(root / PINNED_CLI), verb, config.stack_name]
    if verb == "deploy":  # the edge stack, if any, is a dependency: deployed first without being named
        # never: `--yes` said so; broadening: the CLI itself asks before widening IAM or security groups
        argv += ["--require-approval", "never" if yes else "broadening", "--outputs-file", str(root / OUTPUTS_FILE)]
    else:  # named, since destroying a stack leaves the stacks it depends on
        argv += [*filter(None, [edge_stack_name(config)]), "--force"]  # the confirmation was ours
    if config_file is not None:
        argv += ["-c", f"config={config_file.resolve()}"]
    if profile:
        argv += ["--profile", profile]
    return argv


def cdk_env(base: Mapping[str, str], config: DeployConfig, engine: str | None) -> dict[str, str]:
    env = dict(base)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = config.region
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if engine and os.path.basename(engine) != "docker":
        env["CDK_DOCKER"] = engine
    return env


# ------------------------------------------------------------------------------------ commands


def _start(
    options: DeployOptions, clients: AwsClients | None, env: Mapping[str, str] | None, run: Runner, out: Output
) -> Preflight | None:
    try:
        config = read_deploy_config(options.root, options.config_file)
    except InvalidInput as exc:
        out.error(f"error: {exc.message}")
        return None
    return Preflight(
        config=config,
        clients=clients or AwsClients(config.region, profile=options.profile),
        env=dict(os.environ if env is None else env),
        run=run,
        max_monthly=options.max_monthly,
    )


def _preflight(ctx: Preflight, options: DeployOptions, out: Output, only: Sequence[str] | None = None) -> bool:
    try:
        results = run_preflight(ctx, only=only, skip=options.skip, report_all=options.report_all, on_result=out.result)
    except InvalidInput as exc:
        out.error(f"error: {exc.message}")
        return False
    failed = [r.name for r in results if not r.ok]
    if failed:
        out.error(f"preflight failed at {', '.join(failed)}: nothing was built or deployed")
    return not failed


def deploy(
    options: DeployOptions,
    *,
    clients: AwsClients | None = None,
    env: Mapping[str, str] | None = None,
    run: Runner = subprocess.run,
    out: Output | None = None,
) -> int:
    """Preflight, build, ``cdk deploy``; returns the exit code (the CLI's own once it runs)."""
    out = out or Output()
    ctx = _start(options, clients, env, run, out)
    if ctx is None:
        return EXIT_CONFIG
    if not _preflight(ctx, options, out):
        return EXIT_PREFLIGHT
    if options.preflight_only:
        return 0
    try:
        _build(options.root, ctx.config, run, out.info)
    except (StepFailed, InvalidInput) as exc:
        out.error(f"error: {exc}")
        return 1
    argv = cdk_argv(
        options.root, "deploy", ctx.config, config_file=options.config_file, profile=options.profile, yes=options.yes
    )
    out.info(f"$ {shlex.join(argv)}")
    code = run(argv, cwd=options.root, env=cdk_env(ctx.env, ctx.config, ctx.container_engine)).returncode
    if code == 0:
        out.info(
            f"deployed: stack outputs in {OUTPUTS_FILE}; check it with `quarry smoke --stack {ctx.config.stack_name}`"
        )
    else:
        out.error(f"error: cdk deploy exited with {code}; CloudFormation's events above say which resource failed")
    return int(code)


def retained_on_destroy(config: DeployConfig) -> list[str]:
    """What deleting the stack leaves behind, so nobody is surprised by a bill or by lost data."""
    if config.is_destroy:
        return ['removal = "destroy": the buckets, tables, user pool, key and database are deleted with the stack']
    kept = [
        'removal = "retain" keeps the S3 buckets, the DynamoDB tables, the Cognito user pool and the KMS key: '
        "delete them by hand when their data is no longer needed",
    ]
    if config.aurora.enabled:
        kept.append(
            "the Aurora cluster has deletion protection, so the delete stops at it: turn it off first "
            "(`aws rds modify-db-cluster --db-cluster-identifier ID --no-deletion-protection --apply-immediately`); "
            "CloudFormation then keeps a final snapshot"
        )
    return kept


def destroy(
    options: DeployOptions,
    *,
    clients: AwsClients | None = None,
    env: Mapping[str, str] | None = None,
    run: Runner = subprocess.run,
    out: Output | None = None,
    confirm: Callable[[str], bool] = lambda question: False,
) -> int:
    """Credentials, what stays, a confirmation (unless ``yes``), then ``cdk destroy --force``."""
    out = out or Output()
    ctx = _start(options, clients, env, run, out)
    if ctx is None:
        return EXIT_CONFIG
    if not _preflight(ctx, options, out, only=("credentials",)):
        return EXIT_PREFLIGHT
    for line in retained_on_destroy(ctx.config):
        out.info(line)
    where = f"account {ctx.account or ctx.config.account or '?'}, {ctx.config.region}"
    edge = edge_stack_name(ctx.config)
    stacks = f"stacks {ctx.config.stack_name} and {edge}" if edge else f"stack {ctx.config.stack_name}"
    if not options.yes and not confirm(f"Delete the {stacks} ({where})?"):
        out.error("nothing deleted (confirm, or pass --yes)")
        return 1
    try:
        _ensure_cli(options.root, run, out.info)
    except StepFailed as exc:
        out.error(f"error: {exc}")
        return 1
    argv = cdk_argv(
        options.root, "destroy", ctx.config, config_file=options.config_file, profile=options.profile, yes=options.yes
    )
    out.info(f"$ {shlex.join(argv)}")
    code = run(argv, cwd=options.root, env=cdk_env(ctx.env, ctx.config, None)).returncode
    if code != 0:
        out.error(f"error: cdk destroy exited with {code}; CloudFormation's events above say what stopped it")
    return int(code)
