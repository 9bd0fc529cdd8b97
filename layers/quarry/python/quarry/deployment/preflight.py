"""Preflight: what must hold in an account before ``cdk deploy`` can succeed, checked in a minute, not an hour.

A failed deploy of this stack costs tens of minutes (CloudFormation creates Aurora and a CloudFront
distribution before it reaches what was missing) and can leave a rollback to clean up. Each check here
answers one question cheaply, and a failure says what is wrong *and* the command that fixes it:

1. ``credentials``: whose credentials, in which region (STS GetCallerIdentity); the account named in the
   deploy configuration, if any, must be theirs.
2. ``bootstrap``: ``cdk bootstrap`` has run in that account and region (and in us-east-1 when the UI's web
   ACL needs an edge stack there), recently enough: the SSM parameter
   ``/cdk-bootstrap/<qualifier>/version`` is what the stack's ``CheckBootstrapVersion`` rule and the CDK CLI
   read, and the stack's assets need version :data:`REQUIRED_BOOTSTRAP_VERSION`.
3. ``container``: ``cdk deploy`` builds the Batch worker's image (``batch_ingest/Dockerfile``) as a Docker
   image asset, so an engine must be installed *and* its daemon answer (``CDK_DOCKER`` or docker, finch,
   podman on ``PATH``).
4. ``bedrock``: every Bedrock model the configuration names is offered in the region and this account may
   call it (``GetFoundationModelAvailability``); a model without access otherwise fails at the first chat.
5. ``cost``: the monthly estimate of :mod:`quarry.deployment.cost`, and an optional ceiling on the idle cost.

Every AWS call goes through :class:`AwsClients`, built from one session: nothing is created at import, and
tests pass a session under moto or clients wrapped by botocore's ``Stubber``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import error_code
from quarry.deployment.config import DeployConfig
from quarry.deployment.waf import edge_stack_name, edge_stack_region
from quarry.errors import InvalidInput
from quarry.pricing import base_model_id

if TYPE_CHECKING:
    import boto3

__all__ = [
    "CHECKS",
    "CONTAINER_ENGINES",
    "REQUIRED_BOOTSTRAP_VERSION",
    "AwsClients",
    "CheckResult",
    "Preflight",
    "Status",
    "bedrock_model_ids",
    "run_preflight",
]

# DefaultStackSynthesizer's floor: the synthesized template's CheckBootstrapVersion rule rejects 1-5 and the
# assets manifest says requiresBootstrapStackVersion 6 (only the lookup role, unused by this app, asks for 8).
REQUIRED_BOOTSTRAP_VERSION = 6
DEFAULT_QUALIFIER = "hnb659fds"
CONTAINER_ENGINES = ("docker", "finch", "podman")
_ENGINE_START = {
    "docker": "start Docker Desktop, or the daemon: `sudo systemctl start docker`",
    "finch": "start its VM: `finch vm start`",
    "podman": "start its machine: `podman machine start` (Linux: `systemctl --user start podman.socket`)",
}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "UnauthorizedSSOTokenError", "SSOTokenLoadError"}
_SSO_EXPIRED = {"UnauthorizedSSOTokenError", "SSOTokenLoadError", "TokenRetrievalError"}

Runner = Callable[..., subprocess.CompletedProcess[Any]]


class Status(Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAILED


class AwsClients:
    """One boto3 session (given, or made from ``profile`` on first use) and one client per service."""

    def __init__(self, region: str, *, session: boto3.Session | None = None, profile: str | None = None) -> None:
        self.region = region
        self.profile = profile
        self._session = session
        self._clients: dict[str, LazyClient] = {}

    def session(self) -> boto3.Session:
        if self._session is None:
            import boto3

            self._session = boto3.Session(profile_name=self.profile)  # raises ProfileNotFound: a failed check
        return self._session

    def __call__(self, service: str, region: str | None = None) -> Any:
        """The client of ``service`` in ``region`` (default: the deployment's)."""
        key = f"{service}@{region or self.region}"
        if key not in self._clients:
            self._clients[key] = LazyClient(service, session=self.session(), region=region or self.region)
        return self._clients[key]()


@dataclass
class Preflight:
    """What the checks read, and what they learn for the steps after them (account, container engine)."""

    config: DeployConfig
    clients: AwsClients
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    run: Runner = subprocess.run
    max_monthly: float | None = None
    qualifier: str = DEFAULT_QUALIFIER
    account: str | None = None
    container_engine: str | None = None

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.env.get("PATH", ""))


Check = Callable[[Preflight], CheckResult]


# ------------------------------------------------------------------------------------ credentials


def _credential_failure(exc: Exception, ctx: Preflight) -> CheckResult:
    code = error_code(exc)
    profile = f" --profile {ctx.clients.profile}" if ctx.clients.profile else ""
    if code == "ProfileNotFound":
        return CheckResult(
            "credentials",
            Status.FAILED,
            f"the AWS profile {ctx.clients.profile!r} is not in your AWS config",
            "list the profiles with `aws configure list-profiles`, or create one with `aws configure sso`",
        )
    if code in ("NoCredentialsError", "PartialCredentialsError"):
        return CheckResult(
            "credentials",
            Status.FAILED,
            "no AWS credentials found (environment variables, shared config and credentials files, SSO, instance role)",
            "sign in with `aws configure sso` (or `aws configure`), "
            "then `export AWS_PROFILE=NAME` or pass --profile NAME",
        )
    if code in _EXPIRED or code in _SSO_EXPIRED:
        return CheckResult(
            "credentials",
            Status.FAILED,
            f"the AWS credentials have expired ({code})",
            f"refresh them: `aws sso login{profile}` (SSO) or new keys for the profile",
        )
    if code in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return CheckResult(
            "credentials",
            Status.FAILED,
            f"cannot reach AWS STS in {ctx.config.region}: {exc}",
            "check the network and any HTTPS proxy (HTTPS_PROXY), and that `region` in the deploy config is right",
        )
    return CheckResult(
        "credentials",
        Status.FAILED,
        f"AWS rejected the credentials ({code}): {exc}",
        "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile's keys (`aws sts get-caller-identity`)",
    )


def check_credentials(ctx: Preflight) -> CheckResult:
    from botocore.exceptions import BotoCoreError, ClientError

    region = ctx.config.region
    try:
        known = ctx.clients.session().get_available_regions("cloudformation")
        if known and region not in known:
            return CheckResult(
                "credentials",
                Status.FAILED,
                f"{region!r} is not an AWS region",
                f"set `region` in the deploy config to one of: {', '.join(sorted(known)[:6])}, ...",
            )
        identity = ctx.clients("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        return _credential_failure(exc, ctx)
    account, arn = identity["Account"], identity["Arn"]
    if ctx.config.account and ctx.config.account != account:
        return CheckResult(
            "credentials",
            Status.FAILED,
            f"the credentials are for account {account} ({arn}) "
            f"but the deploy config names account {ctx.config.account}",
            f'use credentials of account {ctx.config.account} (--profile NAME), or set `account = "{account}"`',
        )
    ctx.account = account
    return CheckResult("credentials", Status.OK, f"account {account} as {arn}, region {region}")


# ------------------------------------------------------------------------------------ CDK bootstrap


def check_bootstrap(ctx: Preflight) -> CheckResult:
    """The deployment's region, and us-east-1 too when the UI's web ACL needs an edge stack there."""
    regions = [ctx.config.region, *filter(None, [edge_stack_region(ctx.config)])]
    passed = []
    for region in regions:
        result = _check_bootstrap_in(ctx, region)
        if not result.ok:
            return result
        passed.append(result.message)
    return CheckResult("bootstrap", Status.OK, "; ".join(passed))


def _check_bootstrap_in(ctx: Preflight, region: str) -> CheckResult:
    from botocore.exceptions import BotoCoreError, ClientError

    target = f"aws://{ctx.account or ctx.config.account or 'ACCOUNT'}/{region}"
    why = "" if region == ctx.config.region else f" (the edge stack {edge_stack_name(ctx.config)} deploys there)"
    fix = f"bootstrap it once: `npx cdk bootstrap {target}` (upgrades an older bootstrap in place)"
    parameter = f"/cdk-bootstrap/{ctx.qualifier}/version"
    try:
        value = ctx.clients("ssm", region).get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return CheckResult(
                "bootstrap",
                Status.FAILED,
                f"{target}{why} is not bootstrapped for the CDK "
                f"(no SSM parameter {parameter}{_toolkit_note(ctx, region)})",
                fix,
            )
        return CheckResult(
            "bootstrap",
            Status.FAILED,
            f"cannot read the SSM parameter {parameter} in {region} ({error_code(exc)}): {exc}",
            "grant the deploying identity ssm:GetParameter on it (administrators have it), or --skip bootstrap",
        )
    except BotoCoreError as exc:
        return CheckResult("bootstrap", Status.FAILED, f"cannot read the SSM parameter {parameter}: {exc}", fix)
    version = int(value) if str(value).isdigit() else 0
    if version < REQUIRED_BOOTSTRAP_VERSION:
        return CheckResult(
            "bootstrap",
            Status.FAILED,
            f"{target}{why} has CDK bootstrap version {value}; the stack needs {REQUIRED_BOOTSTRAP_VERSION} or later",
            fix,
        )
    return CheckResult("bootstrap", Status.OK, f"{target} bootstrapped (version {version})")


def _toolkit_note(ctx: Preflight, region: str) -> str:
    """A CDKToolkit stack without the parameter means another qualifier (or a failed bootstrap): say so."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = ctx.clients("cloudformation", region).describe_stacks(StackName="CDKToolkit")["Stacks"]
    except (BotoCoreError, ClientError):
        return ""
    status = stacks[0]["StackStatus"] if stacks else ""
    return f"; a CDKToolkit stack exists ({status}), bootstrapped with another qualifier?" if status else ""


# ------------------------------------------------------------------------------------ container engine


def _engine(ctx: Preflight) -> str | None:
    """The engine's path: ``CDK_DOCKER`` if set (the CDK CLI honours it), else the first engine on ``PATH``."""
    chosen = ctx.env.get("CDK_DOCKER")
    if chosen:
        return ctx.which(chosen)
    return next((path for path in map(ctx.which, CONTAINER_ENGINES) if path), None)


def check_container_engine(ctx: Preflight) -> CheckResult:
    engine = _engine(ctx)
    if engine is None:
        named = ctx.env.get("CDK_DOCKER")
        where = f"CDK_DOCKER={named} is not on PATH" if named else "none of docker, finch, podman is on PATH"
        return CheckResult(
            "container",
            Status.FAILED,
            f"no container engine ({where}): `cdk deploy` builds the Batch worker image from batch_ingest/Dockerfile",
            "install Docker (https://docs.docker.com/get-docker/), or Finch/Podman and `export CDK_DOCKER=finch`",
        )
    name = os.path.basename(engine)
    start = _ENGINE_START.get(name, f"start {name}'s daemon")
    try:
        probe = ctx.run([engine, "info"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CheckResult("container", Status.FAILED, f"`{engine} info` did not answer: {exc}", start)
    if probe.returncode != 0:
        said = (probe.stderr or probe.stdout or "").strip().splitlines()
        detail = f": {said[-1]}" if said else ""
        return CheckResult(
            "container",
            Status.FAILED,
            f"{name} is installed but its daemon does not answer (`{engine} info` exited {probe.returncode}{detail})",
            start,
        )
    ctx.container_engine = engine
    return CheckResult("container", Status.OK, f"{name} (daemon answers)")


# ------------------------------------------------------------------------------------ Bedrock


def bedrock_model_ids(config: DeployConfig) -> list[str]:
    """Every Bedrock model the deployment calls: chat models, the embedder and the reranker it names."""
    if not config.bedrock.enabled:
        return []
    ids = list(config.bedrock.chat_model_ids)
    if config.embedder == "bedrock":
        ids.append(config.bedrock.embedding_model_id)
    if config.bedrock.rerank_model_id:
        ids.append(config.bedrock.rerank_model_id)
    return list(dict.fromkeys(ids))


def _model_problem(availability: Mapping[str, Any], region: str) -> str | None:
    if availability.get("regionAvailability") == "NOT_AVAILABLE":
        return f"not offered in {region}"
    agreement = availability.get("agreementAvailability", {}).get("status", "AVAILABLE")
    if availability.get("authorizationStatus") != "AUTHORIZED" or agreement != "AVAILABLE":
        return f"no access (authorization {availability.get('authorizationStatus')}, agreement {agreement})"
    if availability.get("entitlementAvailability") != "AVAILABLE":
        return "no access (not entitled)"
    return None


def check_bedrock(ctx: Preflight) -> CheckResult:
    from botocore.exceptions import BotoCoreError, ClientError

    region = ctx.config.region
    models = bedrock_model_ids(ctx.config)
    if not models:
        return CheckResult("bedrock", Status.SKIPPED, "Bedrock is not enabled in this configuration")
    problems: list[str] = []
    for model_id in models:
        try:
            availability = ctx.clients("bedrock").get_foundation_model_availability(modelId=base_model_id(model_id))
        except ClientError as exc:
            code = error_code(exc)
            if code == "AccessDeniedException":
                return CheckResult(
                    "bedrock",
                    Status.FAILED,
                    f"cannot check model access: {exc}",
                    "grant the deploying identity bedrock:GetFoundationModelAvailability, or --skip bedrock",
                )
            problems.append(f"{model_id}: unknown in {region} ({code})")
            continue
        except BotoCoreError as exc:
            return CheckResult("bedrock", Status.FAILED, f"cannot reach Bedrock in {region}: {exc}", None)
        problem = _model_problem(availability, region)
        if problem:
            problems.append(f"{model_id}: {problem}")
    if problems:
        return CheckResult(
            "bedrock",
            Status.FAILED,
            "Bedrock model access missing: " + "; ".join(problems),
            f"request access on the Bedrock console's Model access page "
            f"(https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/modelaccess; Anthropic models "
            "also need the one-time use-case form), or change the model ids in the deploy config (`quarry config`)",
        )
    return CheckResult("bedrock", Status.OK, f"access to {', '.join(models)}")


# ------------------------------------------------------------------------------------ cost


def check_cost(ctx: Preflight) -> CheckResult:
    from quarry.deployment.cost import estimate

    try:
        est = estimate(ctx.config)
    except InvalidInput as exc:
        return CheckResult("cost", Status.FAILED, f"no estimate: {exc.message}", "add the missing price, then retry")
    idle, chats, docs = est.total(est.idle), est.total(est.per_1000_chats), est.total(est.per_1000_documents)
    summary = f"idle ${idle:,.2f}/month; ${chats:,.2f} per 1,000 chats; ${docs:,.2f} per 1,000 documents"
    if ctx.max_monthly is not None and idle > ctx.max_monthly:
        return CheckResult(
            "cost",
            Status.FAILED,
            f"the idle estimate ${idle:,.2f}/month is over --max-monthly ${ctx.max_monthly:,.2f} ({summary})",
            "see what costs what with `quarry cost --config FILE` and switch always-on pieces off, "
            "or raise --max-monthly",
        )
    return CheckResult("cost", Status.OK, summary + " (`quarry cost` itemises it)")


CHECKS: tuple[tuple[str, Check], ...] = (
    ("credentials", check_credentials),
    ("bootstrap", check_bootstrap),
    ("container", check_container_engine),
    ("bedrock", check_bedrock),
    ("cost", check_cost),
)
_NEEDS_ACCOUNT = {"bootstrap", "bedrock"}


def run_preflight(
    ctx: Preflight,
    *,
    only: Sequence[str] | None = None,
    skip: Iterable[str] = (),
    report_all: bool = False,
    on_result: Callable[[CheckResult], None] = lambda result: None,
) -> list[CheckResult]:
    """Run the checks in order; stop at the first failure unless ``report_all``. ``on_result`` sees each."""
    skipped = set(skip)
    unknown = (skipped | set(only or ())) - {name for name, _ in CHECKS}
    if unknown:
        raise InvalidInput(
            f"unknown preflight check {', '.join(sorted(unknown))}; known: {', '.join(n for n, _ in CHECKS)}"
        )
    results: list[CheckResult] = []
    for name, check in CHECKS:
        if only is not None and name not in only:
            continue
        if name in skipped:
            result = CheckResult(name, Status.SKIPPED, "skipped (--skip)")
        elif name in _NEEDS_ACCOUNT and ctx.account is None and "credentials" not in skipped:
            result = CheckResult(name, Status.SKIPPED, "needs working credentials")
        else:
            result = check(ctx)
        results.append(result)
        on_result(result)
        if not result.ok and not report_all:
            break
    return results
