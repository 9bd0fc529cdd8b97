"""The README's command, not just the Python API: the pinned CDK CLI synthesizes ``app.py`` offline.

``make test`` installs the CLI (``npm ci`` at the root: ``aws-cdk@2.1148.1``); a missing CLI fails here
rather than skipping, so CI cannot go green without having exercised it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cdk.cdk_synth import ROOT

pytestmark = pytest.mark.cdk

CLI = ROOT / "node_modules" / ".bin" / "cdk"
PINNED = "2.1148.1"


def _env() -> dict[str, str]:
    return {
        **os.environ,
        # cdk.json runs `python3 app.py`: the project's interpreter, as with an activated venv
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


def test_the_pinned_cli_synthesizes_the_default_app_offline(code_dirs: dict[str, str], tmp_path: Path) -> None:
    assert CLI.is_file(), "the pinned CDK CLI is missing: run `npm ci` at the project root (make test does)"
    version = subprocess.run([str(CLI), "--version"], env=_env(), capture_output=True, text=True, timeout=120)
    assert version.stdout.startswith(PINNED), version.stdout + version.stderr

    config = tmp_path / "deploy.json"  # only where the built code lives; everything else is the default
    code = {"layer_asset_dir": code_dirs["layer_asset_dir"], "ingestion": {"image_dir": code_dirs["image_dir"]}}
    config.write_text(json.dumps(code))
    out_dir = tmp_path / "cdk.out"
    synth = subprocess.run(
        [str(CLI), "synth", "--quiet", "--no-notices", "-c", f"config={config}", "--output", str(out_dir)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert synth.returncode == 0, synth.stderr[-4000:]

    template = json.loads((out_dir / "Quarry.template.json").read_text())
    resources = template["Resources"].values()
    kinds = [resource["Type"] for resource in resources]
    assert kinds.count("AWS::Lambda::Function") >= 10
    assert "AWS::EC2::NatGateway" not in kinds and "AWS::EC2::Instance" not in kinds  # default: no NAT
    cluster = next(r for r in resources if r["Type"] == "AWS::RDS::DBCluster")
    assert cluster["Properties"]["EnableHttpEndpoint"] is True
    assert cluster["Properties"]["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 0
