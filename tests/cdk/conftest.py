"""Synthesize the app once per configuration (session-scoped) and share the templates among the tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.cdk.cdk_synth import FULL_OVERRIDES, ROOT, VPC_OVERRIDES, Synth, synthesize


@pytest.fixture(scope="session")
def code_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("cdk-code")
    layer = base / "layer"
    shutil.copytree(
        ROOT / "layers" / "quarry" / "python" / "quarry",
        layer / "python" / "quarry",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    # The real Dockerfile folder: the image's build context is the repository root (stacks/ingestion.py), so
    # the folder must be inside it; synth only stages the context (trimmed by .dockerignore), `cdk deploy` builds.
    image = ROOT / "batch_ingest"
    return {"layer_asset_dir": str(layer), "image_dir": str(image)}


@pytest.fixture(scope="session")
def default_synth(code_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize({}, code_dirs, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def full_synth(code_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(FULL_OVERRIDES, code_dirs, tmp_path_factory.mktemp("cdk-full"))


@pytest.fixture(scope="session")
def vpc_synth(code_dirs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The default but with ``aurora.access = "vpc"``: psycopg Lambdas in the VPC, a NAT instance; and
    several Bedrock chat models (the UI's model picker)."""
    yield synthesize(VPC_OVERRIDES, code_dirs, tmp_path_factory.mktemp("cdk-vpc"))


@pytest.fixture(scope="session", params=["default", "full"])
def any_synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(f"{request.param}_synth")
