"""`quarry deploy` / `quarry destroy` / `make deploy`: preflight first, then the build, then the pinned CDK CLI,
whose exact invocation a test intercepts (the runner; pip and npm are intercepted the same way)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest

from quarry.deployment.deploy import DeployOptions, deploy, destroy
from quarry.deployment.layer import LayerState, layer_state
from quarry.deployment.preflight import AwsClients
from tests.deployment.deploy_fixtures import (
    ACCOUNT,
    ROOT,
    Runner,
    answering_engine,
    availability,
    aws_fixture,  # noqa: F401  (the `aws` fixture)
    bootstrap,
    clean_env,
    project,
    python_bin,
    stub_bedrock,
)

REGION = "eu-west-1"


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(f'region = "{REGION}"\n[bedrock]\nchat_model_ids = ["amazon.nova-lite-v1:0"]\n')
    return path


def _ready_account(session: boto3.Session, engine: str = "docker", *, tmp_path: Path) -> tuple[AwsClients, str]:
    """Bootstrapped, an answering engine on PATH, access to the default models: everything deploy checks."""
    bootstrap(session, REGION)
    answering_engine(tmp_path / "bin", engine)
    clients = AwsClients(REGION, session=session)
    stub_bedrock(clients, [availability("amazon.nova-lite-v1:0"), availability("amazon.titan-embed-text-v2:0")])
    return clients, str(tmp_path / "bin")


def test_without_credentials_it_stops_at_the_credentials_check(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    env = clean_env(os.environ["PATH"]) | {
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "quarry"), "deploy"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[FAILED] credentials: no AWS credentials found" in result.stderr
    assert "fix: sign in with `aws configure sso`" in result.stderr
    assert "preflight failed at credentials: nothing was built or deployed" in result.stderr
    assert "bootstrap" not in result.stdout + result.stderr  # stopped there


@pytest.mark.aws
def test_missing_bootstrap_stops_before_building(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, runner = project(tmp_path), Runner()
    options = DeployOptions(root=root, config_file=_config_file(tmp_path), yes=True)
    code = deploy(options, clients=AwsClients(REGION, session=aws), env=clean_env(str(tmp_path / "bin")), run=runner)
    assert code == 1
    assert f"cdk bootstrap aws://{ACCOUNT}/{REGION}" in capsys.readouterr().err
    assert runner.calls == []  # nothing built, nothing deployed


@pytest.mark.aws
def test_no_container_engine_stops_before_building(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap(aws, REGION)
    root, runner = project(tmp_path), Runner()
    options = DeployOptions(root=root, config_file=_config_file(tmp_path), yes=True)
    code = deploy(options, clients=AwsClients(REGION, session=aws), env=clean_env(str(tmp_path / "bin")), run=runner)
    assert code == 1
    err = capsys.readouterr().err
    assert "[FAILED] container: no container engine" in err and "batch_ingest/Dockerfile" in err
    assert runner.calls == []


@pytest.mark.aws
def test_a_model_without_access_stops_at_bedrock(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap(aws, REGION)
    answering_engine(tmp_path / "bin")
    clients = AwsClients(REGION, session=aws)
    stub_bedrock(
        clients,
        [availability("amazon.nova-lite-v1:0", region_available=False), availability("amazon.titan-embed-text-v2:0")],
    )
    root, runner = project(tmp_path), Runner()
    options = DeployOptions(root=root, config_file=_config_file(tmp_path), yes=True)
    assert deploy(options, clients=clients, env=clean_env(str(tmp_path / "bin")), run=runner) == 1
    assert f"amazon.nova-lite-v1:0: not offered in {REGION}" in capsys.readouterr().err
    assert runner.calls == []


@pytest.mark.aws
def test_a_ready_account_reaches_the_pinned_cdk_deploy(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clients, path = _ready_account(aws, tmp_path=tmp_path)
    root, runner, config = project(tmp_path), Runner(), _config_file(tmp_path)
    options = DeployOptions(root=root, config_file=config, yes=True)

    assert deploy(options, clients=clients, env=clean_env(path), run=runner) == 0

    # the layer was built (pip), the UI was not rebuilt (dist newer than its sources), then cdk deploy ran
    assert runner.programs() == ["pip", "cdk deploy"]
    assert layer_state(root, root / "build" / "layer") is LayerState.FRESH
    assert (root / "build" / "layer" / "python" / "quarry" / "__init__.py").is_file()
    cdk = runner.calls[-1]
    assert cdk.argv == [
        str(root / "node_modules" / ".bin" / "cdk"),
        "deploy",
        "Quarry",
        "--require-approval",
        "never",
        "--outputs-file",
        str(root / "build" / "stack-outputs.json"),
        "-c",
        f"config={config}",
    ]
    assert cdk.cwd == root
    assert cdk.env is not None
    assert cdk.env["PATH"].split(os.pathsep)[:2] == [python_bin(), path]  # cdk.json's `python3` is the venv's
    assert cdk.env["AWS_REGION"] == cdk.env["AWS_DEFAULT_REGION"] == REGION
    assert "CDK_DOCKER" not in cdk.env  # docker is the CLI's default
    out = capsys.readouterr().out
    assert "[ok] credentials" in out and "[ok] bedrock" in out and "not rebuilt" in out


@pytest.mark.aws
def test_without_yes_the_cli_asks_before_broadening_and_finch_is_named(aws: boto3.Session, tmp_path: Path) -> None:
    clients, path = _ready_account(aws, "finch", tmp_path=tmp_path)
    root, runner = project(tmp_path), Runner()
    os.utime(root / "frontend" / "dist" / "index.html", (0, 0))  # older than its sources: rebuilt
    options = DeployOptions(root=root, config_file=_config_file(tmp_path), profile="ops")

    assert deploy(options, clients=clients, env=clean_env(path), run=runner) == 0

    assert runner.programs() == ["pip", "npm run", "cdk deploy"]
    assert runner.calls[1].cwd == root / "frontend"
    cdk = runner.calls[-1]
    assert cdk.argv[3:5] == ["--require-approval", "broadening"]
    assert cdk.argv[-2:] == ["--profile", "ops"]
    assert cdk.env is not None and cdk.env["CDK_DOCKER"] == str(tmp_path / "bin" / "finch")


@pytest.mark.aws
def test_a_failed_cdk_deploy_is_the_exit_code(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clients, path = _ready_account(aws, tmp_path=tmp_path)
    root = project(tmp_path)

    class Failing(Runner):
        def __call__(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[object]:
            done = super().__call__(argv, **kwargs)
            return subprocess.CompletedProcess(argv, 3 if argv[1:2] == ["deploy"] else done.returncode)

    options = DeployOptions(root=root, config_file=_config_file(tmp_path), yes=True)
    assert deploy(options, clients=clients, env=clean_env(path), run=Failing()) == 3
    assert "cdk deploy exited with 3" in capsys.readouterr().err


def test_an_invalid_config_is_exit_2_before_any_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rollout": {"strategy": "sometimes"}}))
    runner = Runner()
    assert deploy(DeployOptions(root=project(tmp_path), config_file=bad), run=runner) == 2
    assert "invalid deploy config: rollout.strategy" in capsys.readouterr().err
    assert runner.calls == []


@pytest.mark.aws
def test_destroy_asks_lists_what_stays_and_runs_cdk_destroy(
    aws: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, config = project(tmp_path), _config_file(tmp_path)
    options = DeployOptions(root=root, config_file=config)
    clients, env = AwsClients(REGION, session=aws), clean_env(str(tmp_path / "bin"))
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    runner = Runner()
    declined = destroy(options, clients=clients, env=env, run=runner, confirm=decline)
    assert declined == 1 and runner.calls == []
    assert questions == [f"Delete the stack Quarry (account {ACCOUNT}, {REGION})?"]
    out = capsys.readouterr()
    assert 'removal = "retain" keeps the S3 buckets' in out.out and "--no-deletion-protection" in out.out
    assert "nothing deleted" in out.err

    assert destroy(options, clients=clients, env=env, run=runner, confirm=lambda q: True) == 0
    [cdk] = runner.calls
    assert cdk.argv == [
        str(root / "node_modules" / ".bin" / "cdk"),
        "destroy",
        "Quarry",
        "--force",
        "-c",
        f"config={config}",
    ]
    assert cdk.cwd == root


@pytest.mark.aws
def test_destroy_also_deletes_the_edge_stack(aws: boto3.Session, tmp_path: Path) -> None:
    """A deployment outside us-east-1 with the UI's web ACL has a second stack there; destroy names both."""
    root, config = project(tmp_path), tmp_path / "edge.toml"
    config.write_text(f'region = "{REGION}"\n[waf]\nenabled = true\n')
    questions: list[str] = []
    runner = Runner()

    def accept(question: str) -> bool:
        questions.append(question)
        return True

    clients, env = AwsClients(REGION, session=aws), clean_env(str(tmp_path / "bin"))
    assert (
        destroy(DeployOptions(root=root, config_file=config), clients=clients, env=env, run=runner, confirm=accept) == 0
    )
    assert questions == [f"Delete the stacks Quarry and QuarryEdge (account {ACCOUNT}, {REGION})?"]
    [cdk] = runner.calls
    assert cdk.argv[1:5] == ["destroy", "Quarry", "QuarryEdge", "--force"]


# Under `make test` the parent make's flags (e.g. -w from MAKEFLAGS) would leak into this dry run.
OUTSIDE_MAKE = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}}


def test_make_deploy_bootstraps_then_runs_quarry_deploy() -> None:
    for target in ("deploy", "destroy"):
        dry = subprocess.run(
            ["make", "--no-print-directory", "-n", target, "ARGS=--yes"],
            cwd=ROOT,
            env=OUTSIDE_MAKE,
            capture_output=True,
            text=True,
            check=True,
        )
        assert dry.stdout.splitlines() == ["scripts/bootstrap.sh", f".venv/bin/quarry {target} --yes"]
